//! RTP packet and byte counters that cost the relay no atomic operation per packet.
//!
//! Why: `dialin_rtp_packets_total` and `dialin_rtp_bytes_total` are the same few series for
//! every call, so counting each packet on them is an atomic add on a cache line that every
//! worker thread writes: four per relayed packet, bouncing between cores. Instead each worker
//! thread sums its packets in plain thread-local numbers and adds them to the shared counters
//! every [`FLUSH_EVERY`] packets and whenever a call's counters are dropped (the call ended),
//! so `/metrics` lags by less than that many packets per thread and is exact between calls.

use super::metrics::{RTP_BYTES, RTP_PACKETS};
use metrics::{counter, Counter};
use std::cell::Cell;

/// Packets a worker thread counts before adding its sums to the shared counters.
pub const FLUSH_EVERY: u64 = 256;

/// Which leg and direction a packet was counted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from the caller.
    CallerRx = 0,
    /// Sent to the caller.
    CallerTx = 1,
    /// Received from the server.
    ServerRx = 2,
    /// Sent to the server.
    ServerTx = 3,
}

const DIRECTIONS: usize = 4;

/// What a thread counted and has not yet added to the shared counters.
#[derive(Clone, Copy, Default)]
struct Pending {
    packets: [u64; DIRECTIONS],
    bytes: [u64; DIRECTIONS],
    total: u64,
}

thread_local! {
    static PENDING: Cell<Pending> = Cell::new(Pending::default());
}

/// Handles to the shared RTP counters, looked up once per call.
pub struct RtpCounters {
    /// Packets and bytes per [`Direction`], in its order.
    series: [(Counter, Counter); DIRECTIONS],
}

impl RtpCounters {
    /// Looks up the eight counters.
    pub fn new() -> RtpCounters {
        let pair = |leg: &'static str, direction: &'static str| {
            (
                counter!(RTP_PACKETS, "leg" => leg, "direction" => direction),
                counter!(RTP_BYTES, "leg" => leg, "direction" => direction),
            )
        };
        RtpCounters {
            series: [
                pair("caller", "rx"),
                pair("caller", "tx"),
                pair("server", "rx"),
                pair("server", "tx"),
            ],
        }
    }

    /// Counts one packet of `len` bytes.
    #[inline]
    pub fn count(&self, direction: Direction, len: usize) {
        PENDING.with(|cell| {
            let mut p = cell.get();
            p.packets[direction as usize] += 1;
            p.bytes[direction as usize] += len as u64;
            p.total += 1;
            if p.total >= FLUSH_EVERY {
                self.add(&p);
                p = Pending::default();
            }
            cell.set(p);
        });
    }

    /// Adds what this thread counted so far to the shared counters.
    pub fn flush(&self) {
        let p = PENDING.with(|cell| cell.replace(Pending::default()));
        self.add(&p);
    }

    fn add(&self, p: &Pending) {
        for (i, (packets, bytes)) in self.series.iter().enumerate() {
            if p.packets[i] > 0 {
                packets.increment(p.packets[i]);
                bytes.increment(p.bytes[i]);
            }
        }
    }
}

impl Default for RtpCounters {
    fn default() -> RtpCounters {
        RtpCounters::new()
    }
}

impl Drop for RtpCounters {
    /// A call's end publishes its thread's sums, so the totals are exact once calls are over.
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

    /// The value of `dialin_rtp_packets_total{leg, direction}` in the rendered page, 0 if absent.
    fn packets(handle: &PrometheusHandle, leg: &str, direction: &str) -> u64 {
        let series = format!("{RTP_PACKETS}{{leg=\"{leg}\",direction=\"{direction}\"}} ");
        handle
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |v| v.trim().parse().expect("a number"))
    }

    #[test]
    fn counts_reach_the_shared_counters_in_bunches_and_at_the_end() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let counters = RtpCounters::new();
            for _ in 0..FLUSH_EVERY - 1 {
                counters.count(Direction::CallerRx, 172);
            }
            // Not yet published: the thread holds them.
            assert_eq!(packets(&handle, "caller", "rx"), 0);
            counters.count(Direction::ServerTx, 172);
            assert_eq!(packets(&handle, "caller", "rx"), FLUSH_EVERY - 1);
            assert_eq!(packets(&handle, "server", "tx"), 1);
            counters.count(Direction::CallerTx, 12);
            assert_eq!(packets(&handle, "caller", "tx"), 0);
            drop(counters);
            assert_eq!(
                packets(&handle, "caller", "tx"),
                1,
                "the call's end publishes the rest"
            );
            assert_eq!(packets(&handle, "server", "rx"), 0);
        });
    }
}
