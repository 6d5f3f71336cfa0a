//! OutStream: sequence and timestamp continuity across prompts, relay and source switches; wrap-around; payload-type mapping; malformed input.

use super::*;
use crate::media::rtp::RtpPacket;
use std::time::Duration;

const US: u32 = 0xAAAA;

fn pkt(ssrc: u32, seq: u16, ts: u32, pt: u8, marker: bool) -> [u8; 14] {
    let mut b = [0u8; 14];
    write_header(&mut b, marker, pt, SeqNo(seq), ts, Ssrc(ssrc));
    b
}

/// (marker, seq, ts, ssrc, pt) of a rewritten packet.
fn fields(b: &[u8]) -> (bool, u16, u32, u32, u8) {
    let p = RtpPacket::parse(b).unwrap();
    (
        p.marker(),
        p.sequence().0,
        p.timestamp(),
        p.ssrc().0,
        p.payload_type(),
    )
}

enum Step {
    Own(u32),
    Relay { ssrc: u32, seq: u16, ts: u32 },
}

/// Runs (ms offset, step) and checks (marker, seq, ts) of what goes out.
fn run(mut out: OutStream, steps: &[(u64, Step, (bool, u16, u32))]) {
    let t0 = Instant::now();
    for (i, (ms, step, want)) in steps.iter().enumerate() {
        let now = t0 + Duration::from_millis(*ms);
        let got = match *step {
            Step::Own(samples) => {
                let h = out.next_own(now, samples);
                assert_eq!(h.ssrc, Ssrc(US));
                (h.marker, h.seq.0, h.ts)
            }
            Step::Relay { ssrc, seq, ts } => {
                let mut b = pkt(ssrc, seq, ts, 0, false);
                out.relay(now, &mut b).unwrap();
                let (m, s, t, ssrc, pt) = fields(&b);
                assert_eq!((ssrc, pt), (US, 0), "step {i}");
                (m, s, t)
            }
        };
        assert_eq!(got, *want, "step {i} at {ms} ms");
    }
}

#[test]
fn continuity_across_prompt_relay_and_source_switch() {
    use Step::*;
    run(
        OutStream::new(US, 100u16, 1000),
        &[
            (0, Own(160), (true, 100, 1000)),
            (20, Own(160), (false, 101, 1160)),
            (41, Own(160), (false, 102, 1320)), // pacing jitter does not show
            (
                60,
                Relay {
                    ssrc: 1,
                    seq: 5000,
                    ts: 90000,
                },
                (true, 103, 1480),
            ),
            (
                80,
                Relay {
                    ssrc: 1,
                    seq: 5001,
                    ts: 90160,
                },
                (false, 104, 1640),
            ),
            (
                120,
                Relay {
                    ssrc: 1,
                    seq: 5003,
                    ts: 90480,
                },
                (false, 106, 1960),
            ), // loss
            (
                121,
                Relay {
                    ssrc: 1,
                    seq: 5002,
                    ts: 90320,
                },
                (false, 105, 1800),
            ), // late
            (
                140,
                Relay {
                    ssrc: 2,
                    seq: 7,
                    ts: 3,
                },
                (true, 107, 2120),
            ),
            (
                160,
                Relay {
                    ssrc: 2,
                    seq: 8,
                    ts: 163,
                },
                (false, 108, 2280),
            ),
            (220, Own(160), (true, 109, 2760)), // 60 ms after the last relayed packet
            (240, Own(160), (false, 110, 2920)),
            (
                260,
                Relay {
                    ssrc: 1,
                    seq: 5010,
                    ts: 91600,
                },
                (true, 111, 3080),
            ),
        ],
    );
}

