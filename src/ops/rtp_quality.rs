//! Receive quality of one call's incoming audio, per leg: packets lost (sequence numbers never
//! seen) and interarrival jitter, as RFC 3550 (A.3 and A.8) computes them.
//!
//! Pure and allocation-free: [`RtpQuality::observe`] reads the 12-byte header of each packet as
//! it arrives (a few integer operations on the hot path, no lock, no log); when the call ends
//! [`RtpQuality::record`] adds the totals to the aggregated metrics (never per call labels).

use crate::ops::metrics::{RTP_JITTER_SECONDS, RTP_LOST};
use std::time::Instant;

/// Sequence numbers further ahead than this are a restart, not loss (RFC 3550 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;

/// A stream silent this long may be replaced by another SSRC; until then packets of other
/// SSRCs (a phone echoing the meeting back, say) are not measured.
const STREAM_SWITCH: std::time::Duration = std::time::Duration::from_millis(500);

/// Loss and jitter of the audio arriving on one leg.
#[derive(Clone, Debug)]
pub struct RtpQuality {
    /// Arrival times are measured from here, in RTP clock units.
    origin: Instant,
    /// The RTP clock rate (8000 for G.711).
    clock_rate: u32,
    /// The stream being measured; a new SSRC starts a new stream.
    ssrc: Option<u32>,
    /// When the measured stream's last packet arrived.
    last_arrival: Instant,
    /// Extended (with wrap count) first and highest sequence numbers of the current stream.
    base_seq: u64,
    /// The highest extended sequence number seen.
    max_seq: u64,
    /// Packets received in the current stream (late and duplicate ones included, as RFC 3550).
    received: u64,
    /// Losses of streams that ended (an SSRC change).
    lost_before: u64,
    /// Relative transit time of the previous packet, in clock units.
    transit: Option<u32>,
    /// The running jitter estimate, in clock units.
    jitter: f64,
}

impl RtpQuality {
    /// Nothing received yet; `now` is the reference for arrival times.
    pub fn new(now: Instant, clock_rate: u32) -> RtpQuality {
        RtpQuality {
            origin: now,
            clock_rate,
            ssrc: None,
            last_arrival: now,
            base_seq: 0,
            max_seq: 0,
            received: 0,
            lost_before: 0,
            transit: None,
            jitter: 0.0,
        }
    }

    /// Takes one arriving datagram. Every RTP packet of the stream counts for loss (telephone
    /// events use the same sequence numbers as the audio); only payload type `audio_pt` counts
    /// for jitter (events share one timestamp per key press and would read as jitter).
    #[inline]
    pub fn observe(&mut self, now: Instant, packet: &[u8], audio_pt: u8) {
        if packet.len() < 12 || packet[0] >> 6 != 2 {
            return;
        }
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() && now < self.last_arrival + STREAM_SWITCH {
                return;
            }
            self.lost_before += self.lost_in_stream();
            self.ssrc = Some(ssrc);
            self.base_seq = u64::from(seq) + (1 << 16);
            self.max_seq = self.base_seq;
            self.received = 0;
            self.transit = None;
        } else {
            let ahead = seq.wrapping_sub(self.max_seq as u16);
            if ahead != 0 && ahead < MAX_DROPOUT {
                self.max_seq += u64::from(ahead);
            }
        }
        self.received += 1;
        self.last_arrival = now;
        if packet[1] & 0x7f != audio_pt {
            return;
        }
        let elapsed = now.saturating_duration_since(self.origin);
        let arrival = (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000) as u32;
        let transit = arrival.wrapping_sub(ts);
        if let Some(prev) = self.transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// Packets lost so far, over every stream of the leg.
    pub fn lost(&self) -> u64 {
        self.lost_before + self.lost_in_stream()
    }

    /// The jitter estimate now, in seconds.
    pub fn jitter_seconds(&self) -> f64 {
        self.jitter / f64::from(self.clock_rate)
    }

