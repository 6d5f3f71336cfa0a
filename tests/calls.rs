//! End-to-end calls through the real `dialin` binary: sipp as the phone caller on the trunk,
//! sipp plus a Rust RTP peer as the stand-in BBB FreeSWITCH, everything on 127.0.0.1.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use support::dialin::TestConfig;
use support::media::{RtpPeer, SendTo};
use support::pcap::CallerStream;
use support::ports::PortBlock;
use support::sipp::{Scenario, Sipp};

/// The caller's number as sipp presents it (From display and user part).
const CALLER_NUMBER: &str = "+49301234567";
/// Parts of it that must never reach the server or the log.
const NUMBER_PARTS: [&str; 3] = ["+49301234567", "49301234567", "1234567"];
/// The config-file PIN and its conference.
const PIN: &str = "8675309";
const CONFERENCE: &str = "71234";

/// A Rust RTP peer for the conference side; it answers whoever sends to it first.
fn conference_media() -> RtpPeer {
    let port = PortBlock::take(2).base;
    RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SendTo::FirstSource,
    )
}

/// A conference stand-in whose SDP points at `media`.
fn conference(scenario: Scenario, media: &RtpPeer) -> Sipp {
    Sipp::new(scenario).sdp_media(media.local_addr())
}

#[test]
fn config_pin_bridges_to_its_conference_with_audio_both_ways() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(4)))
        .rtp_echo()
        .pause(Duration::from_secs(8))
        .remote(cfg.sip)
        .service("4930555000")
        .spawn();
    caller.wait().assert_success();
    let server = server.wait();
    server.assert_success();

    // The server leg: the right conference, a masked caller, no trace of the number.
    let invite = server.first_received("INVITE");
    let uri = invite.request_uri().unwrap();
    assert!(
        uri.starts_with(&format!("sip:{CONFERENCE}@")),
        "Request-URI {uri}"
    );
    let from = invite.header("From").unwrap();
    assert!(from.contains("Phone …67"), "masked From: {from}");
    for part in NUMBER_PARTS {
        assert!(
            !invite.text.contains(part),
            "the caller's number reached the server:\n{}",
            invite.text
        );
    }
    assert!(!from.contains("anonymous") && !from.contains("-bbbID-"));

    // Audio, by content: the caller's frames reached the conference, and the conference's own
    // frames came back through the caller's echo, i.e. crossed dialin both ways.
    let rec = media.stop();
    assert!(
        rec.caller_audio() >= 100,
        "caller → conference: {} caller frames",
        rec.caller_audio()
    );
    assert!(
        rec.conference_audio() >= 50,
        "conference → caller → conference: {} frames",
        rec.conference_audio()
    );
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&[NUMBER_PARTS[0], NUMBER_PARTS[2], PIN, CONFERENCE]);
    let _ = CALLER_NUMBER;
}
