//! A caller on hold (`inactive`) sends no RTP, so `media.timeout` cannot tell whether its
//! phone is still there: dialin asks it with an in-dialog OPTIONS every `media.timeout`
//! (issue 22, item 3). Through the real binary and a raw caller over UDP that answers the
//! first OPTIONS and then has forgotten the call (481). The caller whose phone answers
//! nothing at all (the probe's 32 s transaction timeout) is covered on simulated time
//! (`call::core::caller_probe_tests`).

use crate::support::dialin::TestConfig;
use crate::support::ports::PortBlock;
use crate::support::rawsip::{audio_offer, RawCall};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// A SIP address where nothing listens: the caller never reaches a server.
fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

#[test]
fn a_holding_caller_is_asked_with_options_and_a_481_ends_its_call() {
    let mut cfg = TestConfig::new(no_server());
    cfg.media_timeout = "2s";
    let dialin = cfg.start();
    let mut call = RawCall::udp(cfg.sip, "hold-probe");
    call.invite(&audio_offer(call.local_addr()));
    call.expect_response(200, "INVITE", Duration::from_secs(5));
    call.ack("");
    // On hold at once, before any RTP: a new SDP version, `inactive`.
    let held = audio_offer(call.local_addr())
        .replace("o=- 1 1 ", "o=- 1 2 ")
        .replace("a=rtpmap:0", "a=inactive\r\na=rtpmap:0");
    call.in_dialog("INVITE", &held);
    let answer = call.expect_response(200, "INVITE", Duration::from_secs(5));
    assert!(answer.text.contains("a=recvonly") || answer.text.contains("a=inactive"));
    let ack = call.request("ACK", call.cseq, "ack-hold", true, "");
    call.send_raw(ack.as_bytes());
    let held_at = Instant::now();

    // The first probe comes within media.timeout (plus the check's own period) of the hold.
    let first = call
        .wait_request("OPTIONS", Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no OPTIONS to the holding caller; log:\n{}", dialin.log()));
    assert_eq!(
        first.header("Call-ID"),
        Some(format!("{}@raw", call.tag).as_str()),
        "in the caller's dialog"
    );
    assert!(
        first.header("To").is_some_and(|to| to.contains(&call.tag)),
        "addressed to the caller's tag: {:?}",
        first.header("To")
    );
    eprintln!("first OPTIONS {:?} after the hold", held_at.elapsed());
    call.respond(&first, 200, "OK");

    // A phone that answers keeps its call though it sends no RTP: a second probe comes.
    let second = call
        .wait_request("OPTIONS", Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no second OPTIONS; log:\n{}", dialin.log()));
    assert!(
        !dialin.log().contains("call ended"),
        "ended though its phone answered"
    );
    // Now the phone has forgotten the call: 481, and dialin hangs up at once.
    call.respond(&second, 481, "Call/Transaction Does Not Exist");
    let answered_481 = Instant::now();
    let bye = call
        .wait_request("BYE", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no BYE after the 481; log:\n{}", dialin.log()));
    eprintln!("BYE {:?} after the 481", answered_481.elapsed());
    call.respond(&bye, 200, "OK");
    dialin.wait_for_line(
        "the caller's phone no longer answers in its dialog",
        Duration::from_secs(2),
    );
    dialin.assert_idle(Duration::from_secs(5));
}
