//! Tests of the call's media state on simulated time.

use super::*;
use crate::media::dtmf::EventPayload;
use crate::media::g711::Law;
use crate::media::rtp::{write_header, RtpPacket, SeqNo};
use std::net::{IpAddr, Ipv4Addr};

const CALLER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000);
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 50000);

fn pcmu(te: Option<u8>) -> LegCodec {
    LegCodec {
        law: Law::Ulaw,
        pt: 0,
        telephone_event_pt: te,
    }
}

/// Builds an RTP packet in `buf` and returns its length.
pub(super) fn packet(
    buf: &mut [u8],
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: &[u8],
) -> usize {
    let n = write_header(buf, false, pt, SeqNo(seq), ts, Ssrc(ssrc));
    buf[n..n + payload.len()].copy_from_slice(payload);
    n + payload.len()
}

pub(super) fn event(digit: u8, end: bool, duration: u16) -> [u8; 4] {
    let mut out = [0u8; 4];
    EventPayload {
        event: digit,
        end,
        volume: 10,
        duration,
    }
    .write(&mut out);
    out
}

fn prompt(frames: usize) -> EncodedPrompt {
    EncodedPrompt::from_samples(&vec![1000i16; frames * 160])
}

#[test]
fn ivr_decodes_each_key_press_once_and_ignores_other_sources() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    let mut digits = Vec::new();
    // '8' as a phone sends it: start, updates, end ×3, all with the event's timestamp.
    for (i, (end, dur)) in [
        (false, 160),
        (false, 320),
        (true, 480),
        (true, 480),
        (true, 480),
    ]
    .into_iter()
    .enumerate()
    {
        let n = packet(&mut buf, 101, 10 + i as u16, 8000, 7, &event(8, end, dur));
        if let Received::Digit(d) = m.handle_caller_packet(t0, CALLER, &mut buf, n) {
            digits.push(d);
        }
    }
    // The same packet from another port of another host is ignored.
    let n = packet(&mut buf, 101, 20, 9600, 7, &event(5, false, 160));
    let stranger = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 66)), 40000);
    assert_eq!(
        m.handle_caller_packet(t0, stranger, &mut buf, n),
        Received::Ignored
    );
    // Audio in the IVR is not forwarded anywhere.
    let n = packet(&mut buf, 0, 21, 9600, 7, &[0xff; 160]);
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Ignored
    );
    assert_eq!(digits, vec![Digit::Num(8)]);
}

#[test]
fn first_packet_from_the_sdp_host_latches_its_port() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    let nat_port = SocketAddr::new(CALLER.ip(), 41234);
    let n = packet(&mut buf, 0, 1, 0, 7, &[0xff; 160]);
    m.handle_caller_packet(t0, nat_port, &mut buf, n);
    assert_eq!(m.caller.remote(), nat_port);
    // Once latched, the SDP's original port no longer counts.
    let n = packet(&mut buf, 101, 2, 160, 7, &event(1, false, 160));
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Ignored
    );
}

#[test]
fn prompt_frames_are_paced_and_finish_once() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.play(&prompt(3), t0);
    let mut out = [0u8; 200];
    let mut sent = Vec::new();
    let mut finished = 0;
    for ms in (0..200).step_by(5) {
        let now = t0 + Duration::from_millis(ms);
        while let Some(r) = m.poll_transmit(now, &mut out) {
            let Received::ToCaller { len, to } = r else {
                panic!("IVR sends to the caller only: {r:?}");
            };
            assert_eq!(to, CALLER);
            let p = RtpPacket::parse(&out[..len]).unwrap();
            sent.push((ms, p.sequence().0, p.timestamp(), p.payload()[0]));
        }
        finished += usize::from(m.poll_prompt_finished());
    }
    assert_eq!(finished, 1);
    // 3 prompt frames at 0, 20, 40 ms, then silence every 20 ms.
    let prompt_byte = crate::media::g711::ulaw_encode(1000);
    let prompt_frames: Vec<_> = sent.iter().filter(|s| s.3 == prompt_byte).collect();
    assert_eq!(
        prompt_frames.iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 20, 40]
    );
    assert!(
        sent.iter().skip(3).all(|s| s.3 == 0xff),
        "silence after the prompt"
    );
    for w in sent.windows(2) {
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence numbers continue");
        assert_eq!(w[1].2, w[0].2.wrapping_add(160), "timestamps advance 20 ms");
        assert!(w[1].0 - w[0].0 >= 15, "paced, not bursted: {sent:?}");
    }
}

