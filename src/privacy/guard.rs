//! Guessing protection, the pure part: who may call, and how slowly PINs are answered.
//!
//! A PIN space is small (5 digits = 100,000), so guessing must cost more than it can win:
//! - **per caller** (pseudonym; all withheld numbers are one caller): after
//!   `failed_calls` failed calls within `failed_calls_window`, the caller is blocked for
//!   `block`, doubling with every further block up to `block_max`; a blocked caller's calls
//!   hear the goodbye prompt at once. A failed call is one with a wrong PIN that did not
//!   reach a meeting. Strikes are forgotten after `block_max` without a failed call or block.
//! - **per source network and globally**: wrong PINs are counted over a sliding
//!   `rate_window`; above `failed_pins_per_network` (or `failed_pins_global`) every PIN answer
//!   is delayed by `slow_answer`, doubling with each further excess failure up to
//!   `slow_answer_max`. A person typing a PIN barely notices; a guesser's rate collapses.
//!
//! [`Guard`] holds the state and takes the time as input (wall-clock `SystemTime`, so
//! counters can be shared between instances). Memory is bounded: records expire and at most
//! [`MAX_KEYS`] callers and networks are tracked (the oldest are dropped first).

use super::pseudonym::CallerKey;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// The most callers (and, separately, networks) tracked at once.
pub const MAX_KEYS: usize = 100_000;

/// The limits, from `[abuse]` in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardLimits {
    /// Failed calls within `failed_calls_window` that block a caller; 0 never blocks.
    pub failed_calls: u32,
    /// The window failed calls are counted in (10 minutes by default).
    pub failed_calls_window: Duration,
    /// The first block's length; each further block doubles it.
    pub block: Duration,
    /// The longest block; also how long strikes are remembered.
    pub block_max: Duration,
    /// Wrong PINs per `rate_window` from one source network before answers slow down; 0 = off.
    pub failed_pins_per_network: u32,
    /// Wrong PINs per `rate_window` from everywhere before answers slow down; 0 = off.
    pub failed_pins_global: u32,
    /// The sliding window of the failed-PIN rates.
    pub rate_window: Duration,
    /// The first delay of a PIN answer once a rate is exceeded.
    pub slow_answer: Duration,
    /// The longest delay of a PIN answer.
    pub slow_answer_max: Duration,
    /// The prefix length grouping IPv4 sources into one network.
    pub network_prefix_v4: u8,
    /// The prefix length grouping IPv6 sources into one network.
    pub network_prefix_v6: u8,
}

impl Default for GuardLimits {
    fn default() -> GuardLimits {
        GuardLimits {
            failed_calls: 3,
            failed_calls_window: Duration::from_secs(10 * 60),
            block: Duration::from_secs(10 * 60),
            block_max: Duration::from_secs(24 * 60 * 60),
            failed_pins_per_network: 30,
            failed_pins_global: 100,
            rate_window: Duration::from_secs(60),
            slow_answer: Duration::from_secs(1),
            slow_answer_max: Duration::from_secs(10),
            network_prefix_v4: 24,
            network_prefix_v6: 48,
        }
    }
}

/// A caller's source network (the address with its host bits cleared). Never printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceNet(Option<IpAddr>);

impl SourceNet {
    /// The network of `ip` under `limits`' prefix lengths; `None` (unknown source) is one network.
    pub fn of(ip: Option<IpAddr>, limits: &GuardLimits) -> SourceNet {
        SourceNet(ip.map(|ip| match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let keep = limits.network_prefix_v4.min(32) as u32;
                let mask = if keep == 0 {
                    0
                } else {
                    u32::MAX << (32 - keep)
                };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let keep = limits.network_prefix_v6.min(128) as u32;
                let mask = if keep == 0 {
                    0
                } else {
                    u128::MAX << (128 - keep)
                };
                IpAddr::V6((bits & mask).into())
            }
        }))
    }
}

impl fmt::Debug for SourceNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceNet(<hidden>)")
    }
}

/// Whether a caller may call now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Go ahead.
    Allowed,
    /// Blocked until this time: goodbye at once.
    Blocked {
        /// When the block ends.
        until: SystemTime,
    },
}

