//! Self-tests of the integration-test harness in `tests/it/support/`: every piece is proven against
//! sipp itself (sipp caller ↔ sipp conference stand-in) or against a Rust socket, without dialin.
//! They stay in the repository so a broken harness is caught before it blames dialin.

use crate::support::media::{RtpPeer, SendTo};
use crate::support::pcap::{pcap_bytes, CallerStream};
use crate::support::ports::PortBlock;
use crate::support::rtp::{Event, Rtp};
use crate::support::sipp::{Scenario, Sipp, SippOutcome};
use crate::support::{payload, require_sipp};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

const DIGITS: &str = "8675309#";

/// A free address for a Rust socket on 127.0.0.1.
fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(2).base))
}

/// Runs a caller against a conference stand-in and returns both outcomes.
fn call(caller: Sipp, conference: Sipp) -> (SippOutcome, SippOutcome) {
    let conference = conference.spawn();
    let caller = caller
        .remote(conference.sip_addr())
        .service("71234")
        .spawn();
    let caller = caller.wait();
    let conference = conference.wait();
    (caller, conference)
}

#[test]
fn sipp_is_found() {
    assert!(require_sipp().ends_with("sipp"));
}

#[test]
fn port_blocks_are_distinct_across_threads() {
    let threads: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| (0..20).map(|_| PortBlock::take(8)).collect::<Vec<_>>()))
        .collect();
    let mut ports = HashSet::new();
    for thread in threads {
        for block in thread.join().unwrap() {
            for port in block.base..block.base + block.len {
                assert!(ports.insert(port), "port {port} handed out twice");
            }
        }
    }
}

#[test]
fn caller_stream_is_one_realistic_rtp_stream() {
    let stream = CallerStream::new(DIGITS).lead(Duration::from_millis(200));
    let packets = stream.packets();
    let parsed: Vec<Rtp> = packets
        .iter()
        .map(|p| Rtp::parse(&p.rtp).unwrap())
        .collect();
    assert!(parsed.iter().all(|p| p.ssrc == stream.ssrc));
    for pair in parsed.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "continuous sequence numbers"
        );
    }
    for pair in packets.windows(2) {
        assert_eq!(
            pair[1].at - pair[0].at,
            Duration::from_millis(20),
            "one packet every 20 ms"
        );
    }
    assert_eq!(
        crate::support::rtp::decode_digits(parsed.iter().copied(), 101),
        DIGITS
    );
    let events: Vec<(Rtp, Event)> = parsed
        .iter()
        .filter(|p| p.payload_type == 101)
        .map(|p| (*p, Event::parse(p.payload).unwrap()))
        .collect();
    assert_eq!(
        events.len(),
        DIGITS.len() * 8,
        "5 growing + 3 end packets per key"
    );
    for key_packets in events.chunks(8) {
        let start_ts = key_packets[0].0.timestamp;
        assert!(key_packets[0].0.marker && key_packets[1..].iter().all(|(p, _)| !p.marker));
        assert!(key_packets.iter().all(|(p, _)| p.timestamp == start_ts));
        let durations: Vec<u16> = key_packets.iter().map(|(_, e)| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 960, 960, 960]);
        assert_eq!(key_packets.iter().filter(|(_, e)| e.end).count(), 3);
    }
    let audio: Vec<&Rtp> = parsed.iter().filter(|p| p.payload_type == 0).collect();
    assert!(audio.iter().all(|p| payload::is_caller_audio(p.payload)));
    assert!(!payload::is_caller_audio(&payload::conference_frame(0)));
    // 200 ms lead + 7 gaps of 100 ms + 1 s tail.
    assert_eq!(audio.len(), 10 + 7 * 5 + 50);
}

#[test]
fn pcap_file_has_valid_headers() {
    let stream = CallerStream::new("1");
    let src = "10.0.0.1:4000".parse().unwrap();
    let dst = "10.0.0.2:5000".parse().unwrap();
    let bytes = pcap_bytes(&stream.packets(), src, dst);
    assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(bytes[20..24], 1u32.to_le_bytes(), "linktype Ethernet");
    let first = &bytes[24..];
    let captured = u32::from_le_bytes(first[8..12].try_into().unwrap()) as usize;
    let frame = &first[16..16 + captured];
    assert_eq!(frame[12..14], [0x08, 0x00]);
    let ip = &frame[14..34];
    let sum: u32 = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    assert_eq!(
        (sum & 0xffff) + (sum >> 16),
        0xffff,
        "IPv4 header checksum verifies"
    );
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[2], ip[3]])),
        captured - 14
    );
    assert_eq!(frame[36..38], 5000u16.to_be_bytes(), "UDP destination port");
}

