//! Tests of the shard's table and relay loop with real sockets on 127.0.0.1: packets relayed
//! both ways without the call's task, digits handed to it, and slots that change hands.

use super::super::path::MediaPath;
use super::super::relay_loop;
use super::*;
use crate::digit::Digit;
use crate::media::call_media::{CallMedia, Leg, LegCodec};
use crate::media::dtmf::EventPayload;
use crate::media::g711::Law;
use crate::media::rtp::{write_header, RtpPacket, SeqNo, Ssrc};
use crate::media::Side;
use crate::ops::rtp_quality::RtpQuality;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket as PeerSocket;

const WAIT: Duration = Duration::from_secs(2);

fn pcmu() -> LegCodec {
    LegCodec {
        law: Law::Ulaw,
        pt: 0,
        telephone_event_pt: Some(101),
    }
}

/// An RTP packet of payload type `pt`.
fn packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    let n = write_header(&mut buf, false, pt, SeqNo(seq), ts, Ssrc(7));
    buf[n..].copy_from_slice(payload);
    buf
}

/// An RFC 4733 packet for `digit`.
fn event(digit: u8, seq: u16, end: bool) -> Vec<u8> {
    let mut payload = [0u8; 4];
    EventPayload {
        event: digit,
        end,
        volume: 10,
        duration: 160,
    }
    .write(&mut payload);
    packet(101, seq, 8000, &payload)
}

/// A bound peer socket (a phone, a conference server) and a socket for dialin's leg.
async fn peer() -> (PeerSocket, SocketAddr) {
    let s = PeerSocket::bind("127.0.0.1:0").await.expect("bind");
    let a = s.local_addr().expect("bound");
    (s, a)
}

fn leg_socket() -> (std::net::UdpSocket, SocketAddr) {
    let (s, a) = super::super::connected::test_socket();
    s.set_nonblocking(true).expect("non-blocking");
    (s, a)
}

fn path_to(phone: SocketAddr, socket: std::net::UdpSocket) -> MediaPath {
    let now = Instant::now();
    MediaPath::new(
        CallMedia::new(Leg::new(phone, pcmu(), true), now),
        socket,
        None,
        [RtpQuality::new(now, 8000), RtpQuality::new(now, 8000)],
    )
}

/// Counts the wake-ups of the call's task.
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Starts the relay loop on this (current-thread) runtime and lets it install its table.
async fn start_relay() {
    let stop = super::super::shards::StopSignal::new().expect("eventfd");
    tokio::spawn(relay_loop::run(Arc::new(stop)));
    tokio::task::yield_now().await;
    assert!(on_shard(), "the relay loop installs the thread's table");
}

async fn recv(socket: &PeerSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("a packet within 2 s")
        .expect("recv");
    (buf[..n].to_vec(), from)
}

/// A call in the table with its peers: the phone, and the server once bridged.
struct Call {
    path: PathHandle,
    phone: PeerSocket,
    /// Our caller leg's address.
    caller_addr: SocketAddr,
}

/// A call in the voice menu, in this thread's table.
async fn call() -> Call {
    let (phone, phone_addr) = peer().await;
    let (caller_socket, caller_addr) = leg_socket();
    let path = PathHandle::insert(path_to(phone_addr, caller_socket)).expect("insert");
    Call {
        path,
        phone,
        caller_addr,
    }
}

/// Bridges `call` to a new conference server peer: the peer, and our server leg's address.
async fn bridge(call: &Call) -> (PeerSocket, SocketAddr) {
    let (server, server_addr) = peer().await;
    let (server_socket, server_leg_addr) = leg_socket();
    call.path
        .add_server_socket(server_socket)
        .expect("server socket");
    call.path.with(|p| {
        p.media
            .bridge(Leg::new(server_addr, pcmu(), false), Instant::now())
    });
    (server, server_leg_addr)
}

/// The next news the path has for its call's task.
async fn next_event(path: &PathHandle) -> PathEvent {
    tokio::time::timeout(WAIT, std::future::poll_fn(|cx| path.poll_event(cx)))
        .await
        .expect("news for the call within 2 s")
}

#[test]
fn a_path_cannot_be_inserted_on_a_thread_without_a_relay_loop() {
    std::thread::spawn(|| {
        let (socket, _) = leg_socket();
        let phone: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        assert!(!on_shard());
        assert!(PathHandle::insert(path_to(phone, socket)).is_err());
    })
    .join()
    .expect("thread");
}