#[test]
fn bridge_relays_both_ways_and_maps_telephone_events() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(Some(96)), false), t0);
    let mut buf = [0u8; 200];
    // Caller audio → server, payload untouched, our SSRC.
    let n = packet(&mut buf, 0, 100, 1600, 7, &[0x42; 160]);
    let Received::ToServer { len, to } = m.handle_caller_packet(t0, CALLER, &mut buf, n) else {
        panic!("caller audio must go to the server");
    };
    assert_eq!((len, to), (n, SERVER));
    let p = RtpPacket::parse(&buf[..len]).unwrap();
    assert_eq!((p.payload_type(), p.payload()), (0, &[0x42u8; 160][..]));
    assert_ne!(p.ssrc(), Ssrc(7));
    // The caller's RFC 4733 event (PT 101) reaches the server as PT 96 (BBB's 0-to-mute).
    let n = packet(&mut buf, 101, 101, 1760, 7, &event(0, false, 160));
    let Received::ToServer { len, .. } = m.handle_caller_packet(t0, CALLER, &mut buf, n) else {
        panic!("events must be relayed");
    };
    assert_eq!(RtpPacket::parse(&buf[..len]).unwrap().payload_type(), 96);
    // A payload type nobody negotiated is dropped.
    let n = packet(&mut buf, 18, 102, 1920, 7, &[1; 20]);
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Ignored
    );
    // Server audio → caller.
    let n = packet(&mut buf, 0, 5, 50, 99, &[0x17; 160]);
    let Received::ToCaller { len, to } = m.handle_server_packet(t0, SERVER, &mut buf, n) else {
        panic!("server audio must go to the caller");
    };
    assert_eq!(to, CALLER);
    assert_eq!(
        RtpPacket::parse(&buf[..len]).unwrap().payload(),
        &[0x17u8; 160][..]
    );
    // Server packets from elsewhere are ignored.
    let n = packet(&mut buf, 0, 6, 210, 99, &[0x17; 160]);
    let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10)), 50000);
    assert_eq!(
        m.handle_server_packet(t0, other, &mut buf, n),
        Received::Ignored
    );
}

#[test]
fn caller_stream_continues_across_prompt_to_bridge_switch() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    let mut out = [0u8; 200];
    let Some(Received::ToCaller { len, .. }) = m.poll_transmit(t0, &mut out) else {
        panic!("silence expected at once");
    };
    let last = RtpPacket::parse(&out[..len]).unwrap();
    let (ssrc, seq) = (last.ssrc(), last.sequence().0);
    m.bridge(Leg::new(SERVER, pcmu(None), false), t0);
    let mut buf = [0u8; 200];
    let n = packet(&mut buf, 0, 31000, 123_456, 99, &[0x17; 160]);
    let t1 = t0 + Duration::from_millis(20);
    let Received::ToCaller { len, .. } = m.handle_server_packet(t1, SERVER, &mut buf, n) else {
        panic!("relay expected");
    };
    let p = RtpPacket::parse(&buf[..len]).unwrap();
    assert_eq!(
        p.ssrc(),
        ssrc,
        "one SSRC toward the caller for the whole call"
    );
    assert_eq!(p.sequence().0, seq.wrapping_add(1));
    assert!(p.marker(), "marker on the source switch");
}

#[test]
fn hold_stops_sending_to_the_caller() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.caller.update(CALLER, false);
    let mut out = [0u8; 200];
    assert_eq!(m.poll_transmit(t0, &mut out), None);
    m.caller.update(CALLER, true);
    assert!(m
        .poll_transmit(t0 + Duration::from_millis(20), &mut out)
        .is_some());
}

#[test]
fn echo_plays_the_callers_audio_back_after_the_delay() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.start_echo();
    let mut buf = [0u8; 200];
    let n = packet(&mut buf, 0, 1, 0, 7, &[0x33; 160]);
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Ignored
    );
    let mut out = [0u8; 200];
    assert_eq!(m.poll_transmit(t0 + ECHO_DELAY / 2, &mut out), None);
    assert_eq!(m.next_deadline(), Some(t0 + ECHO_DELAY));
    let Some(Received::ToCaller { len, .. }) = m.poll_transmit(t0 + ECHO_DELAY, &mut out) else {
        panic!("echo due");
    };
    assert_eq!(
        RtpPacket::parse(&out[..len]).unwrap().payload(),
        &[0x33u8; 160][..]
    );
    assert_eq!(m.poll_transmit(t0 + ECHO_DELAY, &mut out), None);
}

