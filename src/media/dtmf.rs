//! RFC 4733 telephone events: how callers type their PIN, and how dialin forwards key presses
//! (e.g. `0` to toggle mute) to the conference.
//!
//! [`DtmfDecoder`] turns the packets of the caller's stream into key presses, each exactly once;
//! [`DtmfEncoder`] produces the payloads for sending one key press. Both are pure: the RTP
//! header (timestamp, marker, pacing) is the caller's, see [`crate::media::rtp::OutStream::next_event`].

use crate::digit::Digit;
use crate::media::rtp::ts_is_after;

/// Volume we send (−10 dBm0), the level most implementations use; receivers ignore it anyway.
pub const DEFAULT_VOLUME: u8 = 10;

/// How often the final (end) packet is sent, as RFC 4733 §2.5.1.4 recommends against loss.
pub const END_REPEATS: usize = 3;

/// Tone length dialin uses when it forwards a key press: long enough for every receiver.
pub const DEFAULT_DURATION_MS: u32 = 100;

/// Packets in one key press of [`DEFAULT_DURATION_MS`] (4 updates + 3 end packets), for callers
/// that size a schedule up front.
pub const DEFAULT_PACKETS: usize = packet_count(DEFAULT_DURATION_MS);

/// Samples per 20 ms packet interval at 8 kHz.
const STEP_SAMPLES: u32 = 160;

/// The 4-byte payload of a telephone-event packet (RFC 4733 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code; 0–15 are the DTMF keys.
    pub event: u8,
    /// E bit: this is (a repetition of) the last packet of the event.
    pub end: bool,
    /// Power level in −dBm0 (6 bits).
    pub volume: u8,
    /// Duration so far in timestamp units (samples at 8 kHz).
    pub duration: u16,
}

