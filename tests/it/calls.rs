//! End-to-end calls through the real `dialin` binary: sipp as the phone caller on the trunk,
//! sipp plus a Rust RTP peer as the stand-in BBB FreeSWITCH, everything on 127.0.0.1.

use crate::support::dialin::TestConfig;
use crate::support::media::{RtpPeer, SendTo};
use crate::support::payload::{self, PayloadKind};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::siplog::Direction;
use crate::support::sipp::{Scenario, Sipp, SippOutcome};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The caller's number as sipp presents it (From display and user part).
const CALLER_NUMBER: &str = "+49301234567";
/// Parts of it that must never reach the server or the log.
const NUMBER_PARTS: [&str; 3] = ["+49301234567", "49301234567", "1234567"];
/// The config-file PIN and its conference.
const PIN: &str = "8675309";
const CONFERENCE: &str = "71234";
/// A stand-in server's address outside `[trunk] allow` (which these tests then set to
/// 127.0.0.1 only): it may talk on its own legs, never call in.
const SERVER_ONLY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A Rust RTP peer for the conference side; it answers whoever sends to it first.
fn conference_media() -> RtpPeer {
    let port = PortBlock::take(2).base;
    RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SendTo::FirstSource,
    )
}

/// When `outcome`'s sipp sent (or received) its first `method` request, in µs since midnight.
fn request_time(outcome: &SippOutcome, method: &str, direction: Direction) -> u64 {
    outcome
        .messages()
        .into_iter()
        .find(|m| m.direction == direction && m.method() == Some(method))
        .and_then(|m| m.at_micros)
        .unwrap_or_else(|| panic!("no {method} {direction:?} in\n{}", outcome.report()))
}

/// Asserts that a BYE on one leg reached the other leg within a second.
fn assert_bye_crossed_within_a_second(from: &SippOutcome, to: &SippOutcome) {
    let sent = request_time(from, "BYE", Direction::Sent);
    let received = request_time(to, "BYE", Direction::Received);
    // Each sipp stamps its own message log, the sender once its send has returned: when dialin
    // relays the BYE at once, the receiving sipp's stamp can come first (seen: by 60 µs).
    const LOG_SKEW_MICROS: u64 = 1_000;
    assert!(
        received + LOG_SKEW_MICROS >= sent && received.saturating_sub(sent) < 1_000_000,
        "BYE took {} µs to cross dialin",
        received as i64 - sent as i64
    );
}

/// The number the callers dial (the trunk's DID); it plays no part in routing.
const DIALLED: &str = "4930555000";

/// A SIP address where nothing listens: for tests that must never reach a server.
fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// A Rust RTP peer standing in for the phone's media: it records what dialin sends it and
/// sends nothing itself.
fn silent_phone() -> RtpPeer {
    let port = PortBlock::take(2).base;
    RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SendTo::Nothing,
    )
}