#[test]
fn a_token_carries_slot_generation_and_leg() {
    for token in [
        Token {
            index: 0,
            generation: 0,
            side: Side::Caller,
        },
        Token {
            index: (u32::MAX >> 1) - 1,
            generation: u32::MAX,
            side: Side::Server,
        },
    ] {
        assert_eq!(Token::from_u64(token.to_u64()), token);
    }
    assert_eq!(
        Token::from_u64(STOP_EVENT).index,
        u32::MAX >> 1,
        "the stop signal's event names a slot no path can have"
    );
}

#[tokio::test]
async fn packets_are_relayed_both_ways_and_only_digits_wake_the_call() {
    start_relay().await;
    let c = call().await;
    let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let cx = Context::from_waker(&waker);
    assert!(c.path.poll_event(&cx).is_pending());

    // In the voice menu, a key press reaches the call's task as a digit.
    c.phone
        .send_to(&event(8, 1, false), c.caller_addr)
        .await
        .expect("send");
    assert_eq!(next_event(&c.path).await, PathEvent::Digit(Digit::Num(8)));

    // Bridged: audio goes both ways from the other leg's socket, and the task sleeps.
    let (server, server_leg_addr) = bridge(&c).await;
    assert!(c.path.poll_event(&cx).is_pending());
    c.phone
        .send_to(&packet(0, 2, 8160, &[0x55; 160]), c.caller_addr)
        .await
        .expect("send");
    let (got, from) = recv(&server).await;
    assert_eq!(from, server_leg_addr);
    let pkt = RtpPacket::parse(&got).expect("RTP");
    assert_eq!((pkt.payload_type(), pkt.payload()), (0, &[0x55; 160][..]));
    server
        .send_to(&packet(0, 9, 3200, &[0x66; 160]), server_leg_addr)
        .await
        .expect("send");
    let (got, from) = recv(&c.phone).await;
    assert_eq!(from, c.caller_addr);
    assert_eq!(RtpPacket::parse(&got).expect("RTP").payload(), &[0x66; 160]);
    let woken = wakes.0.load(Ordering::SeqCst);
    assert_eq!(woken, 0, "audio never wakes the call");
}

#[tokio::test]
async fn more_packets_than_a_pass_reads_from_one_socket_are_all_relayed() {
    start_relay().await;
    let c = call().await;
    let (server, _) = bridge(&c).await;
    // Queued before the relay loop runs again: more on one socket than its share of a pass.
    let share = relay_loop::BATCHES_PER_PASS * super::super::recv_batch::BATCH;
    let count = 2 * share as u16 + 3;
    for seq in 0..count {
        let audio = packet(0, seq, u32::from(seq) * 160, &[seq as u8; 160]);
        c.phone.send_to(&audio, c.caller_addr).await.expect("send");
    }
    for seq in 0..count {
        let (got, _) = recv(&server).await;
        let payload = RtpPacket::parse(&got).expect("RTP").payload()[0];
        assert_eq!(payload, seq as u8);
    }
}

#[tokio::test]
async fn passes_cut_short_by_their_budget_still_relay_every_queued_packet() {
    // A budget that is spent at the first look at the clock: each pass reads a few sockets,
    // keeps the rest (and those it emptied only in part) for the next, and yields.
    super::super::pass_budget::TEST_BUDGET.set(Some(Duration::ZERO));
    start_relay().await;
    let mut calls = Vec::new();
    for _ in 0..3 * super::super::pass_budget::SOCKETS_PER_CLOCK_READ {
        let c = call().await;
        let (server, _) = bridge(&c).await;
        calls.push((c, server));
    }
    // Queued on every call before the relay loop runs again, more than a socket's share.
    let share = relay_loop::BATCHES_PER_PASS * super::super::recv_batch::BATCH;
    let count = share as u16 + 5;
    for (c, _) in &calls {
        for seq in 0..count {
            let audio = packet(0, seq, u32::from(seq) * 160, &[seq as u8; 160]);
            c.phone.send_to(&audio, c.caller_addr).await.expect("send");
        }
    }
    for (_, server) in &calls {
        for seq in 0..count {
            let (got, _) = recv(server).await;
            let payload = RtpPacket::parse(&got).expect("RTP").payload()[0];
            assert_eq!(payload, seq as u8);
        }
    }
}

