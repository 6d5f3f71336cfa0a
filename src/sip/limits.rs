//! Per-source rate limits for SIP: a token bucket per source address, on simulated time.
//!
//! A dial-in number on the public internet is probed all day; one noisy source (a scanner, a
//! misconfigured proxy, a retransmission storm) must not take the SIP edge away from the rest.
//! [`RateLimiter`] is sans-IO: the caller passes `now`, so it is tested on simulated time. The
//! table of sources is bounded: when it is full, idle sources are forgotten, and if none is idle
//! every unknown source shares one overflow bucket (so spoofed source addresses cannot grow
//! memory, and together get no more than one source's share).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The rate and burst of one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second (requests per second allowed in the long run); 0 refuses all.
    pub per_second: u32,
    /// Most tokens a bucket holds: how many requests may arrive at once after a quiet spell.
    pub burst: u32,
}

/// One source's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens left, in millitokens (integer arithmetic, no drift).
    milli: u64,
    /// When `milli` was last brought up to date.
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            milli: u64::from(rate.burst) * 1000,
            at: now,
        }
    }

    /// Refills for the time since the last update, then takes one token if there is one.
    fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at);
        let cap = u64::from(rate.burst) * 1000;
        let added = (elapsed.as_micros() as u64).saturating_mul(u64::from(rate.per_second)) / 1000;
        self.milli = self.milli.saturating_add(added).min(cap);
        // Move `at` only when tokens were added, so slow trickles of elapsed time still count.
        if added > 0 || self.milli == cap {
            self.at = now;
        }
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (the source has been quiet; safe to forget).
    fn idle(&self, rate: Rate, now: Instant) -> bool {
        let refill_ms = if rate.per_second == 0 {
            u64::MAX
        } else {
            (u64::from(rate.burst) * 1000).saturating_sub(self.milli) / u64::from(rate.per_second)
        };
        now.saturating_duration_since(self.at) >= Duration::from_millis(refill_ms)
    }
}

/// Token buckets per source address, bounded in size.
#[derive(Debug)]
pub struct RateLimiter {
    /// Rate and burst of every bucket.
    rate: Rate,
    /// One bucket per known source.
    buckets: HashMap<IpAddr, Bucket>,
    /// Most sources tracked at once.
    max_sources: usize,
    /// Shared by sources that arrive while the table is full of busy sources.
    overflow: Bucket,
    /// Requests refused since start-up (a counter for status and metrics).
    refused: u64,
    /// When idle sources were last swept out of a full table.
    last_sweep: Instant,
}

impl RateLimiter {
    /// A limiter with `rate` per source, tracking at most `max_sources` sources (at least 1).
    pub fn new(rate: Rate, max_sources: usize, now: Instant) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: HashMap::new(),
            max_sources: max_sources.max(1),
            overflow: Bucket::full(rate, now),
            refused: 0,
            last_sweep: now,
        }
    }

    /// Counts one request from `source` at `now`; false when the source is over its rate and
    /// the request should be refused. Allocation happens only when a new source is seen.
    pub fn check(&mut self, source: IpAddr, now: Instant) -> bool {
        let rate = self.rate;
        let ok = if let Some(b) = self.buckets.get_mut(&source) {
            b.take(rate, now)
        } else {
            // Sweep at most once a second: under a flood of new sources a sweep per request
            // would cost a pass over the whole table each time.
            if self.buckets.len() >= self.max_sources
                && now.saturating_duration_since(self.last_sweep) >= Duration::from_secs(1)
            {
                self.last_sweep = now;
                self.buckets.retain(|_, b| !b.idle(rate, now));
            }
            if self.buckets.len() >= self.max_sources {
                self.overflow.take(rate, now)
            } else {
                let mut b = Bucket::full(rate, now);
                let ok = b.take(rate, now);
                self.buckets.insert(source, b);
                ok
            }
        };
        if !ok {
            self.refused += 1;
        }
        ok
    }

    /// Requests refused since start-up.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Sources currently tracked (for tests and status).
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    const RATE: Rate = Rate {
        per_second: 10,
        burst: 5,
    };

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RATE, 16, t0);
        // (time offset ms, expected result) for one source.
        let table: &[(u64, bool)] = &[
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (0, false), // burst of 5 used up
            (50, false),
            (100, true), // 10/s: one token per 100 ms
            (150, false),
            (200, true),
            (1_000, true),
            (1_000, true),
            (1_000, true),
            (1_000, true),
            (1_000, true),
            (1_000, false), // refilled to the burst, not beyond
        ];
        for (i, (ms, want)) in table.iter().enumerate() {
            let now = t0 + Duration::from_millis(*ms);
            assert_eq!(l.check(ip(1), now), *want, "step {i} at {ms} ms");
        }
        assert_eq!(l.refused(), 4);
    }

    #[test]
    fn sources_are_independent() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RATE, 16, t0);
        for _ in 0..100 {
            l.check(ip(1), t0);
        }
        assert!(!l.check(ip(1), t0));
        assert!(
            l.check(ip(2), t0),
            "a flood from one source leaves others alone"
        );
    }

    #[test]
    fn a_slow_trickle_still_refills() {
        let t0 = Instant::now();
        let rate = Rate {
            per_second: 1,
            burst: 1,
        };
        let mut l = RateLimiter::new(rate, 16, t0);
        assert!(l.check(ip(1), t0));
        // Checked every 10 ms: each check adds nothing (< 1 millitoken/ms at 1/s is 1 per ms),
        // but the elapsed time must still add up to a token after a second.
        let mut ok_at = None;
        for ms in (10..=1_100).step_by(10) {
            if l.check(ip(1), t0 + Duration::from_millis(ms)) {
                ok_at = Some(ms);
                break;
            }
        }
        assert_eq!(ok_at, Some(1_000));
    }

    #[test]
    fn the_table_is_bounded_and_idle_sources_are_forgotten() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(RATE, 4, t0);
        for n in 0..4 {
            assert!(l.check(ip(n), t0));
        }
        // Table full of busy sources: newcomers share the overflow bucket (burst 5).
        let shared: Vec<bool> = (10..20).map(|n| l.check(ip(n), t0)).collect();
        assert_eq!(shared.iter().filter(|ok| **ok).count(), 5);
        assert_eq!(l.sources(), 4);
        // After the sources went quiet long enough to refill, a newcomer gets its own bucket.
        let later = t0 + Duration::from_secs(2);
        assert!(l.check(ip(30), later));
        assert_eq!(l.sources(), 1);
    }

    #[test]
    fn zero_rate_refuses_after_the_burst() {
        let t0 = Instant::now();
        let rate = Rate {
            per_second: 0,
            burst: 1,
        };
        let mut l = RateLimiter::new(rate, 4, t0);
        assert!(l.check(ip(1), t0));
        assert!(!l.check(ip(1), t0 + Duration::from_secs(100)));
    }
}