impl EventPayload {
    /// Reads the first event of a payload; `None` if it is shorter than 4 bytes. (Redundant
    /// RFC 2198 blocks are not negotiated by dialin, so only the first 4 bytes matter.)
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        let b: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(EventPayload {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the payload (R bit zero, volume masked to 6 bits).
    pub fn write(&self, out: &mut [u8; 4]) {
        out[0] = self.event;
        out[1] = (self.volume & 0x3F) | if self.end { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.duration.to_be_bytes());
    }
}

/// Reports each key press in a stream of telephone-event packets exactly once.
///
/// All packets of one event carry the event's start timestamp, so the timestamp identifies the
/// event: a digit is reported on the first packet seen of a new event (without waiting for the
/// end, and without relying on the marker bit, which some providers never set). Repeated end
/// packets count once, the same key pressed again (new timestamp) counts again, packets of an
/// older event (wrap-aware serial comparison) are ignored, and so are events above 15.
#[derive(Clone, Debug, Default)]
pub struct DtmfDecoder {
    /// Timestamp and code of the latest event reported.
    last: Option<(u32, u8)>,
}

impl DtmfDecoder {
    /// A decoder that has seen no event yet.
    pub fn new() -> DtmfDecoder {
        DtmfDecoder::default()
    }

    /// Handles one telephone-event packet (its RTP timestamp and payload); returns the digit
    /// if this packet starts a key press not reported before.
    pub fn handle_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let event = EventPayload::parse(payload)?;
        let digit = Digit::from_event(event.event)?;
        if let Some((last_ts, last_event)) = self.last {
            // A different code at the same timestamp is a sender bug, but still a new key.
            let same_event = last_ts == timestamp && last_event == event.event;
            if same_event || ts_is_after(last_ts, timestamp) {
                return None;
            }
        }
        self.last = Some((timestamp, event.event));
        Some(digit)
    }

    /// The RTP timestamp of the last key press reported, if any: the rest of that event's
    /// packets may still arrive after the caller has moved on (e.g. been bridged).
    pub fn last_event_timestamp(&self) -> Option<u32> {
        self.last.map(|(ts, _)| ts)
    }

    /// Forgets the last event; call when the sender's SSRC changes, since its timestamps then
    /// start from a new random value.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// Number of packets [`DtmfEncoder`] sends for a tone of `duration_ms` (after clamping).
pub const fn packet_count(duration_ms: u32) -> usize {
    steps(duration_ms) as usize - 1 + END_REPEATS
}

/// 20 ms steps in a tone of `duration_ms`, clamped to 40 ms–8 s (the duration field is 16 bits).
const fn steps(duration_ms: u32) -> u32 {
    let ms = if duration_ms < 40 {
        40
    } else if duration_ms > 8000 {
        8000
    } else {
        duration_ms
    };
    ms.div_ceil(20)
}

/// Produces the payloads for sending one key press: one packet per 20 ms tick (the caller
/// paces), the first with the marker, durations growing by 160, then the end packet
/// [`END_REPEATS`] times. A 100 ms tone gives durations 160, 320, 480, 640, then 800 (end) ×3.
#[derive(Clone, Debug)]
pub struct DtmfEncoder {
    /// The event code.
    event: u8,
    /// Tone length in 20 ms steps.
    steps: u32,
    /// Packets produced so far.
    sent: usize,
}

impl DtmfEncoder {
    /// An encoder for `digit` held `duration_ms` (rounded up to 20 ms, clamped to 40 ms–8 s).
    pub fn new(digit: Digit, duration_ms: u32) -> DtmfEncoder {
        DtmfEncoder {
            event: digit.event_code(),
            steps: steps(duration_ms),
            sent: 0,
        }
    }

    /// Total number of packets this encoder produces.
    pub fn total_packets(&self) -> usize {
        self.steps as usize - 1 + END_REPEATS
    }

    /// The next payload and whether its RTP marker bit must be set; `None` when done.
    pub fn next_packet(&mut self) -> Option<(EventPayload, bool)> {
        if self.sent >= self.total_packets() {
            return None;
        }
        let k = self.sent as u32;
        self.sent += 1;
        let end = k + 1 >= self.steps;
        let duration = if end { self.steps } else { k + 1 } * STEP_SAMPLES;
        let payload = EventPayload {
            event: self.event,
            end,
            volume: DEFAULT_VOLUME,
            duration: duration as u16,
        };
        Some((payload, k == 0))
    }

    /// Whether all packets have been produced.
    pub fn is_done(&self) -> bool {
        self.sent >= self.total_packets()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let mut b = [0; 4];
        EventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
        .write(&mut b);
        b
    }

    /// An RTP timestamp and a telephone-event payload.
    type Packet = (u32, [u8; 4]);

    /// The packets of one key press as a provider sends them: updates, then end ×3.
    fn press(event: u8, ts: u32) -> Vec<Packet> {
        let mut v: Vec<_> = (1..=4).map(|k| (ts, ev(event, false, 160 * k))).collect();
        v.extend([(ts, ev(event, true, 800)); 3]);
        v
    }

    fn decode(packets: &[Packet]) -> String {
        let mut d = DtmfDecoder::new();
        packets
            .iter()
            .filter_map(|(ts, p)| d.handle_packet(*ts, p))
            .map(|d| d.as_char())
            .collect()
    }

    #[test]
    fn payload_round_trip() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 63,
            duration: 0xABCD,
        };
        let mut b = [0; 4];
        p.write(&mut b);
        assert_eq!(b, [11, 0x80 | 63, 0xAB, 0xCD]);
        assert_eq!(EventPayload::parse(&b), Some(p));
        assert_eq!(EventPayload::parse(&b[..3]), None);
        assert_eq!(
            EventPayload::parse(&[1, 0x40 | 5, 0, 1, 99])
                .unwrap()
                .volume,
            5
        ); // R bit ignored
    }