#[test]
fn only_the_first_echo_frame_after_an_empty_ring_moves_the_deadline() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.start_echo();
    assert!(!m.take_deadline_moved());
    let mut buf = [0u8; 200];
    let mut out = [0u8; 200];
    let mut frame = |m: &mut CallMedia, seq: u16, at: Instant| {
        let n = packet(&mut buf, 0, seq, u32::from(seq) * 160, 7, &[0x33; 160]);
        m.handle_caller_packet(at, CALLER, &mut buf, n);
    };
    frame(&mut m, 1, t0);
    assert!(
        m.take_deadline_moved(),
        "the timer must be armed for the first frame"
    );
    assert!(!m.take_deadline_moved(), "reported once");
    frame(&mut m, 2, t0 + FRAME);
    assert!(
        !m.take_deadline_moved(),
        "a later frame is due after the armed one"
    );
    // Both frames played: the ring is empty, so the next frame moves the deadline again.
    let later = t0 + FRAME + ECHO_DELAY;
    while m.poll_transmit(later, &mut out).is_some() {}
    frame(&mut m, 3, later);
    assert!(m.take_deadline_moved());
}

#[test]
fn info_digits_are_injected_as_rfc4733_toward_the_server() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(Some(101)), false), t0);
    m.send_digit(Digit::Num(0));
    let mut out = [0u8; 200];
    let mut packets = Vec::new();
    let mut now = t0;
    for _ in 0..30 {
        if let Some(Received::ToServer { len, to }) = m.poll_transmit(now, &mut out) {
            assert_eq!(to, SERVER);
            let p = RtpPacket::parse(&out[..len]).unwrap();
            assert_eq!(p.payload_type(), 101);
            let e = EventPayload::parse(p.payload()).unwrap();
            packets.push((p.marker(), p.timestamp(), e.event, e.end));
        }
        now += Duration::from_millis(20);
    }
    assert!(packets.len() >= 4, "{packets:?}");
    assert!(packets[0].0, "marker on the first event packet");
    assert!(packets.iter().all(|p| p.1 == packets[0].1 && p.2 == 0));
    assert_eq!(
        packets.iter().filter(|p| p.3).count(),
        3,
        "end sent three times"
    );
    assert_eq!(m.next_deadline(), None, "nothing more to send");
}

#[test]
fn echoed_audio_in_another_stream_does_not_repeat_digits() {
    // A phone (or sipp -rtp_echo) may send our prompt back in its own SSRC between the event
    // packets of a key press: still one key press.
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    let mut digits = 0;
    for i in 0..5u16 {
        let n = packet(
            &mut buf,
            101,
            10 + i,
            8000,
            7,
            &event(4, i >= 2, 160 * (i + 1)),
        );
        if let Received::Digit(_) = m.handle_caller_packet(t0, CALLER, &mut buf, n) {
            digits += 1;
        }
        let n = packet(&mut buf, 0, 500 + i, 99_000, 1234, &[0xff; 160]);
        m.handle_caller_packet(t0, CALLER, &mut buf, n);
    }
    assert_eq!(digits, 1);
}

#[test]
fn server_leg_never_latches_to_another_port() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(None), false), t0);
    let mut buf = [0u8; 200];
    let intruder = SocketAddr::new(SERVER.ip(), 50002);
    let n = packet(&mut buf, 0, 1, 0, 5, &[0x11; 160]);
    assert_eq!(
        m.handle_server_packet(t0, intruder, &mut buf, n),
        Received::Ignored
    );
    assert_eq!(m.server.as_ref().unwrap().remote(), SERVER);
}

#[test]
fn caller_port_latching_needs_a_negotiated_payload_type() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    let other_port = SocketAddr::new(CALLER.ip(), 40002);
    let n = packet(&mut buf, 34, 1, 0, 5, &[0x11; 40]);
    m.handle_caller_packet(t0, other_port, &mut buf, n);
    assert_eq!(
        m.caller.remote(),
        CALLER,
        "an unknown payload type does not latch"
    );
}