/// Counters for metrics: counts only, nothing about callers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardCounts {
    /// Calls answered with goodbye at once because their caller was blocked.
    pub blocked_calls: u64,
    /// Callers that became blocked.
    pub blocks: u64,
    /// PIN answers that were delayed because a failed-PIN rate was exceeded.
    pub delayed_answers: u64,
    /// Wrong PINs seen.
    pub failed_pins: u64,
}

/// One caller's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerRecord {
    /// Recent failed calls (at most `failed_calls` of them).
    pub failures: VecDeque<SystemTime>,
    /// How many blocks so far (the next block lasts `block * 2^strikes`).
    pub strikes: u32,
    /// Blocked until then.
    pub blocked_until: Option<SystemTime>,
    /// The last failed call, for forgetting strikes.
    pub last_failure: Option<SystemTime>,
}

impl CallerRecord {
    /// The standing at `now`.
    pub fn standing(&self, now: SystemTime) -> Standing {
        match self.blocked_until {
            Some(until) if now < until => Standing::Blocked { until },
            _ => Standing::Allowed,
        }
    }

    /// Counts a failed call at `now`; returns true if this started a block.
    pub fn record_failure(&mut self, now: SystemTime, limits: &GuardLimits) -> bool {
        if let Some(quiet_since) = self.quiet_since() {
            if elapsed(quiet_since, now) >= limits.block_max {
                self.strikes = 0;
            }
        }
        self.last_failure = Some(now);
        if limits.failed_calls == 0 {
            return false;
        }
        self.failures
            .retain(|t| elapsed(*t, now) < limits.failed_calls_window);
        self.failures.push_back(now);
        if self.failures.len() < limits.failed_calls as usize {
            return false;
        }
        self.failures.clear();
        let factor = 1u32 << self.strikes.min(20);
        let block = limits.block.saturating_mul(factor).min(limits.block_max);
        self.blocked_until = Some(now + block);
        self.strikes = self.strikes.saturating_add(1);
        true
    }

    /// Since when the caller has been quiet: the later of the last failed call and the end
    /// of the last block.
    fn quiet_since(&self) -> Option<SystemTime> {
        match (self.last_failure, self.blocked_until) {
            (Some(f), Some(b)) => Some(f.max(b)),
            (f, b) => f.or(b),
        }
    }

    /// Whether the record says nothing any more at `now` and can be forgotten.
    pub fn is_stale(&self, now: SystemTime, limits: &GuardLimits) -> bool {
        let keep = limits.block_max.max(limits.failed_calls_window);
        !self
            .quiet_since()
            .is_some_and(|t| now < t || elapsed(t, now) < keep)
    }
}

/// A sliding-window event rate: the current fixed window's count plus the previous window's,
/// weighted by how much of it still overlaps the sliding window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    /// Start of the current window.
    start: Option<SystemTime>,
    /// Events in the current window.
    current: u32,
    /// Events in the window before.
    previous: u32,
}

impl Rate {
    fn roll(&mut self, now: SystemTime, window: Duration) {
        let window = window.max(Duration::from_millis(1));
        let start = *self.start.get_or_insert(now);
        let age = elapsed(start, now);
        if age >= window * 2 {
            self.previous = 0;
            self.current = 0;
            self.start = Some(now);
        } else if age >= window {
            self.previous = self.current;
            self.current = 0;
            self.start = Some(start + window);
        }
    }

    /// Adds one event at `now`.
    pub fn add(&mut self, now: SystemTime, window: Duration) {
        self.roll(now, window);
        self.current = self.current.saturating_add(1);
    }

    /// The estimated number of events in the last `window` at `now`.
    pub fn estimate(&mut self, now: SystemTime, window: Duration) -> f64 {
        self.roll(now, window);
        let Some(start) = self.start else { return 0.0 };
        let into = elapsed(start, now).as_secs_f64() / window.as_secs_f64().max(1e-3);
        self.current as f64 + self.previous as f64 * (1.0 - into.min(1.0))
    }