/// A caller pcap without a single packet, for callers whose media is a Rust peer.
fn silent_caller() -> CallerStream {
    CallerStream::new("")
        .lead(Duration::ZERO)
        .tail(Duration::ZERO)
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
        .service(DIALLED)
        .spawn();
    let caller = caller.wait();
    caller.assert_success();
    let server = server.wait();
    server.assert_success();
    assert_bye_crossed_within_a_second(&caller, &server);

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

    // What dialin says it handles, on the wire: the methods of both legs in its 200 to the
    // caller and its INVITE to the server; session timers only toward the caller, because
    // dialin does not refresh the server leg's session.
    let allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";
    assert_eq!(invite.header("Allow"), Some(allow), "{}", invite.text);
    assert_eq!(
        invite.headers("Supported"),
        [""],
        "one empty Supported toward the server:\n{}",
        invite.text
    );
    let ok = caller
        .messages()
        .into_iter()
        .find(|m| {
            m.direction == Direction::Received
                && m.status_code() == Some(200)
                && m.cseq_method() == Some("INVITE")
        })
        .expect("the caller got 200 to its INVITE");
    assert_eq!(ok.header("Allow"), Some(allow), "{}", ok.text);
    assert_eq!(ok.header("Supported"), Some("timer"), "{}", ok.text);

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

#[test]
fn keys_pressed_while_bridged_reach_the_conference_as_rfc4733() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    // The PIN, then 0 once bridged (BBB's mute key), in one RTP stream with the audio. The
    // phone also echoes the meeting back in another SSRC, interleaved with its own stream:
    // the 0 must still arrive as one key press.
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(
            CallerStream::new(&format!("{PIN}#0"))
                .gap(Duration::from_millis(400))
                .tail(Duration::from_secs(1)),
        )
        .rtp_echo()
        .pause(Duration::from_secs(7))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    server.wait().assert_success();
    let rec = media.stop();
    // Neither the PIN nor its closing # reach the meeting; the 0 does.
    assert_eq!(rec.digits(101), "0", "digits relayed to the conference");
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn voicebridge_pin_routes_to_the_default_server_and_server_bye_ends_the_call() {
    let media = conference_media();
    // The server's address is no trunk's: it may still end the call it was dialled for.
    let server = conference(Scenario::conference_hangs_up(), &media)
        .local_ip(SERVER_ONLY_IP)
        .pause(Duration::from_secs(3))
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        // Repeated keys: each press counts once, so this is 77117, not 7117 or 777117.
        .pcap(CallerStream::new("77117#").tail(Duration::from_secs(6)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let server = server.wait();
    server.assert_success();
    let caller = caller.wait();
    caller.assert_success();
    let uri = server.first_received("INVITE");
    assert!(uri.request_uri().unwrap().starts_with("sip:77117@"));
    // The server's BYE reached the caller as dialin's BYE, within a second.
    assert_eq!(caller.received_requests("BYE").len(), 1);
    assert_bye_crossed_within_a_second(&server, &caller);
    dialin.wait_for_line("outcome=ServerHangup", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn sip_info_digits_reach_a_conference() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    // The PIN and then 0 as SIP INFO: the 0 must reach the conference as RFC 4733.
    let caller = Sipp::new(Scenario::caller_hangs_up().with_info_digits(
        &format!("{PIN}#0"),
        Duration::from_millis(800),
        Duration::from_millis(300),
    ))
    .pcap(CallerStream::new("").lead(Duration::from_secs(5)))
    .remote(cfg.sip)
    .service(DIALLED)
    .pause(Duration::from_secs(3))
    .spawn();
    caller.wait().assert_success();
    let server = server.wait();
    server.assert_success();
    let invite = server.first_received("INVITE");
    assert!(invite
        .request_uri()
        .unwrap()
        .starts_with(&format!("sip:{CONFERENCE}@")));
    let rec = media.stop();
    assert!(rec.caller_audio() > 20, "bridged audio flowed");
    assert_eq!(
        rec.digits(101),
        "0",
        "the INFO digit became an RFC 4733 event"
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn caller_hangs_up_during_the_prompt() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new("").lead(Duration::from_millis(500)))
        .remote(cfg.sip)
        .service(DIALLED)
        .pause(Duration::from_secs(1))
        .spawn();
    caller.wait().assert_success();
    dialin.wait_for_line("outcome=CallerHangup", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn cancel_before_answer_leaves_nothing_behind() {
    let mut cfg = TestConfig::new(no_server());
    cfg.answer_delay = "3s";
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_cancels(Duration::from_millis(800)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let caller = caller.wait();
    caller.assert_success();
    dialin.wait_for_line("caller gave up before the answer", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn no_common_codec_gets_488() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_unsupported_codec())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    dialin.assert_idle(Duration::from_secs(5));
}

/// Issue 23, item 7: the 488 says why in a `Warning` (RFC 3261 §20.43), so the provider's or
/// the phone's log tells the operator what to change: 305 and what dialin takes for a codec
/// mismatch, 304 for an offer without audio.
#[test]
fn a_488_names_what_did_not_fit_in_a_warning() {
    use crate::support::rawsip::RawCall;
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let offers = [
        (
            "m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
            "305 dialin \"Incompatible media format: dialin takes PCMU, PCMA",
        ),
        (
            "m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n",
            "305 dialin",
        ),
        (
            "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
            "304 dialin \"Media type not available",
        ),
    ];
    for (i, (media, warning)) in offers.into_iter().enumerate() {
        let mut call = RawCall::udp(cfg.sip, &format!("warn-{i}"));
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
        );
        call.invite(&sdp);
        let refused = call.expect_response(488, "INVITE", Duration::from_secs(5));
        let got = refused.header("Warning").unwrap_or_default();
        assert!(
            got.starts_with(warning),
            "{media}: Warning {got:?}\n{}",
            refused.text
        );
        let ack = call.request("ACK", 1, "inv", false, "");
        call.send_raw(ack.as_bytes());
    }
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_source_outside_the_allow_list_gets_403_and_no_call() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    cfg.reject = "403";
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_rejected())
        .local_ip(Ipv4Addr::new(127, 0, 0, 2))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let caller = caller.wait();
    caller.assert_success();
    assert_eq!(caller.final_response_code(), Some(403));
    assert_eq!(dialin.status_value("calls_started"), 0);
    assert!(dialin.status_value("sip_sources_rejected") >= 1);
    dialin.assert_log_free_of(&["127.0.0.2"]);
}

#[test]
fn a_source_outside_the_allow_list_gets_silence_when_configured() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    cfg.reject = "silence";
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_unanswered())
        .local_ip(Ipv4Addr::new(127, 0, 0, 2))
        .remote(cfg.sip)
        .service(DIALLED)
        .pause(Duration::from_secs(2))
        .spawn();
    caller.wait().assert_success();
    assert_eq!(dialin.status_value("calls_started"), 0);
    assert!(dialin.status_value("sip_sources_rejected") >= 1);
    dialin.assert_log_free_of(&["127.0.0.2"]);
}

#[test]
fn server_refusal_plays_unavailable_then_hangs_up() {
    let media = conference_media();
    let server = conference(
        Scenario::conference_rejects(503, "Service Unavailable"),
        &media,
    )
    .spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("71234#").tail(Duration::from_secs(8)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    server.wait().assert_success();
    let caller = caller.wait();
    caller.assert_success();
    dialin.wait_for_line("outcome=NoConference", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn unanswered_server_is_cancelled_after_the_answer_timeout() {
    let media = conference_media();
    let server = conference(Scenario::conference_never_answers(), &media).spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.server_answer_timeout = "2s";
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("71234#").tail(Duration::from_secs(10)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let server = server.wait();
    server.assert_success();
    assert_eq!(server.received_requests("CANCEL").len(), 1);
    caller.wait().assert_success();
    dialin.wait_for_line("outcome=NoConference", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn echo_test_plays_the_caller_back_and_the_prompt_is_heard() {
    // The caller's media is a Rust peer: it hears the prompt, then its own frames come back.
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let phone = conference_media();
    let caller = Sipp::new(Scenario::caller_hangs_up().with_info_digits(
        "00000#",
        Duration::from_millis(1500),
        Duration::from_millis(100),
    ))
    // sipp sends no RTP itself: the phone peer is the caller's only media source.
    .pcap(silent_caller())
    .sdp_media(phone.local_addr())
    .remote(cfg.sip)
    .service(DIALLED)
    .pause(Duration::from_secs(3))
    .spawn();
    caller.wait().assert_success();
    let rec = phone.stop();
    assert!(
        rec.other_audio() >= 50,
        "the welcome prompt reached the phone: {} frames",
        rec.other_audio()
    );
    assert!(
        rec.conference_audio() >= 50,
        "the phone's own frames came back: {}",
        rec.conference_audio()
    );
    dialin.wait_for_line("echo test", Duration::from_secs(1));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn garbage_datagrams_do_not_disturb_a_call_in_progress() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let mut dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(5)))
        .rtp_echo()
        .pause(Duration::from_secs(9))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    // Once bridged, throw garbage at the SIP port and at every RTP port of dialin's range.
    dialin.wait_for_line("bridged", Duration::from_secs(8));
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let samples: [&[u8]; 6] = [
        b"\x00\xff\x13garbage",
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
        b"INVITE sip:71234@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
        &[0x80; 1400],
        b"\x80\x00\x00",
    ];
    for i in 0..3000usize {
        let data = samples[i % samples.len()];
        junk.send_to(data, cfg.sip).ok();
        let rtp_port = cfg.rtp.0 + (i % 16) as u16;
        junk.send_to(data, (Ipv4Addr::LOCALHOST, rtp_port)).ok();
    }
    caller.wait().assert_success();
    server.wait().assert_success();
    let rec = media.stop();
    assert!(
        rec.caller_audio() >= 150,
        "caller audio: {}",
        rec.caller_audio()
    );
    assert!(
        rec.conference_audio() >= 100,
        "conference audio back: {}",
        rec.conference_audio()
    );
    assert!(dialin.is_running());
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_caller_over_tcp_is_bridged() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(2)))
        .arg("-t")
        .arg("t1")
        .pause(Duration::from_secs(5))
        .remote(cfg.sip)
        .service(DIALLED)
        // The harness's readiness check looks for a UDP socket; over TCP sipp has none.
        .spawn_unchecked();
    caller.wait().assert_success();
    server.wait().assert_success();
    assert!(media.stop().caller_audio() >= 50);
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn options_outside_a_dialog_is_answered_200() {
    let cfg = TestConfig::new(no_server());
    let _dialin = cfg.start();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let local = sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-opt1\r\n\
         From: <sip:probe@{local}>;tag=1\r\nTo: <sip:{sip}>\r\nCall-ID: opt-1\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sip = cfg.sip
    );
    sock.send_to(options.as_bytes(), cfg.sip).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to OPTIONS");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains("INVITE"), "Allow lists INVITE: {answer}");
}

#[test]
fn hold_by_reinvite_is_honoured() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let phone = silent_phone();
    let caller = Sipp::new(Scenario::custom(
        "caller_reinvite_hold",
        include_str!("../sipp/caller_reinvite_hold.xml"),
    ))
    .sdp_media(phone.local_addr())
    .remote(cfg.sip)
    .service(DIALLED)
    .spawn();
    let caller = caller.wait();
    caller.assert_success();
    let rec = phone.stop();
    // dialin sent the prompt, went quiet while held, and resumed afterwards.
    let times: Vec<Duration> = rec.received.iter().map(|r| r.at).collect();
    let (gap_at, gap) = times
        .windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .max_by_key(|(_, gap)| *gap)
        .expect("packets before and after the hold");
    assert!(gap >= Duration::from_millis(1200), "largest gap {gap:?}");
    assert!(
        times.iter().any(|t| *t > gap_at + gap),
        "media resumed after the hold"
    );
    // The answer to a PCMA offer is PCMA.
    assert!(rec.rtp().all(|p| p.payload_type == 8));
    dialin.assert_idle(Duration::from_secs(5));
}

/// `tests/sipp/caller_reinvite_hold.xml` for a caller that types its PIN by SIP INFO first:
/// PCMU (the stand-in conference and BBB's speak it, and dialin does not transcode), and the
/// later requests' CSeqs above the INFOs' (10 and up).
pub(crate) fn pcmu_hold_after_info_pin() -> String {
    include_str!("../sipp/caller_reinvite_hold.xml")
        .replace("RTP/AVP 8 101", "RTP/AVP 0 101")
        .replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000")
        .replace("CSeq: 2 ", "CSeq: 102 ")
        .replace("CSeq: 3 ", "CSeq: 103 ")
        .replace("CSeq: 4 ", "CSeq: 104 ")
}

/// Issue 22, item 6: a bridged caller's hold (`sendonly`) lets nothing of theirs reach the
/// meeting (a PBX's music on hold would play to everyone), and on resume their audio flows
/// again at once. The phone keeps sending all along, as a PBX playing music does.
#[test]
fn a_bridged_callers_music_on_hold_never_reaches_the_meeting() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let phone = conference_media();
    let xml = pcmu_hold_after_info_pin();
    let caller = Sipp::new(
        Scenario::custom("caller_reinvite_hold", &xml).with_info_digits(
            &format!("{PIN}#"),
            Duration::from_millis(300),
            Duration::from_millis(50),
        ),
    )
    // The INFOs' From, as the scenario's own.
    .key("caller_name", "Holder")
    .key("caller_user", "+4940111222")
    .sdp_media(phone.local_addr())
    .remote(cfg.sip)
    .service(DIALLED)
    .spawn();
    caller.wait().assert_success();
    dialin.wait_for_line("bridged", Duration::from_secs(1));
    let rec = media.stop();
    let from_caller: Vec<Duration> = rec.received.iter().map(|r| r.at).collect();
    let (gap_at, gap) = from_caller
        .windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .max_by_key(|(_, gap)| *gap)
        .expect("the caller's audio before and after the hold");
    // The scenario holds for 1.5 s (plus the re-INVITEs' round trips).
    assert!(
        gap >= Duration::from_millis(1400),
        "the caller's audio reached the meeting during the hold: largest gap {gap:?}"
    );
    assert!(
        gap <= Duration::from_millis(1900),
        "the caller's audio came back {gap:?} after the hold began"
    );
    assert!(
        from_caller.iter().filter(|t| **t > gap_at + gap).count() > 20,
        "audio flows again after the resume"
    );
    drop(phone);
    server.wait().assert_success();
}

#[test]
fn freeswitch_answer_and_shutdown_bye_as_captured() {
    let media = conference_media();
    let server = conference(Scenario::conference_freeswitch_shutdown(), &media)
        .pause(Duration::from_secs(3))
        .spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(6)))
        .rtp_echo()
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let server = server.wait();
    server.assert_success();
    let caller = caller.wait();
    caller.assert_success();
    assert_bye_crossed_within_a_second(&server, &caller);
    let rec = media.stop();
    assert!(
        rec.caller_audio() >= 50,
        "caller audio {}",
        rec.caller_audio()
    );
    assert!(
        rec.conference_audio() >= 30,
        "conference audio {}",
        rec.conference_audio()
    );
    dialin.wait_for_line("outcome=ServerHangup", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_server_reinvite_is_answered_with_the_same_media() {
    let media = conference_media();
    // The server's address is no trunk's: it may still re-INVITE the leg dialin dialled.
    let server = conference(Scenario::conference_reinvites(), &media)
        .local_ip(SERVER_ONLY_IP)
        .pause(Duration::from_millis(1500))
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(4)))
        .pause(Duration::from_secs(6))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    server.wait().assert_success();
    // Audio kept flowing after the re-INVITE.
    let rec = media.stop();
    assert!(
        rec.caller_audio() >= 150,
        "caller audio {}",
        rec.caller_audio()
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_key_press_stops_the_prompt() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let phone = silent_phone();
    // One key 1.5 s into the 6.5 s welcome prompt, then 4 s of listening.
    let caller = Sipp::new(Scenario::caller_hangs_up().with_info_digits(
        "1",
        Duration::from_millis(1500),
        Duration::ZERO,
    ))
    .pcap(silent_caller())
    .sdp_media(phone.local_addr())
    .remote(cfg.sip)
    .service(DIALLED)
    .pause(Duration::from_secs(4))
    .spawn();
    caller.wait().assert_success();
    let rec = phone.stop();
    let speech: Vec<Duration> = rec
        .received
        .iter()
        .filter(|r| {
            r.rtp()
                .is_some_and(|p| payload::classify(p.payload) == PayloadKind::Other)
        })
        .map(|r| r.at)
        .collect();
    let (first, last) = (speech[0], *speech.last().unwrap());
    assert!(
        last - first < Duration::from_millis(2500),
        "the prompt kept playing for {:?} after the key",
        last - first
    );
    let silence_after = rec
        .received
        .iter()
        .filter(|r| r.at > last)
        .filter(|r| {
            r.rtp()
                .is_some_and(|p| payload::classify(p.payload) == PayloadKind::Silence)
        })
        .count();
    assert!(
        silence_after >= 100,
        "silence follows: {silence_after} frames"
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn the_caller_hears_one_continuous_stream_from_prompt_to_meeting() {
    let conference_side = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &conference_side).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    // The phone's media is a Rust peer that records what dialin sends it.
    let phone = conference_media();
    let caller = Sipp::new(Scenario::caller_hangs_up().with_info_digits(
        &format!("{PIN}#"),
        Duration::from_millis(1000),
        Duration::from_millis(100),
    ))
    .pcap(silent_caller())
    .sdp_media(phone.local_addr())
    .remote(cfg.sip)
    .service(DIALLED)
    .pause(Duration::from_secs(3))
    .spawn();
    caller.wait().assert_success();
    server.wait().assert_success();
    let rec = phone.stop();
    conference_side.stop();
    let packets: Vec<_> = rec.rtp().collect();
    assert_eq!(rec.ssrcs().len(), 1, "one SSRC toward the caller");
    let first_meeting = packets
        .iter()
        .position(|p| matches!(payload::classify(p.payload), PayloadKind::Conference(_)))
        .expect("the meeting's audio reached the caller");
    assert!(
        packets[..first_meeting]
            .iter()
            .any(|p| payload::classify(p.payload) == PayloadKind::Other),
        "the prompt came first"
    );
    for pair in packets.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "sequence numbers continue"
        );
        let step = pair[1].timestamp.wrapping_sub(pair[0].timestamp);
        assert!(
            (1..=8000 * 2).contains(&step),
            "timestamps move forward: step {step}"
        );
    }
    assert!(
        packets[first_meeting].marker,
        "marker where the source changes"
    );
    dialin.assert_idle(Duration::from_secs(5));
}

/// A small deterministic PRNG for the mutation test (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

/// `base` with 1–20 random byte flips, cuts, insertions of SIP punctuation and repeats.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    const TOKENS: [&[u8]; 12] = [
        b":",
        b";",
        b"<",
        b">",
        b"\r\n",
        b" ",
        b"\0",
        b"%",
        b"=",
        b"@",
        b"[",
        b"99999999999999999999",
    ];
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(20) {
        let i = rng.below(b.len());
        match rng.below(4) {
            0 if !b.is_empty() => b[i] = rng.below(256) as u8,
            1 if !b.is_empty() => {
                let end = (i + 1 + rng.below(30)).min(b.len());
                b.drain(i..end);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(i..i, t.iter().copied());
            }
            _ => {
                let j = rng.below(b.len());
                let end = (j + 1 + rng.below(40)).min(b.len());
                let piece = b[j..end].to_vec();
                b.splice(i..i, piece);
            }
        }
    }
    b
}

