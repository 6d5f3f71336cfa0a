//! Flood and overload protection through the real `dialin` binary: a flood from a source outside
//! the allow list while legitimate calls complete, the call limits (global, per trunk, IVR)
//! answering 503 with Retry-After, and the per-source request rate.

use crate::support::dialin::{calls_refused, http, metric, TestConfig};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{RunningSipp, Scenario, Sipp};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The number the callers dial.
const DIALLED: &str = "4930555000";

/// A SIP address where nothing listens: these tests never reach a server.
fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// A caller from `ip` who types the echo-test PIN and hangs up after `pause`.
fn echo_caller(cfg: &TestConfig, ip: Ipv4Addr, pause: Duration) -> RunningSipp {
    Sipp::new(Scenario::caller_hangs_up())
        .local_ip(ip)
        .pcap(CallerStream::new("00000#").tail(Duration::from_secs(1)))
        .pause(pause)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
}

/// A caller that types nothing (stays in the voice menu) and hangs up after `pause`.
fn silent_caller(cfg: &TestConfig, pause: Duration) -> RunningSipp {
    Sipp::new(Scenario::caller_hangs_up())
        .pcap(
            CallerStream::new("")
                .lead(Duration::ZERO)
                .tail(Duration::ZERO),
        )
        .pause(pause)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
}

/// A caller from `ip` that expects a refusal; returns its final code and Retry-After value.
fn refused_caller(cfg: &TestConfig, ip: Ipv4Addr) -> (Option<u16>, Option<String>) {
    let outcome = Sipp::new(Scenario::caller_rejected())
        .local_ip(ip)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    let retry = outcome
        .messages()
        .into_iter()
        .find(|m| m.status_code() == Some(503))
        .and_then(|m| m.header("Retry-After").map(|v| v.trim().to_string()));
    (outcome.final_response_code(), retry)
}

/// An INVITE from `from`, with a unique Call-ID and branch, offering `sdp`.
fn invite(to: SocketAddr, from: SocketAddr, n: u64, sdp: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{DIALLED}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-f{n}\r\n\
         From: <sip:flood@{from}>;tag=f{n}\r\nTo: <sip:{DIALLED}@{to}>\r\nCall-ID: flood-{n}@x\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:flood@{from}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

const AUDIO_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
                         m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// Sends `per_second` datagrams a second from 127.0.0.2 until stopped: every other one an
/// INVITE, the rest garbage. Returns the stop flag, the count of datagrams sent, the count
/// of answers received and the thread (joined, the counts are final).
fn flood(
    target: SocketAddr,
    per_second: u64,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let (stop2, sent2, answered2) = (stop.clone(), sent.clone(), answered.clone());
    let thread = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        let from = sock.local_addr().unwrap();
        let start = Instant::now();
        let mut n: u64 = 0;
        while !stop2.load(Ordering::Relaxed) {
            // Pace in 10 ms steps: n datagrams by now.
            let due = start.elapsed().as_millis() as u64 * per_second / 1000;
            while n < due {
                let pkt = if n.is_multiple_of(2) {
                    invite(target, from, n, AUDIO_SDP)
                } else {
                    let mut g = format!("GARBAGE {n} SIP/2.0\r\nVia: x\r\n\r\n").into_bytes();
                    g.extend((0..200).map(|i| (i * 7 + n as usize) as u8));
                    g
                };
                sock.send_to(&pkt, target).ok();
                n += 1;
            }
            sent2.store(n, Ordering::Relaxed);
            while sock.recv_from(&mut buf).is_ok() {
                answered2.fetch_add(1, Ordering::Relaxed);
            }
            // Pacing of the flood, in 10 ms steps.
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (stop, sent, answered, thread)
}

#[test]
fn a_flood_from_outside_the_allow_list_leaves_legitimate_calls_working() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    // The harder case: with "403" some outsider requests are parsed and answered.
    cfg.reject = "403";
    let dialin = cfg.start();
    let started = Instant::now();
    let (stop, sent, answered, flooder) = flood(cfg.sip, 5_000);
    // The legitimate calls come into a flood that has been going for a second.
    std::thread::sleep(Duration::from_secs(1));
    // Four legitimate calls, two at a time, each reaching the echo test and hanging up.
    let mut done = 0;
    for _ in 0..2 {
        let a = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(4));
        let b = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(4));
        a.wait().assert_success();
        b.wait().assert_success();
        done += 2;
    }
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs() + 1;
    flooder.join().expect("the flood thread");
    let sent = sent.load(Ordering::Relaxed);
    let answered = answered.load(Ordering::Relaxed);
    // Only a few outsider datagrams a second are parsed and answered 403; the rest cost nothing.
    assert!(
        (1..=10 + 5 * secs).contains(&answered),
        "{answered} answers to the flood in {secs} s"
    );
    assert!(sent >= 20_000, "the flood sent only {sent} datagrams");
    assert_eq!(dialin.status_value("calls_started"), done);
    assert_eq!(dialin.status_value("echo_tests"), done, "{}", dialin.log());
    let rejected = dialin.status_value("sip_sources_rejected");
    assert!(
        rejected >= sent / 2,
        "most of the flood is refused by source ({rejected} of {sent})"
    );
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&["127.0.0.2"]);
}