#[test]
fn the_rest_of_the_pin_ending_key_is_not_relayed() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    let n = packet(&mut buf, 101, 1, 4000, 7, &event(11, false, 160));
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Digit(Digit::Hash)
    );
    m.bridge(Leg::new(SERVER, pcmu(Some(101)), false), t0);
    for seq in 2..5 {
        let n = packet(&mut buf, 101, seq, 4000, 7, &event(11, seq > 2, 320));
        assert_eq!(
            m.handle_caller_packet(t0, CALLER, &mut buf, n),
            Received::Ignored
        );
    }
    // The next key press is the meeting's (0 = mute in BBB).
    let n = packet(&mut buf, 101, 5, 8000, 7, &event(0, false, 160));
    assert!(matches!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::ToServer { .. }
    ));
}

#[test]
fn a_reinvite_with_the_same_sdp_address_keeps_the_latched_port() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    let nat_port = SocketAddr::new(CALLER.ip(), 41234);
    let mut buf = [0u8; 200];
    let n = packet(&mut buf, 0, 1, 0, 7, &[0xff; 160]);
    m.handle_caller_packet(t0, nat_port, &mut buf, n);
    m.caller.update(CALLER, true);
    assert_eq!(m.caller.remote(), nat_port);
    let moved = SocketAddr::new(CALLER.ip(), 42000);
    m.caller.update(moved, true);
    assert_eq!(m.caller.remote(), moved, "a new SDP address is taken");
}

#[test]
fn digits_for_a_server_without_telephone_events_are_dropped_not_kept_due() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(None), false), t0);
    m.send_digit(Digit::Num(0));
    let mut out = [0u8; 200];
    assert_eq!(m.poll_transmit(t0, &mut out), None);
    assert_eq!(
        m.next_deadline(),
        None,
        "nothing may stay due, or the driver would spin"
    );
}

#[test]
fn an_event_interleaved_with_another_stream_keeps_one_timestamp_toward_the_server() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(Some(101)), false), t0);
    let mut buf = [0u8; 200];
    let mut event_ts = Vec::new();
    for i in 0..4u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        let n = packet(
            &mut buf,
            101,
            10 + i,
            8000,
            7,
            &event(0, i >= 2, 160 * (i + 1)),
        );
        if let Received::ToServer { len, .. } = m.handle_caller_packet(now, CALLER, &mut buf, n) {
            event_ts.push(RtpPacket::parse(&buf[..len]).unwrap().timestamp());
        }
        // Audio of another SSRC in between (a phone echoing the meeting back).
        let n = packet(&mut buf, 0, 900 + i, 55_000, 99, &[0x17; 160]);
        m.handle_caller_packet(now, CALLER, &mut buf, n);
    }
    assert_eq!(event_ts.len(), 4);
    assert!(event_ts.iter().all(|ts| *ts == event_ts[0]), "{event_ts:?}");
}

#[test]
fn the_intercepted_mute_key_is_reported_once_and_never_relayed() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    let mut buf = [0u8; 200];
    m.bridge(Leg::new(SERVER, pcmu(Some(101)), false), t0);
    m.intercept(Some(Digit::Num(0)));
    // Every packet of the 0 press (start, updates, three ends) stays here; the first reports it.
    let mut got = Vec::new();
    for (seq, end) in [(1, false), (2, false), (3, true), (4, true), (5, true)] {
        let n = packet(&mut buf, 101, seq, 8000, 7, &event(0, end, 160 * seq));
        got.push(m.handle_caller_packet(t0, CALLER, &mut buf, n));
    }
    assert_eq!(got[0], Received::Digit(Digit::Num(0)));
    assert!(got[1..].iter().all(|r| *r == Received::Ignored), "{got:?}");
    // Other keys and audio still go to the meeting.
    let n = packet(&mut buf, 101, 6, 9600, 7, &event(5, false, 160));
    assert!(matches!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::ToServer { .. }
    ));
    let n = packet(&mut buf, 0, 7, 11200, 7, &[0xff; 160]);
    assert!(matches!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::ToServer { .. }
    ));
    // A second press of 0 is a new toggle.
    let n = packet(&mut buf, 101, 8, 12800, 7, &event(0, false, 160));
    assert_eq!(
        m.handle_caller_packet(t0, CALLER, &mut buf, n),
        Received::Digit(Digit::Num(0))
    );
}