#[tokio::test]
async fn an_ended_call_leaves_the_table_and_its_slot_cannot_reach_the_next_call() {
    start_relay().await;
    let first = call().await;
    let (old_index, old_generation) = (first.path.index, first.path.generation);
    let first_addr = first.caller_addr;
    drop(first);
    // The port is closed with the path.
    let rebound = std::net::UdpSocket::bind(first_addr);
    assert!(rebound.is_ok(), "the port is free");

    let second = call().await;
    assert_eq!(second.path.index, old_index, "the slot is reused");
    assert_ne!(second.path.generation, old_generation);
    // An event of the ended call finds nothing.
    let stale = Token {
        index: old_index,
        generation: old_generation,
        side: Side::Caller,
    };
    assert!(with_table(|t| t.event(stale.to_u64()).is_none()).expect("table"));
    // The new call works.
    second
        .phone
        .send_to(&event(4, 1, false), second.caller_addr)
        .await
        .expect("send");
    assert_eq!(
        next_event(&second.path).await,
        PathEvent::Digit(Digit::Num(4))
    );
}

#[tokio::test]
async fn the_echo_tests_first_frame_wakes_the_call_to_arm_its_timer() {
    start_relay().await;
    let c = call().await;
    c.path.with(|p| p.media.start_echo());
    c.phone
        .send_to(&packet(0, 1, 160, &[0x55; 160]), c.caller_addr)
        .await
        .expect("send");
    assert_eq!(next_event(&c.path).await, PathEvent::DeadlineMoved);
    assert!(c.path.with(|p| p.media.next_deadline()).is_some());
}

#[tokio::test]
async fn each_leg_is_connected_to_its_settled_peer_and_follows_a_move() {
    start_relay().await;
    let c = call().await;
    let phone_addr = c.phone.local_addr().expect("bound");
    let (server, server_leg_addr) = bridge(&c).await;
    let server_addr = server.local_addr().expect("bound");
    // The server leg's peer is its SDP address; the caller's is settled by its first packet.
    assert_eq!(c.path.with(|p| p.connected), [None, Some(server_addr)]);
    let audio = |seq: u16| packet(0, seq, u32::from(seq) * 160, &[seq as u8; 160]);
    c.phone
        .send_to(&audio(1), c.caller_addr)
        .await
        .expect("send");
    recv(&server).await;
    assert_eq!(c.path.with(|p| p.connected[0]), Some(phone_addr));

    // A re-INVITE moves the caller: its socket is let go until the new port is latched.
    let (moved, moved_addr) = peer().await;
    c.path.with(|p| p.media.caller.update(moved_addr, true));
    assert_eq!(c.path.with(|p| p.connected[0]), None);
    moved.send_to(&audio(2), c.caller_addr).await.expect("send");
    let (got, _) = recv(&server).await;
    assert_eq!(RtpPacket::parse(&got).expect("RTP").payload()[0], 2);
    assert_eq!(c.path.with(|p| p.connected[0]), Some(moved_addr));
    server
        .send_to(&audio(3), server_leg_addr)
        .await
        .expect("send");
    let (got, from) = recv(&moved).await;
    assert_eq!(from, c.caller_addr);
    assert_eq!(RtpPacket::parse(&got).expect("RTP").payload()[0], 3);
    // The old address is not relayed any more.
    c.phone
        .send_to(&audio(4), c.caller_addr)
        .await
        .expect("send");
    moved.send_to(&audio(5), c.caller_addr).await.expect("send");
    let (got, _) = recv(&server).await;
    assert_eq!(RtpPacket::parse(&got).expect("RTP").payload()[0], 5);
}

#[tokio::test]
async fn a_panic_relaying_one_call_ends_that_call_only() {
    start_relay().await;
    let broken = call().await;
    let other = call().await;
    broken.path.with(|p| p.panic_on_packet = true);
    broken
        .phone
        .send_to(&event(1, 1, false), broken.caller_addr)
        .await
        .expect("send");
    assert_eq!(next_event(&broken.path).await, PathEvent::Failed);
    // Told once, however many of its packets come.
    broken
        .phone
        .send_to(&event(2, 2, false), broken.caller_addr)
        .await
        .expect("send");
    // The shard still relays its other calls.
    other
        .phone
        .send_to(&event(7, 1, false), other.caller_addr)
        .await
        .expect("send");
    assert_eq!(
        next_event(&other.path).await,
        PathEvent::Digit(Digit::Num(7))
    );
    let waker = Waker::from(Arc::new(Wakes(AtomicUsize::new(0))));
    assert!(broken
        .path
        .poll_event(&Context::from_waker(&waker))
        .is_pending());
}