/// Issue 24: a BBB server's address may talk on the legs dialin dialled (BYE, re-INVITE: see
/// `tests/calls.rs`), never start a PIN call: anything on a BBB host could otherwise guess PINs.
#[test]
fn a_bbb_servers_address_may_not_call_in() {
    // The server's SIP address is 127.0.0.2; only 127.0.0.1 is a trunk.
    let server = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), PortBlock::take(1).base));
    let mut cfg = TestConfig::new(server);
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    cfg.reject = "403";
    let dialin = cfg.start();
    let (code, _) = refused_caller(&cfg, Ipv4Addr::new(127, 0, 0, 2));
    assert_eq!(code, Some(403), "an INVITE from a server address");
    assert_eq!(dialin.status_value("calls_started"), 0);
    assert!(dialin.status_value("sip_sources_rejected") >= 1);
    // The trunk still calls in.
    echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(1))
        .wait()
        .assert_success();
    assert_eq!(dialin.status_value("calls_started"), 1);
    dialin.assert_log_free_of(&["127.0.0.2"]);
}

#[test]
fn beyond_max_calls_a_call_gets_503_with_retry_after() {
    let mut cfg = TestConfig::new(no_server());
    cfg.extra = "[limits]\nmax_calls = 1\nretry_after = \"7s\"\n".into();
    let dialin = cfg.start();
    let first = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(5));
    dialin.wait_for_line("echo test", Duration::from_secs(5));
    let (code, retry) = refused_caller(&cfg, Ipv4Addr::LOCALHOST);
    assert_eq!(code, Some(503));
    assert_eq!(retry.as_deref(), Some("7"));
    first.wait().assert_success();
    assert_eq!(dialin.status_value("refused_max_calls"), 1);
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    let refused = |reason: &str| calls_refused(&text, reason);
    assert_eq!(refused("max_calls"), 1.0, "{text}");
    assert_eq!(refused("max_ivr_calls"), 0.0, "{text}");
    dialin.assert_idle(Duration::from_secs(5));
    // The slot is free again.
    let again = Sipp::new(Scenario::caller_unsupported_codec())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    again.wait().assert_success();
}

#[test]
fn the_ivr_limit_counts_only_calls_not_yet_bridged() {
    let mut cfg = TestConfig::new(no_server());
    cfg.extra = "[limits]\nmax_calls = 5\nmax_ivr_calls = 1\n".into();
    let dialin = cfg.start();
    // A reaches the echo test: it no longer counts as in the IVR.
    let a = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(8));
    dialin.wait_for_line("echo test", Duration::from_secs(5));
    // B stays in the voice menu, holding the only IVR slot.
    let b = silent_caller(&cfg, Duration::from_secs(5));
    dialin.wait_for_nth_line("incoming call", 2, Duration::from_secs(5));
    assert_eq!(dialin.status_value("calls_in_ivr"), 1);
    // C finds the IVR full.
    let (code, retry) = refused_caller(&cfg, Ipv4Addr::LOCALHOST);
    assert_eq!(code, Some(503));
    assert_eq!(retry.as_deref(), Some("10"), "the default retry_after");
    assert_eq!(dialin.status_value("refused_max_ivr_calls"), 1);
    assert_eq!(dialin.status_value("refused_max_calls"), 0);
    a.wait().assert_success();
    b.wait().assert_success();
    dialin.assert_idle(Duration::from_secs(5));
    assert_eq!(dialin.status_value("calls_in_ivr"), 0);
}