#[test]
fn wraps_sequence_and_timestamp() {
    use Step::*;
    let base = u32::MAX - 200;
    run(
        OutStream::new(US, 65534u16, base),
        &[
            (0, Own(160), (true, 65534, base)),
            (20, Own(160), (false, 65535, base.wrapping_add(160))),
            (40, Own(160), (false, 0, base.wrapping_add(320))),
            (
                60,
                Relay {
                    ssrc: 3,
                    seq: 65535,
                    ts: u32::MAX - 10,
                },
                (true, 1, base.wrapping_add(480)),
            ),
            (
                80,
                Relay {
                    ssrc: 3,
                    seq: 0,
                    ts: 149,
                },
                (false, 2, base.wrapping_add(640)),
            ),
            (
                100,
                Relay {
                    ssrc: 3,
                    seq: 1,
                    ts: 309,
                },
                (false, 3, base.wrapping_add(800)),
            ),
        ],
    );
}

#[test]
fn own_gap_restarts_at_wall_clock() {
    use Step::*;
    run(
        OutStream::new(US, 0u16, 0),
        &[
            (0, Own(160), (true, 0, 0)),
            (20, Own(160), (false, 1, 160)),
            (140, Own(160), (false, 2, 320)), // 100 ms late: still within tolerance
            (500, Own(160), (true, 3, 320 + 360 * 8)),
            (500, Own(160), (false, 4, 320 + 360 * 8 + 160)), // catch-up burst
        ],
    );
}

#[test]
fn injected_event_keeps_its_timestamp_and_audio_resumes_after_it() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut out = OutStream::new(US, 0u16, 0);
    assert_eq!(out.next_own(at(0), 160).ts, 0);
    let first = out.next_event(at(20), true);
    assert_eq!((first.marker, first.seq.0, first.ts), (true, 1, 160));
    for k in 1..7u16 {
        let h = out.next_event(at(20 + 20 * k as u64), false);
        assert_eq!(
            (h.marker, h.seq.0, h.ts),
            (false, 1 + k, 160),
            "event packet {k}"
        );
    }
    let audio = out.next_own(at(160), 160);
    assert_eq!(
        (audio.marker, audio.seq.0, audio.ts),
        (false, 8, 160 + 7 * 160)
    );
    // A second event right away starts a new timestamp.
    let again = out.next_event(at(180), true);
    assert_eq!((again.marker, again.seq.0, again.ts), (true, 9, 1280 + 160));
}

#[test]
fn maps_payload_types_and_drops_unmapped() {
    let t0 = Instant::now();
    let map = PtMap::empty().with(0, 0).with(101, 96);
    let mut out = OutStream::new(US, 10u16, 0);
    let cases = [
        (0u8, Some((10u16, 0u8))),
        (101, Some((11, 96))),
        (13, None),
        (0, Some((12, 0))),
    ];
    for (i, (pt, want)) in cases.into_iter().enumerate() {
        let mut b = pkt(9, 100 + i as u16, 160 * i as u32, pt, false);
        let before = b;
        let action = out.relay_with_pt(t0, &mut b, &map).unwrap();
        match want {
            Some((seq, out_pt)) => {
                assert_eq!(action, RelayAction::Send);
                let (_, s, _, _, p) = fields(&b);
                assert_eq!((s, p), (seq, out_pt), "case {i}");
            }
            None => {
                assert_eq!(action, RelayAction::Drop);
                assert_eq!(b, before, "dropped packets are left untouched");
            }
        }
    }
    assert_eq!(PtMap::identity().get(101), Some(101));
    assert_eq!(PtMap::empty().get(0), None);
}

#[test]
fn malformed_relay_input_is_an_error_and_changes_nothing() {
    let t0 = Instant::now();
    let mut out = OutStream::new(US, 0u16, 0);
    let mut short = [0x80u8; 5];
    assert_eq!(
        out.relay(t0, &mut short),
        Err(RtpError::TooShort { len: 5 })
    );
    let mut b = pkt(1, 50, 50, 0, false);
    out.relay(t0, &mut b).unwrap();
    assert_eq!(
        fields(&b),
        (true, 0, 0, US, 0),
        "first packet uses the initial values"
    );
}