    #[test]
    fn decoder_reports_each_press_once() {
        let realistic: Vec<_> = [press(1, 1000), press(1, 2600), press(11, 4200)].concat();
        let late = [
            press(5, 1000),
            press(6, 2000),
            vec![(1000, ev(5, true, 800))],
        ]
        .concat();
        let wrap = [
            press(2, u32::MAX - 100),
            press(3, 60),
            press(4, u32::MAX - 100),
        ]
        .concat();
        let only_end = vec![(500, ev(9, true, 800)), (500, ev(9, true, 800))];
        let ignored = vec![(10, ev(16, false, 160)), (20, ev(200, true, 800))];
        let not_events_then_key = [ignored.clone(), press(0, 5)].concat();
        let same_ts_new_code = vec![(77, ev(1, false, 160)), (77, ev(2, false, 160))];
        let cases: [(&str, &[Packet], &str); 7] = [
            ("realistic 1 1 #", &realistic, "11#"),
            ("late packet of an older event", &late, "56"),
            ("timestamp wrap", &wrap, "23"),
            ("first packets lost", &only_end, "9"),
            ("events above 15", &ignored, ""),
            ("ignored events do not block", &not_events_then_key, "0"),
            ("new code at same timestamp", &same_ts_new_code, "12"),
        ];
        for (name, packets, want) in cases {
            assert_eq!(decode(packets), want, "{name}");
        }
    }

    #[test]
    fn reset_accepts_older_timestamps() {
        let mut d = DtmfDecoder::new();
        assert_eq!(d.handle_packet(1, &[7, 0, 0]), None, "short payload");
        assert_eq!(
            d.handle_packet(5000, &ev(1, false, 160)),
            Some(Digit::Num(1))
        );
        assert_eq!(d.handle_packet(100, &ev(2, false, 160)), None);
        d.reset();
        assert_eq!(
            d.handle_packet(100, &ev(2, false, 160)),
            Some(Digit::Num(2))
        );
    }

    #[test]
    fn encoder_packets() {
        let mut e = DtmfEncoder::new(Digit::Hash, DEFAULT_DURATION_MS);
        assert_eq!(e.total_packets(), DEFAULT_PACKETS);
        assert_eq!(DEFAULT_PACKETS, 7);
        let mut got = Vec::new();
        while let Some((p, marker)) = e.next_packet() {
            assert_eq!((p.event, p.volume), (11, DEFAULT_VOLUME));
            got.push((marker, p.end, p.duration));
        }
        let want = [
            (true, false, 160),
            (false, false, 320),
            (false, false, 480),
            (false, false, 640),
            (false, true, 800),
            (false, true, 800),
            (false, true, 800),
        ];
        assert_eq!(got, want);
        assert!(e.is_done());
        assert_eq!(e.next_packet(), None);
    }

    #[test]
    fn encoder_durations_are_clamped_and_rounded() {
        let cases = [
            (0, 4, 320),
            (50, 5, 480),
            (100, 7, 800),
            (101, 8, 960),
            (60_000, 402, 64000),
        ];
        for (ms, packets, last_duration) in cases {
            let mut e = DtmfEncoder::new(Digit::Num(1), ms);
            assert_eq!(
                (e.total_packets(), packet_count(ms)),
                (packets, packets),
                "{ms} ms"
            );
            let last = std::iter::from_fn(|| e.next_packet()).last().unwrap().0;
            assert_eq!((last.end, last.duration), (true, last_duration), "{ms} ms");
        }
    }

    #[test]
    fn encoder_output_decodes_to_one_digit() {
        let mut e = DtmfEncoder::new(Digit::Star, 100);
        let mut d = DtmfDecoder::new();
        let mut digits = Vec::new();
        while let Some((p, _)) = e.next_packet() {
            let mut b = [0; 4];
            p.write(&mut b);
            digits.extend(d.handle_packet(42, &b));
        }
        assert_eq!(digits, [Digit::Star]);
    }
}