#[test]
fn a_caller_that_holds_reaches_the_meeting_with_nothing_and_resumes_at_once() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(Some(101)), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(Some(101)), false), t0);
    let mut buf = [0u8; 200];
    // Music on hold from a phone that said sendonly: not the meeting's business.
    m.caller.update(CALLER, false);
    assert!(m.caller_holds());
    for seq in 1..5u16 {
        let n = packet(&mut buf, 0, seq, 160 * seq as u32, 5, &[0x42; 160]);
        let t = t0 + Duration::from_millis(20 * seq as u64);
        assert_eq!(
            m.handle_caller_packet(t, CALLER, &mut buf, n),
            Received::Ignored
        );
        // Still heard as alive: the caller's packets count for media.timeout.
        assert_eq!(m.last_rx(Side::Caller), t);
    }
    let n = packet(&mut buf, 101, 5, 800, 5, &event(5, false, 160));
    assert_eq!(
        m.handle_caller_packet(t0 + Duration::from_millis(100), CALLER, &mut buf, n),
        Received::Ignored,
        "no key press either"
    );
    // Resumed: the very next packet goes through.
    m.caller.update(CALLER, true);
    let n = packet(&mut buf, 0, 6, 960, 5, &[0x42; 160]);
    let r = m.handle_caller_packet(t0 + Duration::from_millis(120), CALLER, &mut buf, n);
    assert!(matches!(r, Received::ToServer { to: SERVER, .. }), "{r:?}");
}

#[test]
fn each_legs_last_packet_is_kept_apart_and_the_servers_counts_from_the_bridge() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    let mut buf = [0u8; 200];
    let t1 = t0 + Duration::from_secs(5);
    m.bridge(Leg::new(SERVER, pcmu(None), false), t1);
    assert_eq!(m.last_rx(Side::Server), t1);
    let t2 = t1 + Duration::from_millis(20);
    let n = packet(&mut buf, 0, 1, 160, 9, &[0x11; 160]);
    m.handle_server_packet(t2, SERVER, &mut buf, n);
    assert_eq!(m.last_rx(Side::Server), t2);
    assert_eq!(
        m.last_rx(Side::Caller),
        t0,
        "the server's packets do not keep the caller alive"
    );
    // From elsewhere: not the server's.
    let n = packet(&mut buf, 0, 2, 320, 9, &[0x11; 160]);
    let stranger = SocketAddr::new(SERVER.ip(), 50002);
    m.handle_server_packet(t2 + Duration::from_secs(1), stranger, &mut buf, n);
    assert_eq!(m.last_rx(Side::Server), t2);
}

#[test]
fn unbridged_the_caller_hears_prompts_again_in_the_same_stream() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, pcmu(None), true), t0);
    m.bridge(Leg::new(SERVER, pcmu(None), false), t0);
    let mut buf = [0u8; 200];
    let n = packet(&mut buf, 0, 500, 1000, 9, &[0x11; 160]);
    let Received::ToCaller { len, .. } =
        m.handle_server_packet(t0 + Duration::from_millis(20), SERVER, &mut buf, n)
    else {
        panic!("relayed");
    };
    let relayed = RtpPacket::parse(&buf[..len]).unwrap();
    let (ssrc, seq) = (relayed.ssrc(), relayed.sequence().0);
    let t1 = t0 + Duration::from_millis(40);
    m.unbridge(t1);
    assert!(m.server.is_none());
    // The server's late packets go nowhere; the caller's go nowhere either.
    let n = packet(&mut buf, 0, 501, 1160, 9, &[0x11; 160]);
    assert_eq!(
        m.handle_server_packet(t1, SERVER, &mut buf, n),
        Received::Ignored
    );
    let n = packet(&mut buf, 0, 1, 160, 7, &[0x22; 160]);
    assert_eq!(
        m.handle_caller_packet(t1, CALLER, &mut buf, n),
        Received::Ignored
    );
    m.play(&prompt(5), t1);
    let mut out = [0u8; 200];
    let Some(Received::ToCaller { len, .. }) = m.poll_transmit(t1, &mut out) else {
        panic!("the prompt plays");
    };
    let p = RtpPacket::parse(&out[..len]).unwrap();
    assert_eq!(p.ssrc(), ssrc);
    assert_eq!(p.sequence().0, seq.wrapping_add(1));
}
