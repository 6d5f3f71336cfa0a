//! Key presses as tones in the caller's audio, through the call's media state.

use super::tests::packet;
use super::*;
use crate::media::g711::{self, Law};
use std::net::{IpAddr, Ipv4Addr};

const CALLER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 40000);

fn codec(law: Law, te: Option<u8>) -> LegCodec {
    LegCodec {
        law,
        pt: law.payload_type(),
        telephone_event_pt: te,
    }
}

/// 20 ms frames of `keys` as tones (60 ms each, 60 ms apart, −10 dBm0 per tone), in `law`.
fn tone_frames(law: Law, keys: &str) -> Vec<[u8; 160]> {
    let freq = |k: char| {
        let rows = ["123A", "456B", "789C", "*0#D"];
        let r = rows.iter().position(|row| row.contains(k)).expect("a key");
        let c = rows[r].find(k).expect("a key");
        (
            [697.0, 770.0, 852.0, 941.0][r],
            [1209.0, 1336.0, 1477.0, 1633.0][c],
        )
    };
    let a = 7000.0f32;
    let mut pcm: Vec<i16> = vec![0; 480];
    for k in keys.chars() {
        let (f1, f2) = freq(k);
        for n in 0..480 {
            let t = n as f32 / 8000.0;
            let x = a * (2.0 * std::f32::consts::PI * f1 * t).sin()
                + a * (2.0 * std::f32::consts::PI * f2 * t).sin();
            pcm.push(x as i16);
        }
        pcm.extend(std::iter::repeat_n(0, 480));
    }
    pcm.chunks(160)
        .map(|c| {
            let mut out = [law.silence_byte(); 160];
            g711::encode(law, c, &mut out[..c.len()]);
            out
        })
        .collect()
}

/// Feeds `frames` as the caller's audio (payload type `pt`), one per 20 ms from `t0`, and
/// returns the digits reported.
fn feed(m: &mut CallMedia, t0: Instant, pt: u8, frames: &[[u8; 160]]) -> String {
    let mut buf = [0u8; 200];
    let mut out = String::new();
    for (i, f) in frames.iter().enumerate() {
        let n = packet(&mut buf, pt, i as u16, 160 * i as u32, 7, f);
        let now = t0 + FRAME * i as u32;
        if let Received::Digit(d) = m.handle_caller_packet(now, CALLER, &mut buf, n) {
            out.push(d.as_char());
        }
    }
    out
}

/// The end packet of an RFC 4733 press of `event` (payload type 101) at `ts` in `buf`; its
/// length.
fn end_event(buf: &mut [u8], event: u8, ts: u32) -> usize {
    packet(buf, 101, 900, ts, 7, &super::tests::event(event, true, 480))
}

#[test]
fn a_caller_without_telephone_events_is_heard_in_band_in_both_laws() {
    for law in [Law::Ulaw, Law::Alaw] {
        let t0 = Instant::now();
        let mut m = CallMedia::new(Leg::new(CALLER, codec(law, None), true), t0);
        let pt = law.payload_type();
        assert_eq!(feed(&mut m, t0, pt, &tone_frames(law, "71234#")), "71234#");
    }
}

#[test]
fn a_caller_that_offered_events_is_heard_in_band_until_its_first_event() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, codec(Law::Ulaw, Some(101)), true), t0);
    // No event yet: the tones count (a phone that offered telephone-event but sends tones).
    assert_eq!(feed(&mut m, t0, 0, &tone_frames(Law::Ulaw, "12")), "12");
    // Its first event: from now on only events count, the tones are not heard twice.
    let mut buf = [0u8; 200];
    let n = end_event(&mut buf, 5, 99_000);
    let later = t0 + Duration::from_secs(5);
    assert_eq!(
        m.handle_caller_packet(later, CALLER, &mut buf, n),
        Received::Digit(Digit::Num(5))
    );
    assert_eq!(feed(&mut m, later, 0, &tone_frames(Law::Ulaw, "34")), "");
}

#[test]
fn an_event_for_the_key_just_heard_in_band_is_the_same_press() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, codec(Law::Ulaw, Some(101)), true), t0);
    let frames = tone_frames(Law::Ulaw, "9");
    assert_eq!(feed(&mut m, t0, 0, &frames), "9");
    // The phone's event for the same press arrives late.
    let mut buf = [0u8; 200];
    let n = end_event(&mut buf, 9, 1_000);
    let at = t0 + FRAME * frames.len() as u32;
    assert_eq!(
        m.handle_caller_packet(at, CALLER, &mut buf, n),
        Received::Ignored
    );
}

#[test]
fn tones_are_not_listened_to_once_bridged_or_in_the_echo_test() {
    let t0 = Instant::now();
    let mut m = CallMedia::new(Leg::new(CALLER, codec(Law::Ulaw, None), true), t0);
    m.start_echo();
    assert_eq!(feed(&mut m, t0, 0, &tone_frames(Law::Ulaw, "0")), "");
    assert!(m.inband.is_none());
}