/// sipp replays the generated pcap toward a Rust socket (the conference's SDP points at it):
/// one SSRC, every audio frame, the digits with 3 end packets each, from sipp's `-mp` port.
/// Also: the conference sees the INVITE's Request-URI and the caller's From.
#[test]
fn sipp_replays_the_caller_pcap_to_a_rust_socket() {
    let peer = RtpPeer::start(free_addr(), SendTo::Nothing);
    let stream = CallerStream::new(DIGITS)
        .lead(Duration::from_millis(500))
        .tail(Duration::from_millis(500));
    let expected = stream.packets();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(stream.clone())
        .pause(stream.duration() + Duration::from_millis(500));
    let caller_media = caller.media_addr();
    let conference = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(peer.local_addr());
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();

    let rec = peer.stop();
    assert_eq!(
        rec.sources(),
        [caller_media],
        "pcap leaves from sipp's -mp port"
    );
    assert_eq!(rec.ssrcs(), [stream.ssrc]);
    assert_eq!(rec.received.len(), expected.len(), "every packet arrives");
    for (got, sent) in rec.received.iter().zip(&expected) {
        assert_eq!(got.data, sent.rtp, "sipp rewrites only addresses and ports");
    }
    assert_eq!(rec.digits(101), DIGITS);
    assert_eq!(rec.caller_audio(), expected.len() - DIGITS.len() * 8);
    let span = rec.received.last().unwrap().at - rec.received[0].at;
    let planned = expected.last().unwrap().at;
    assert!(
        span.abs_diff(planned) < Duration::from_millis(200),
        "replayed with pcap timing: {span:?}"
    );

    let invite = conference.first_received("INVITE");
    assert!(
        invite.request_uri().unwrap().starts_with("sip:71234@"),
        "{}",
        invite.text
    );
    assert!(invite
        .header("From")
        .unwrap()
        .starts_with("\"+49 30 1234567\" <sip:+49301234567@"));
    assert!(
        invite.body().contains("m=audio") && invite.body().contains("101 telephone-event/8000")
    );
}

/// `-rtp_echo` and `play_pcap_audio` together on the same `-mp` port: the conference-side peer
/// gets the caller's pcap audio and its own frames echoed back, both from the `-mp` port.
#[test]
fn rtp_echo_works_together_with_pcap_playback() {
    let peer = RtpPeer::start(free_addr(), SendTo::FirstSource);
    let stream = CallerStream::new("1#")
        .lead(Duration::from_secs(1))
        .tail(Duration::from_secs(1));
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(stream.clone())
        .rtp_echo()
        .pause(stream.duration() + Duration::from_millis(300));
    let caller_media = caller.media_addr();
    let conference = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(peer.local_addr());
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();

    let rec = peer.stop();
    assert_eq!(rec.sent_to, Some(caller_media));
    assert_eq!(rec.sources(), [caller_media]);
    assert_eq!(rec.digits(101), "1#");
    assert!(
        rec.caller_audio() >= 100,
        "caller audio: {}",
        rec.caller_audio()
    );
    // sipp's echo runs in its own thread and drops what it cannot keep up with: 137 of 216
    // once, on 2 cores busy with the whole suite. Half shows the echo works beside playback.
    assert!(
        rec.conference_audio() as u32 >= rec.sent / 2,
        "echoed {} of {} sent",
        rec.conference_audio(),
        rec.sent
    );
    assert_eq!(rec.other_audio(), 0);
}

#[test]
fn caller_sends_info_digits_and_conference_accepts_them() {
    let caller = Sipp::new(Scenario::caller_hangs_up().with_info_digits(
        "12*#",
        Duration::from_millis(100),
        Duration::from_millis(50),
    ))
    .pcap(
        CallerStream::new("")
            .lead(Duration::from_millis(500))
            .tail(Duration::ZERO),
    )
    .pause(Duration::from_millis(200));
    let conference = Sipp::new(Scenario::conference_waits_for_bye());
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();
    let infos = conference.received_requests("INFO");
    let signals: Vec<&str> = infos
        .iter()
        .map(|m| {
            assert_eq!(m.header("Content-Type"), Some("application/dtmf-relay"));
            assert!(m.body().contains("Duration=160"));
            m.body().lines().next().unwrap()
        })
        .collect();
    assert_eq!(signals, ["Signal=1", "Signal=2", "Signal=*", "Signal=#"]);
}

#[test]
fn conference_hangs_up_and_caller_waits_for_bye() {
    let caller = Sipp::new(Scenario::caller_waits_for_bye()).pcap(CallerStream::new(""));
    let conference = Sipp::new(Scenario::conference_hangs_up()).pause(Duration::from_millis(500));
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();
    let bye = caller.first_received("BYE");
    assert!(bye.header("Reason").unwrap().contains("NORMAL_CLEARING"));
    assert!(
        bye.header("To").unwrap().contains("+49301234567"),
        "{}",
        bye.text
    );
}

#[test]
fn caller_cancels_a_call_the_conference_never_answers() {
    let caller = Sipp::new(Scenario::caller_cancels(Duration::from_millis(300)));
    let conference = Sipp::new(Scenario::conference_never_answers());
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();
    assert_eq!(caller.final_response_code(), Some(487));
}

