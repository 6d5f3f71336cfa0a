//! No call outlives its reason (issue 22, item 7): calls whose peers misbehave in odd orders
//! end within their documented bounds, through the real binary on real sockets, and leave no
//! active call, IVR slot, RTP port pair or SIP dialog behind.

use crate::support::dialin::{http, metric, Dialin, TestConfig};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{Scenario, Sipp};
use crate::support::wait::wait_for;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The core's `ACK_WAIT`: how long a call waits for the caller's ACK to its 200.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// The number the callers dial.
const DIALLED: &str = "4930555000";

/// A SIP address where nothing listens, for tests that never reach a server.
fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// An RTP range for many calls at once. A [`PortBlock`] holds 16 ports (8 calls); this range
/// lies between the blocks (below 32000) and Linux's ephemeral ports (from 32768), so no other
/// test's block or port-0 socket lands in it. Two tests using it at once only share it: the
/// port pool skips ports bound by someone else.
pub(crate) const WIDE_RTP: (u16, u16) = (32_000, 32_767);

/// An INVITE over `transport` from `from`, with a unique Call-ID, offering `sdp` (none when
/// empty: a late offer).
fn invite(transport: &str, to: SocketAddr, from: SocketAddr, tag: &str, sdp: &str) -> String {
    let body = if sdp.is_empty() {
        "Content-Length: 0\r\n\r\n".to_string()
    } else {
        format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    format!(
        "INVITE sip:{DIALLED}@{to} SIP/2.0\r\nVia: SIP/2.0/{transport} {from};branch=z9hG4bK-{tag}\r\n\
         From: <sip:stuck@{from}>;tag={tag}\r\nTo: <sip:{DIALLED}@{to}>\r\nCall-ID: {tag}@stuck\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:stuck@{from};transport={}>\r\nMax-Forwards: 70\r\n{body}",
        transport.to_ascii_lowercase()
    )
}

/// What `/metrics` says is in use: active calls (all states), calls not yet bridged, RTP port
/// pairs and SIP dialogs.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct InUse {
    calls: u64,
    ivr: u64,
    port_pairs: u64,
    dialogs: u64,
}

impl InUse {
    const NONE: InUse = InUse {
        calls: 0,
        ivr: 0,
        port_pairs: 0,
        dialogs: 0,
    };

    fn read(admin: SocketAddr) -> InUse {
        let (code, text) = http(admin, "GET", "/metrics");
        assert_eq!(code, 200, "{text}");
        let calls: f64 = text
            .lines()
            .filter(|l| l.starts_with("dialin_calls_active{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        // `metric` reads an absent sample as 0: each must be there, or "0" proves nothing.
        let gauge = |name: &str| {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "/metrics has no {name}:\n{text}"
            );
            metric(&text, name, "") as u64
        };
        InUse {
            calls: calls as u64,
            ivr: gauge("dialin_calls_in_ivr"),
            port_pairs: gauge("dialin_rtp_port_pairs_in_use"),
            dialogs: gauge("dialin_sip_dialogs"),
        }
    }
}

/// Waits until nothing is in use, for at most `bound`; panics with the figures and the log.
fn assert_freed_within(dialin: &Dialin, admin: SocketAddr, bound: Duration) -> Duration {
    let started = Instant::now();
    let mut last = InUse::read(admin);
    let freed = wait_for(bound, || {
        last = InUse::read(admin);
        last == InUse::NONE
    });
    assert!(
        freed,
        "still in use after {bound:?}: {last:?}; log:\n{}",
        dialin.log()
    );
    started.elapsed()
}

/// A normal call afterwards: the echo test, answered and hung up by the caller.
fn a_normal_call_succeeds(cfg: &TestConfig) {
    Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new("00000#").tail(Duration::from_secs(1)))
        .pause(Duration::from_secs(2))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait()
        .assert_success();
}

/// Closes `stream` with a reset (SO_LINGER 0) instead of a FIN: a caller whose host vanished.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

/// Reads from `stream` until `needle` arrived (10 s at most).
fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => panic!(
                "no {needle:?} from dialin; got:\n{}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The regression test of issue 22, item 7: an INVITE over TCP without SDP whose connection
/// the caller closes at once used to stay in `answering` for good, holding its port, dialog
/// and both call limits. The core's ACK timer (`ACK_WAIT`, 10 s) ends it now.
#[test]
fn late_offer_invites_over_tcp_whose_connection_closes_at_once_end_within_ack_wait() {
    let mut cfg = TestConfig::new(no_server());
    // The limits hold exactly the 50: one stuck call would refuse the call afterwards.
    cfg.extra =
        "[limits]\nmax_calls = 50\nmax_ivr_calls = 50\nsip_rate = 1000\nsip_burst = 1000\n".into();
    cfg.rtp = WIDE_RTP;
    let dialin = cfg.start();
    let sent_at = Instant::now();
    for n in 0..50 {
        let mut stream = TcpStream::connect(cfg.sip).expect("connect over TCP");
        let from = stream.local_addr().unwrap();
        let msg = invite("TCP", cfg.sip, from, &format!("tcp-late-{n}"), "");
        stream.write_all(msg.as_bytes()).unwrap();
        // Half close with a FIN at once; half vanish with a reset once the 200 came (a reset
        // before dialin read the INVITE discards it: no call at all).
        if n % 2 == 1 {
            read_until(&mut stream, "SIP/2.0 200");
            reset(stream);
        }
    }
    assert!(
        wait_for(Duration::from_secs(5), || dialin
            .status_value("calls_started")
            == 50),
        "not all 50 INVITEs became calls; log:\n{}",
        dialin.log()
    );
    let took = assert_freed_within(&dialin, cfg.admin, ACK_WAIT + Duration::from_secs(3));
    eprintln!(
        "50 late-offer INVITEs over TCP, connection closed at once: freed {:?} after the first",
        sent_at.elapsed()
    );
    let _ = took;
    a_normal_call_succeeds(&cfg);
    dialin.assert_idle(Duration::from_secs(5));
}