    fn lost_in_stream(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let expected = self.max_seq - self.base_seq + 1;
        expected.saturating_sub(self.received)
    }

    /// Adds this leg's loss to `dialin_rtp_packets_lost_total{leg}` and its jitter at the end of
    /// the call to `dialin_rtp_jitter_seconds{leg}`; `leg` is `caller` or `server`.
    pub fn record(&self, leg: &'static str) {
        if self.received == 0 && self.lost_before == 0 {
            return;
        }
        metrics::counter!(RTP_LOST, "leg" => leg).increment(self.lost());
        metrics::histogram!(RTP_JITTER_SECONDS, "leg" => leg).record(self.jitter_seconds());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
        let mut p = [0u8; 12];
        p[0] = 0x80;
        p[1] = pt;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    /// `(ms after start, seq, ts)` of one packet.
    type At = (u64, u16, u32);

    /// Feeds packets of PT 0 and SSRC 1.
    fn run(packets: &[At]) -> RtpQuality {
        let t0 = Instant::now();
        let mut q = RtpQuality::new(t0, 8000);
        for (ms, seq, ts) in packets {
            q.observe(t0 + Duration::from_millis(*ms), &packet(0, *seq, *ts, 1), 0);
        }
        q
    }

    #[test]
    fn loss_and_jitter() {
        // (name, packets, lost, jitter above, jitter below) — jitter in seconds.
        let steady: Vec<At> = (0..50)
            .map(|i| (i * 20, i as u16, i as u32 * 160))
            .collect();
        let gaps: Vec<At> = steady.iter().copied().filter(|p| p.1 % 10 != 5).collect();
        let wrapping: Vec<At> = (0..20)
            .map(|i| (i * 20, 65530u16.wrapping_add(i as u16), i as u32 * 160))
            .collect();
        let bursty: Vec<At> = (0..50)
            .map(|i| {
                (
                    i * 20 + if i % 2 == 1 { 10 } else { 0 },
                    i as u16,
                    i as u32 * 160,
                )
            })
            .collect();
        let mut duplicated = steady.clone();
        duplicated.insert(10, steady[9]);
        let cases: Vec<(&str, Vec<At>, u64, f64, f64)> = vec![
            ("steady 20 ms", steady, 0, -0.1, 0.0005),
            ("every tenth lost", gaps, 5, -0.1, 0.0005),
            ("sequence wraps", wrapping, 0, -0.1, 0.0005),
            ("10 ms bursts", bursty, 0, 0.005, 0.011),
            ("a duplicate is not a loss", duplicated, 0, -0.1, 0.01),
        ];
        for (name, packets, lost, lo, hi) in cases {
            let q = run(&packets);
            assert_eq!(q.lost(), lost, "{name}");
            let j = q.jitter_seconds();
            assert!(j > lo && j < hi, "{name}: jitter {j}");
        }
    }

    #[test]
    fn other_payload_types_and_junk_are_ignored_and_a_new_ssrc_keeps_old_losses() {
        let t0 = Instant::now();
        let mut q = RtpQuality::new(t0, 8000);
        q.observe(t0, &packet(0, 1, 0, 1), 0);
        q.observe(t0, &packet(0, 4, 480, 1), 0); // 2 and 3 lost
        q.observe(t0, &packet(101, 5, 480, 1), 0); // an event: in sequence, not audio
        q.observe(t0, &[0x80, 0, 1], 0); // too short
        q.observe(t0, &packet(0, 6, 480, 1), 0);
        q.observe(t0, &packet(0, 900, 0, 3), 0); // another stream while 1 is alive: ignored
        let later = t0 + Duration::from_secs(1);
        q.observe(later, &packet(0, 500, 0, 2), 0); // 1 went silent: a new stream
        q.observe(later, &packet(0, 501, 160, 2), 0);
        q.observe(later, &packet(0, 1, 800, 1), 0); // the old one is now the other stream
        assert_eq!(q.lost(), 2);
    }
}