#[test]
fn mutated_sip_never_takes_dialin_down() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = r#"["127.0.0.1/32"]"#.into();
    let mut dialin = cfg.start();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let invite = |body: &str| {
        format!(
            "INVITE sip:71234@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n\
             From: \"x\" <sip:123@127.0.0.1>;tag=1\r\nTo: <sip:71234@127.0.0.1>\r\nCall-ID: c1@x\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:1@127.0.0.1:5999>\r\nMax-Forwards: 70\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len(),
            sip = cfg.sip
        )
        .into_bytes()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // From a source outside the allow list: only the parser sees these.
    let outsider = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    let full = invite(sdp);
    for i in 0..20_000 {
        outsider.send_to(&mutate(&mut rng, &full), cfg.sip).ok();
        if i % 500 == 0 {
            // Pacing, not waiting: the socket buffer must not drop what should be parsed.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // From the trunk: with an SDP offering no audio, so whatever parses ends in a final
    // answer (488), not in a call waiting for its ACK.
    let trunk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let bare = invite("v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 5002 RTP/AVP 96\r\n");
    for i in 0..3_000 {
        trunk.send_to(&mutate(&mut rng, &bare), cfg.sip).ok();
        if i % 200 == 0 {
            // Pacing, as above.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Still answering: a caller with an unusable codec gets its 488 as usual. Its INVITE
    // queues behind the flood, so by its answer dialin has been through all of it.
    let caller = Sipp::new(Scenario::caller_unsupported_codec())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    assert!(dialin.is_running(), "dialin died:\n{}", dialin.log());
    caller.assert_success();
    assert!(!dialin.log().contains("panicked"), "{}", dialin.log());
    // Mutations that still parse as an INVITE (some without SDP, so answered with our offer)
    // wait for an ACK that never comes: the INVITE transaction gives up after 64*T1 = 32 s.
    dialin.assert_idle(Duration::from_secs(40));
}

#[test]
fn an_invite_without_sdp_gets_our_offer_and_the_ack_answer_is_used() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_late_offer())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(2)))
        .pause(Duration::from_secs(5))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    server.wait().assert_success();
    assert!(
        media.stop().caller_audio() >= 50,
        "bridged with the ACK's media"
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_call_finding_no_free_rtp_port_gets_503_and_others_carry_on() {
    let media = conference_media();
    let server = conference(Scenario::conference_waits_for_bye(), &media).spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    // Room for exactly one bridged call: two legs, each an RTP port and its RTCP neighbour.
    cfg.rtp = (cfg.rtp.0, cfg.rtp.0 + 3);
    let dialin = cfg.start();
    let first = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(4)))
        .pause(Duration::from_secs(7))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    dialin.wait_for_line("bridged", Duration::from_secs(8));
    let second = Sipp::new(Scenario::caller_rejected())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let second = second.wait();
    second.assert_success();
    assert_eq!(second.final_response_code(), Some(503));
    let refusal = second
        .messages()
        .into_iter()
        .find(|m| m.status_code() == Some(503))
        .unwrap();
    assert!(refusal.header("Retry-After").is_some(), "{}", refusal.text);
    first.wait().assert_success();
    server.wait().assert_success();
    assert!(
        media.stop().caller_audio() >= 100,
        "the first call kept its audio"
    );
    dialin.assert_idle(Duration::from_secs(5));
}
