//! floor-relay, as the benchmark drives it: answers ng ping, offer and answer, then relays a
//! call's datagrams both ways, in each of its three modes.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running relay, killed when the test ends.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("bound").port()
}

fn sdp(media: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\n",
        media.port()
    )
}

/// Sends one ng request and returns the reply's body (after the cookie).
fn ng(control: &UdpSocket, to: SocketAddr, body: &str) -> Option<String> {
    control.send_to(format!("c1 {body}").as_bytes(), to).ok()?;
    let mut buf = [0u8; 4096];
    let (n, _) = recv(control, &mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.strip_prefix("c1 ").map(str::to_string)
}

/// The audio port in the SDP of an ng reply.
fn port_in(reply: &str) -> u16 {
    let m = reply.find("m=audio ").expect("an SDP with an audio line") + "m=audio ".len();
    reply[m..]
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// `recv_from`, again when a signal interrupted it (EINTR: CI saw one in the uring test).
fn recv(sock: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    loop {
        match sock.recv_from(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn relays_a_call_both_ways(mode: &str) {
    let ng_port = free_udp_port();
    let ng_addr: SocketAddr = ([127, 0, 0, 1], ng_port).into();
    let relay = Relay(
        Command::new(env!("CARGO_BIN_EXE_floor-relay"))
            .args([
                &format!("--mode={mode}"),
                "--table=-1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start floor-relay"),
    );
    let control = UdpSocket::bind("127.0.0.1:0").expect("bind");
    control
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let start = Instant::now();
    while ng(&control, ng_addr, "d7:command4:pinge").as_deref() != Some("d6:result4:ponge") {
        assert!(start.elapsed() < Duration::from_secs(10), "no pong");
    }
    let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let conference = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for s in [&phone, &conference] {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
    let request = |command: &str, media: &UdpSocket| {
        let body = sdp(media.local_addr().expect("bound"));
        let req = format!(
            "d7:command{}:{command}7:call-id2:c13:sdp{}:{body}e",
            command.len(),
            body.len()
        );
        ng(&control, ng_addr, &req).expect("an ng reply")
    };
    let offer = request("offer", &phone);
    let answer = request("answer", &conference);
    assert!(offer.contains("6:result2:ok"), "{offer}");
    let takes_conference: SocketAddr = ([127, 0, 0, 1], port_in(&offer)).into();
    let takes_phone: SocketAddr = ([127, 0, 0, 1], port_in(&answer)).into();

    let mut buf = [0u8; 2048];
    phone.send_to(b"up", takes_phone).expect("send");
    let (n, from) = recv(&conference, &mut buf).expect("the phone's datagram relayed");
    // Each side hears the relay from the port it was given, as from any real relay.
    assert_eq!((&buf[..n], from), (&b"up"[..], takes_conference));
    conference.send_to(b"down", takes_conference).expect("send");
    let (n, from) = recv(&phone, &mut buf).expect("the conference's datagram relayed");
    assert_eq!((&buf[..n], from), (&b"down"[..], takes_phone));

    let unknown = ng(&control, ng_addr, "d7:command6:answer7:call-id2:zz3:sdp0:e");
    assert!(
        unknown.as_deref().is_some_and(|r| r.contains("5:error")),
        "{unknown:?}"
    );
    drop(relay);
}

#[test]
fn epoll_mode_relays_a_call_both_ways() {
    relays_a_call_both_ways("epoll");
}

#[test]
fn tokio_mode_relays_a_call_both_ways() {
    relays_a_call_both_ways("tokio");
}

#[test]
fn uring_mode_relays_a_call_both_ways() {
    if io_uring::IoUring::new(8).is_err() {
        eprintln!("skipped: io_uring cannot be set up on this machine");
        return;
    }
    relays_a_call_both_ways("uring");
}

#[test]
fn an_unknown_mode_is_refused_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_floor-relay"))
        .arg("--mode=poll")
        .output()
        .expect("run floor-relay");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use epoll, tokio or uring"));
}