#[test]
fn a_full_trunk_refuses_its_calls_and_leaves_other_trunks_alone() {
    let mut cfg = TestConfig::new(no_server());
    // The default trunk (127.0.0.1) takes one call at once; trunk "p2" (127.0.0.2) has its own.
    cfg.allow = "[\"127.0.0.1/32\"]\nmax_calls = 1".into();
    cfg.extra = "[[trunks]]\nname = \"p2\"\nallow = [\"127.0.0.2\"]\nmax_calls = 1\n".into();
    let dialin = cfg.start();
    let first = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(6));
    dialin.wait_for_line("echo test", Duration::from_secs(5));
    let (code, retry) = refused_caller(&cfg, Ipv4Addr::LOCALHOST);
    assert_eq!(code, Some(503));
    assert!(retry.is_some());
    assert_eq!(dialin.status_value("refused_trunk_max_calls"), 1);
    // The other trunk still gets in (its call reaches the echo test too).
    let other = echo_caller(&cfg, Ipv4Addr::new(127, 0, 0, 2), Duration::from_secs(3));
    other.wait().assert_success();
    first.wait().assert_success();
    assert_eq!(dialin.status_value("echo_tests"), 2);
    dialin.assert_idle(Duration::from_secs(5));
}

/// Sends `invites` INVITEs at once from one allowed source and returns the final status of each
/// (by Call-ID order) and the Retry-After of the 503s.
fn burst_of_invites(target: SocketAddr, invites: u64) -> Vec<(u16, Option<String>)> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = sock.local_addr().unwrap();
    // Video only: every admitted INVITE ends at once in 488, no call is left behind.
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5002 RTP/AVP 96\r\n";
    for n in 0..invites {
        sock.send_to(&invite(target, from, n, sdp), target).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut finals: Vec<Option<(u16, Option<String>)>> = vec![None; invites as usize];
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && finals.iter().any(Option::is_none) {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..len]);
        let code: u16 = text[8..11].parse().unwrap_or(0);
        if code < 200 {
            continue;
        }
        let n: usize = text
            .split("Call-ID: flood-")
            .nth(1)
            .and_then(|r| r.split('@').next())
            .and_then(|v| v.parse().ok())
            .expect("a Call-ID of ours");
        let retry = text
            .lines()
            .find_map(|l| l.strip_prefix("Retry-After: "))
            .map(|v| v.trim().to_string());
        finals[n].get_or_insert((code, retry));
    }
    finals
        .into_iter()
        .map(|f| f.expect("every INVITE got a final answer"))
        .collect()
}

#[test]
fn an_allowed_source_over_its_request_rate_gets_503_for_new_invites() {
    let mut cfg = TestConfig::new(no_server());
    cfg.extra = "[limits]\nsip_rate = 1\nsip_burst = 3\nretry_after = \"4s\"\n".into();
    let dialin = cfg.start();
    let finals = burst_of_invites(cfg.sip, 6);
    let codes: Vec<u16> = finals.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes.iter().filter(|c| **c == 488).count(), 3, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 503).count(), 3, "{codes:?}");
    assert!(finals
        .iter()
        .filter(|(c, _)| *c == 503)
        .all(|(_, r)| r.as_deref() == Some("4")));
    assert!(dialin.status_value("sip_rate_limited") >= 3);
    // Each refused INVITE is a refused call, counted once under reason "rate".
    assert_eq!(dialin.status_value("refused_rate"), 3);
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_calls_refused_total", "reason=\"rate\""),
        3.0,
        "{text}"
    );
    // After a quiet spell the source is welcome again: the quiet is the behaviour.
    std::thread::sleep(Duration::from_secs(2));
    let caller = Sipp::new(Scenario::caller_unsupported_codec())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn an_outsider_over_tcp_gets_a_few_403s_and_nothing_more() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    cfg.reject = "403";
    let dialin = cfg.start();
    let target = cfg.sip;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers = rt.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket
            .connect(target)
            .await
            .expect("the TCP connection is accepted");
        let from = stream.local_addr().unwrap();
        let mut all = Vec::new();
        for n in 0..100 {
            all.extend(invite(target, from, n, AUDIO_SDP));
        }
        stream.write_all(&all).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).matches("SIP/2.0 403").count()
    });
    assert!(
        (1..=12).contains(&answers),
        "{answers} answers to 100 INVITEs over one connection"
    );
    assert!(dialin.status_value("sip_sources_rejected") >= 100);
    assert_eq!(dialin.status_value("calls_started"), 0);
}