    /// Whether nothing is counted any more at `now`.
    fn is_idle(&mut self, now: SystemTime, window: Duration) -> bool {
        self.estimate(now, window) < 0.5
    }
}

/// The guard's whole state: callers, networks and the global rate.
#[derive(Debug, Default)]
pub struct Guard {
    /// The limits.
    pub limits: GuardLimits,
    /// Caller records by pseudonym.
    callers: HashMap<CallerKey, CallerRecord>,
    /// Failed-PIN rates by source network.
    networks: HashMap<SourceNet, Rate>,
    /// The failed-PIN rate over all sources.
    global: Rate,
    /// Counters for metrics.
    counts: GuardCounts,
}

impl Guard {
    /// A guard with these limits and nothing recorded.
    pub fn new(limits: GuardLimits) -> Guard {
        Guard {
            limits,
            ..Guard::default()
        }
    }

    /// Whether `caller` may call at `now`; a blocked call is counted.
    pub fn check_caller(&mut self, now: SystemTime, caller: &CallerKey) -> Standing {
        let standing = self
            .callers
            .get(caller)
            .map_or(Standing::Allowed, |r| r.standing(now));
        if standing != Standing::Allowed {
            self.counts.blocked_calls += 1;
        }
        standing
    }

    /// Records the end of a call by `caller`: `failed` when it typed a wrong PIN and reached
    /// no meeting. Returns true if this started a block.
    pub fn record_call(&mut self, now: SystemTime, caller: &CallerKey, failed: bool) -> bool {
        if !failed {
            return false;
        }
        if !self.callers.contains_key(caller) && self.callers.len() >= MAX_KEYS {
            let limits = self.limits;
            self.callers.retain(|_, r| !r.is_stale(now, &limits));
            if self.callers.len() >= MAX_KEYS {
                let oldest = self
                    .callers
                    .iter()
                    .min_by_key(|(_, r)| r.last_failure)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.callers.remove(&k);
                }
            }
        }
        let limits = self.limits;
        let blocked = self
            .callers
            .entry(*caller)
            .or_default()
            .record_failure(now, &limits);
        if blocked {
            self.counts.blocks += 1;
        }
        blocked
    }

    /// Records one wrong PIN from `net` at `now`.
    pub fn record_failed_pin(&mut self, now: SystemTime, net: &SourceNet) {
        let window = self.limits.rate_window;
        self.counts.failed_pins += 1;
        self.global.add(now, window);
        if !self.networks.contains_key(net) && self.networks.len() >= MAX_KEYS {
            self.networks.retain(|_, r| !r.is_idle(now, window));
            if self.networks.len() >= MAX_KEYS {
                let any = self.networks.keys().next().copied();
                if let Some(k) = any {
                    self.networks.remove(&k);
                }
            }
        }
        self.networks.entry(*net).or_default().add(now, window);
    }

    /// How long to wait before answering a PIN from `net` at `now`; a delay is counted.
    pub fn answer_delay(&mut self, now: SystemTime, net: &SourceNet) -> Duration {
        let l = self.limits;
        let excess = |rate: f64, limit: u32| {
            if limit == 0 {
                0.0
            } else {
                rate - limit as f64
            }
        };
        let net_rate = self
            .networks
            .get_mut(net)
            .map_or(0.0, |r| r.estimate(now, l.rate_window));
        let global_rate = self.global.estimate(now, l.rate_window);
        let over = excess(net_rate, l.failed_pins_per_network)
            .max(excess(global_rate, l.failed_pins_global));
        if over <= 0.0 {
            return Duration::ZERO;
        }
        self.counts.delayed_answers += 1;
        let doublings = (over.ceil() as u32).saturating_sub(1).min(20);
        l.slow_answer
            .saturating_mul(1 << doublings)
            .min(l.slow_answer_max)
    }

    /// The counters so far.
    pub fn counts(&self) -> GuardCounts {
        self.counts
    }

    /// How many callers and networks are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        (self.callers.len(), self.networks.len())
    }
}

/// Time from `earlier` to `later`; zero if the clock went backwards.
fn elapsed(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