#[test]
fn rejections_reach_the_caller() {
    for (code, reason) in [
        (503, "Service Unavailable"),
        (486, "Busy Here"),
        (403, "Forbidden"),
    ] {
        let caller = Sipp::new(Scenario::caller_rejected());
        let conference = Sipp::new(Scenario::conference_rejects(code, reason));
        let (caller, conference) = call(caller, conference);
        caller.assert_success();
        conference.assert_success();
        assert_eq!(caller.final_response_code(), Some(code));
    }
}

#[test]
fn unsupported_codec_offer_expects_488() {
    let caller = Sipp::new(Scenario::caller_unsupported_codec());
    let conference = Sipp::new(Scenario::conference_rejects(488, "Not Acceptable Here"));
    let (caller, conference) = call(caller, conference);
    caller.assert_success();
    conference.assert_success();
    let invite = conference.first_received("INVITE");
    assert!(invite.body().contains("m=audio") && invite.body().contains("RTP/AVP 18 101"));
}

/// An INVITE from 127.0.0.2 that nobody answers: sipp exits 0 after the pause, and the silent
/// socket saw the INVITE (with retransmissions) from 127.0.0.2.
#[test]
fn unanswered_invite_succeeds_when_nothing_answers() {
    let silent = UdpSocket::bind(free_addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let caller = Sipp::new(Scenario::caller_unanswered())
        .local_ip(Ipv4Addr::new(127, 0, 0, 2))
        .pause(Duration::from_millis(1500))
        .remote(silent.local_addr().unwrap())
        .service("+4930555")
        .spawn();
    let outcome = caller.wait();
    outcome.assert_success();
    let mut invites = 0;
    let mut buf = [0u8; 4096];
    while let Ok((len, from)) = silent.recv_from(&mut buf) {
        assert_eq!(from.ip(), Ipv4Addr::new(127, 0, 0, 2));
        assert!(buf[..len].starts_with(b"INVITE sip:+4930555@"));
        invites += 1;
    }
    assert!(
        invites >= 2,
        "INVITE and at least one retransmission, got {invites}"
    );
}

#[test]
fn unanswered_invite_fails_when_anything_answers() {
    let caller = Sipp::new(Scenario::caller_unanswered()).pause(Duration::from_millis(1000));
    let conference = Sipp::new(Scenario::conference_rejects(403, "Forbidden"));
    let conference = conference.spawn();
    let caller = caller.remote(conference.sip_addr()).spawn().wait();
    caller.assert_call_failed();
    drop(conference); // it waits for an ACK that never comes; killed on drop
}

/// sipp 3.6.1 exits 1 (not 255) when the scenario does not load: the same code as a failed call.
#[test]
fn sipp_exit_code_for_a_scenario_that_does_not_load_is_1() {
    let broken = Scenario::custom(
        "broken",
        "<scenario><send><![CDATA[[no_such_key]]]></send></scenario>",
    );
    let outcome = Sipp::new(broken)
        .remote(free_addr())
        .spawn_unchecked()
        .wait();
    assert_eq!(outcome.code(), Some(1), "{}", outcome.report());
    assert!(outcome.messages().is_empty());
}

/// With `-timeout_error`, sipp's global timeout ends the run with 255.
#[test]
fn sipp_exit_code_on_global_timeout_is_255() {
    let silent = UdpSocket::bind(free_addr()).unwrap();
    let outcome = Sipp::new(Scenario::caller_rejected())
        .remote(silent.local_addr().unwrap())
        .arg("-timeout")
        .arg("1s")
        .spawn()
        .wait();
    assert_eq!(outcome.code(), Some(255), "{}", outcome.report());
}

/// The real FreeSWITCH starts on its own ports, answers fs_cli and the Event Socket, refuses
/// connections once SIGKILLed, and comes back on the same ports.
#[test]
fn freeswitch_starts_answers_and_refuses_once_killed() {
    use crate::support::freeswitch::FreeSwitch;
    let mut fs = FreeSwitch::start();
    let status = fs.fs_cli("status");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("is ready"),
        "fs_cli status: {text}"
    );
    assert!(fs.api("sofia status").contains("external"));
    assert_eq!(
        fs.password(),
        crate::support::esl::PASSWORD,
        "one password for both"
    );
    assert!(fs.dir().join("log/freeswitch.log").is_file());
    // SIP answers on its own port: any final response to OPTIONS.
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sip.local_addr().unwrap();
    let to = fs.sip_addr();
    let options = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKselftest\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=1\r\nTo: <sip:{to}>\r\n\
         Call-ID: selftest@{me}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    sip.send_to(options.as_bytes(), to).unwrap();
    let mut reply = [0u8; 2048];
    let n = sip.recv(&mut reply).expect("FreeSWITCH answers OPTIONS");
    assert!(
        reply[..n].starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );
    let esl = fs.esl_addr();
    fs.kill();
    let refused = std::net::TcpStream::connect_timeout(&esl, Duration::from_secs(1))
        .expect_err("a killed FreeSWITCH's Event Socket must refuse");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    fs.restart();
    assert_eq!(fs.esl_addr(), esl);
    assert!(fs.api("status").contains("is ready"));
}