#[test]
fn a_call_whose_ack_never_comes_frees_its_ports_long_before_32_s() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = sock.local_addr().unwrap();
    let sdp = AUDIO_SDP.replace("127.0.0.2", "127.0.0.1");
    sock.send_to(&invite(cfg.sip, from, 1, &sdp), cfg.sip)
        .unwrap();
    let started = Instant::now();
    dialin.wait_for_line("incoming call", Duration::from_secs(2));
    assert_eq!(dialin.status_value("calls_in_ivr"), 1);
    dialin.wait_for_line("no ACK for the answer", Duration::from_secs(15));
    dialin.assert_idle(Duration::from_secs(3));
    assert!(
        started.elapsed() < Duration::from_secs(16),
        "the half-open call ended after {:?}",
        started.elapsed()
    );
    assert_eq!(dialin.status_value("calls_in_ivr"), 0);
}

/// Opens `n` TCP connections from 127.0.0.2 to `target` and sends nothing on them.
pub(crate) fn idle_connections(
    rt: &tokio::runtime::Runtime,
    target: SocketAddr,
    n: usize,
) -> Vec<std::net::TcpStream> {
    rt.block_on(async move {
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let stream = socket
                .connect(target)
                .await
                .expect("the kernel accepts the connection");
            // Non-blocking already (tokio's): a read tells open (WouldBlock) from closed.
            streams.push(stream.into_std().unwrap());
        }
        streams
    })
}

/// How many of `streams` dialin has closed (EOF or reset) by now.
fn closed(streams: &[std::net::TcpStream]) -> usize {
    streams.iter().filter(|s| !is_open(s)).count()
}

#[test]
fn idle_tcp_connections_are_capped_per_source_and_closed_when_idle() {
    let mut cfg = TestConfig::new(no_server());
    cfg.extra = "[limits]\ntcp_per_source = 20\ntcp_total = 1000\ntcp_idle = \"1500ms\"\n".into();
    let dialin = cfg.start();
    // A real call over UDP goes on while one source holds all its TCP connections.
    let call = echo_caller(&cfg, Ipv4Addr::LOCALHOST, Duration::from_secs(3));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opened = Instant::now();
    let sip = idle_connections(&rt, cfg.sip, 300);
    let admin = idle_connections(&rt, cfg.admin, 300);
    // Beyond the cap the socket is closed at once; within it, nothing closes before tcp_idle.
    let deadline = Instant::now() + Duration::from_secs(1);
    while (closed(&sip) < 280 || closed(&admin) < 280) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        opened.elapsed() < Duration::from_millis(1400),
        "too slow to tell the cap from the idle timeout"
    );
    let (sip_closed, admin_closed) = (closed(&sip), closed(&admin));
    let sip_open = sip.iter().filter(|s| is_open(s)).count();
    let admin_open = admin.iter().filter(|s| is_open(s)).count();
    assert_eq!(
        sip_open, 20,
        "SIP: the per-source cap ({sip_closed} closed)"
    );
    assert_eq!(
        admin_open, 20,
        "admin: the per-source cap ({admin_closed} closed)"
    );
    // The admitted ones are closed once idle for tcp_idle.
    let deadline = Instant::now() + Duration::from_secs(5);
    while (sip.iter().any(is_open) || admin.iter().any(is_open)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(1500),
        "closed before tcp_idle"
    );
    assert!(!sip.iter().any(is_open), "idle SIP connections stay open");
    assert!(
        !admin.iter().any(is_open),
        "idle admin connections stay open"
    );
    call.wait().assert_success();
    assert_eq!(dialin.status_value("echo_tests"), 1);
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    let refused = |listener: &str| {
        metric(
            &text,
            "dialin_connections_refused_total",
            &format!("listener=\"{listener}\""),
        )
    };
    assert_eq!(refused("sip_tcp"), 280.0, "{text}");
    assert_eq!(refused("admin"), 280.0, "{text}");
    assert_eq!(refused("sip_tls"), 0.0, "{text}");
    // The slots are free again: a new connection is admitted and held until idle.
    let again = idle_connections(&rt, cfg.sip, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        closed(&again),
        0,
        "a connection after the idle ones were closed"
    );
    dialin.assert_log_free_of(&["127.0.0.2"]);
}

/// Whether dialin still holds `stream` open (a peek neither sees EOF nor an error).
pub(crate) fn is_open(stream: &std::net::TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
