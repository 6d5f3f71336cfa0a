//! Tests of the relay's receive path on real sockets, without the relay loop.

use super::*;
use crate::media::call_media::{CallMedia, Leg, LegCodec};
use crate::media::g711::Law;
use crate::media::relay::path::PathEvent;
use crate::media::rtp::{write_header, RtpPacket, SeqNo, Ssrc};
use crate::ops::rtp_quality::RtpQuality;
use std::time::Duration;

fn socket() -> (UdpSocket, SocketAddr) {
    let (s, free) = super::super::connected::test_socket();
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    (s, free)
}

fn audio(seq: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + 160];
    write_header(
        &mut buf,
        false,
        0,
        SeqNo(seq),
        u32::from(seq) * 160,
        Ssrc(7),
    );
    buf[12..].fill(seq as u8);
    buf
}

const PCMU: LegCodec = LegCodec {
    law: Law::Ulaw,
    pt: 0,
    telephone_event_pt: None,
};

/// A bridged call's path on real sockets: the phone, the server, the path, and the caller
/// leg's and server leg's addresses.
fn bridged_path() -> (UdpSocket, UdpSocket, MediaPath, SocketAddr, SocketAddr) {
    let (phone, phone_addr) = socket();
    let (server, server_addr) = socket();
    let (caller_leg, caller_addr) = socket();
    let (server_leg, server_leg_addr) = socket();
    caller_leg.set_nonblocking(true).expect("non-blocking");
    server_leg.set_nonblocking(true).expect("non-blocking");
    let now = Instant::now();
    let mut path = MediaPath::new(
        CallMedia::new(Leg::new(phone_addr, PCMU, true), now),
        caller_leg,
        None,
        [RtpQuality::new(now, 8000), RtpQuality::new(now, 8000)],
    );
    path.server = Some(server_leg);
    path.media.bridge(Leg::new(server_addr, PCMU, false), now);
    (phone, server, path, caller_addr, server_leg_addr)
}

#[test]
fn a_packet_queued_behind_an_icmp_error_is_still_relayed() {
    let (phone, server, mut path, caller_addr, server_leg_addr) = bridged_path();
    let phone_addr = phone.local_addr().expect("bound");
    let now = Instant::now();
    let mut batch = Batch::new();
    let mut buf = [0u8; 1500];
    // The caller's first packet settles its port: the caller's socket is connected to it.
    phone.send_to(&audio(1), caller_addr).expect("send");
    path.relay_queued(&mut batch, now, Side::Caller);
    assert_eq!(path.connected[0], Some(phone_addr));
    server.recv_from(&mut buf).expect("relayed to the server");

    // The phone's port closes: what we send it comes back as an ICMP error.
    drop(phone);
    server.send_to(&audio(2), server_leg_addr).expect("send");
    path.relay_queued(&mut batch, now, Side::Server);
    // The phone is back on the same port and speaks: its packet waits behind the error.
    let phone = UdpSocket::bind(phone_addr).expect("the phone's port again");
    phone.send_to(&audio(3), caller_addr).expect("send");
    path.relay_queued(&mut batch, now, Side::Caller);
    let (n, _) = server.recv_from(&mut buf).expect("relayed to the server");
    let payload = RtpPacket::parse(&buf[..n]).expect("RTP").payload()[0];
    assert_eq!(payload, 3);
}

#[test]
fn a_closed_server_port_is_told_to_the_calls_task_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (phone, server, mut path, caller_addr, _) = bridged_path();
    let server_addr = server.local_addr().expect("bound");
    let now = Instant::now();
    path.sync_peers();
    assert_eq!(path.connected[1], Some(server_addr));
    let woken = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(woken.clone());
    assert_eq!(path.take_event(&waker), None);
    let mut batch = Batch::new();
    // The server's FreeSWITCH is gone: its RTP port is closed.
    drop(server);
    for seq in 1..=3 {
        phone.send_to(&audio(seq), caller_addr).expect("send");
        std::thread::sleep(Duration::from_millis(20));
        path.relay_queued(&mut batch, now, Side::Caller);
        path.relay_queued(&mut batch, now, Side::Server);
    }
    assert!(woken.0.load(Ordering::SeqCst) >= 1, "the task was woken");
    assert_eq!(path.take_event(&waker), Some(PathEvent::ServerUnreachable));
    assert_eq!(path.take_event(&waker), None, "told once per wake-up");
    // A new leg starts with nothing against it.
    let (fresh, _) = socket();
    assert!(path.replace_server(fresh).is_some());
    assert_eq!(path.connected[1], None);
    assert_eq!(path.take_event(&waker), None);
}
