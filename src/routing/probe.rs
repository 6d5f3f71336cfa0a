//! The OPTIONS prober of one BBB server, sans-IO: when to send the next probe and what a
//! series of results means. The tokio task (`serve::probes`) sends the OPTIONS and feeds the
//! results in; the verdicts go to the directory ([`super::shared_directory::SharedDirectory::handle_probe`]),
//! where a dead server gets no new calls.
//!
//! Like Kamailio's dispatcher: a probe every `interval`; `failures` probes in a row without a
//! final response (any status, even 404, 405 or 486, means the SIP stack runs) mark the server
//! down, `recoveries` answered probes in a row mark it up again. A server starts up: nothing
//! says otherwise until its probes fail.

use std::time::{Duration, Instant};

/// How a server is probed (`[probes]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Time between two probes (`probes.interval`).
    pub interval: Duration,
    /// How long a probe waits for a final response (`probes.timeout`, at most `interval`).
    pub timeout: Duration,
    /// Unanswered probes in a row that mark the server down (`probes.failures`).
    pub failures: u32,
    /// Answered probes in a row that mark a down server up again (`probes.recoveries`).
    pub recoveries: u32,
}

impl ProbeSettings {
    /// The defaults for `interval`: wait at most `interval` (and 1 s) for an answer, 2 failures
    /// mark down (one lost datagram does not), 1 answer marks up.
    pub fn with_interval(interval: Duration) -> ProbeSettings {
        ProbeSettings {
            interval,
            timeout: interval.min(Duration::from_secs(1)),
            failures: 2,
            recoveries: 1,
        }
    }
}

/// One server's probe schedule and verdict; see the module doc.
#[derive(Clone, Debug)]
pub struct Prober {
    /// The settings.
    settings: ProbeSettings,
    /// When the next probe is due.
    next: Instant,
    /// The current verdict: false once `failures` probes in a row went unanswered.
    alive: bool,
    /// Unanswered probes in a row.
    failed: u32,
    /// Answered probes in a row.
    answered: u32,
}

impl Prober {
    /// A prober whose first probe is due at `now`; the server counts as alive until its probes
    /// fail.
    pub fn new(now: Instant, settings: ProbeSettings) -> Prober {
        Prober {
            settings,
            next: now,
            alive: true,
            failed: 0,
            answered: 0,
        }
    }

    /// When the next probe is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Whether a probe should be sent at `now`; if so, the one after it is scheduled
    /// `interval` later.
    #[must_use]
    pub fn poll_send(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.settings.interval;
        true
    }

    /// A probe's result: `answered` is whether any final response came within the timeout.
    /// Returns the new verdict when it changed (true: alive again; false: dead).
    pub fn handle_result(&mut self, answered: bool) -> Option<bool> {
        if answered {
            self.failed = 0;
            self.answered = self.answered.saturating_add(1);
            if !self.alive && self.answered >= self.settings.recoveries {
                self.alive = true;
                return Some(true);
            }
        } else {
            self.answered = 0;
            self.failed = self.failed.saturating_add(1);
            if self.alive && self.failed >= self.settings.failures {
                self.alive = false;
                return Some(false);
            }
        }
        None
    }

    /// The current verdict.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Unanswered probes in a row (for metrics).
    pub fn failed_in_a_row(&self) -> u32 {
        self.failed
    }

    /// How long a probe may wait for its answer.
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn schedule_every_interval() {
        let t0 = Instant::now();
        let mut p = Prober::new(t0, ProbeSettings::with_interval(Duration::from_secs(1)));
        assert_eq!(p.poll_timeout(), t0);
        assert!(p.poll_send(t0));
        assert!(!p.poll_send(s(t0, 999)));
        assert_eq!(p.poll_timeout(), s(t0, 1000));
        assert!(p.poll_send(s(t0, 1200)));
        assert_eq!(p.poll_timeout(), s(t0, 2200));
        assert_eq!(p.timeout(), Duration::from_secs(1));
        let short = ProbeSettings::with_interval(Duration::from_millis(300));
        assert_eq!(short.timeout, Duration::from_millis(300));
    }

    /// Probe results in order: (answered?, expected verdict change).
    type Steps = &'static [(bool, Option<bool>)];

    /// For failures = 2, recoveries = 1 and for failures = 1, recoveries = 3.
    #[test]
    fn thresholds_decide_the_verdict() {
        let t0 = Instant::now();
        let table: [(u32, u32, Steps); 2] = [
            (
                2,
                1,
                &[
                    (true, None),
                    (false, None), // one lost probe is not a dead server
                    (true, None),
                    (false, None),
                    (false, Some(false)),
                    (false, None),
                    (true, Some(true)),
                    (true, None),
                ],
            ),
            (
                1,
                3,
                &[
                    (false, Some(false)),
                    (true, None),
                    (true, None),
                    (false, None),
                    (true, None),
                    (true, None),
                    (true, Some(true)),
                ],
            ),
        ];
        for (failures, recoveries, steps) in table {
            let settings = ProbeSettings {
                failures,
                recoveries,
                ..ProbeSettings::with_interval(Duration::from_secs(1))
            };
            let mut p = Prober::new(t0, settings);
            assert!(p.alive());
            for (i, (answered, change)) in steps.iter().enumerate() {
                assert_eq!(
                    p.handle_result(*answered),
                    *change,
                    "step {i} ({failures}/{recoveries})"
                );
            }
        }
    }

    /// Issue 22's timing with `interval = 1s`: a server killed just after an answered probe is
    /// down at most interval + 2 × timeout later (about 3 s), one killed just before a probe
    /// about 2 s later.
    #[test]
    fn a_killed_server_is_down_within_three_intervals() {
        let t0 = Instant::now();
        let settings = ProbeSettings::with_interval(Duration::from_secs(1));
        let mut p = Prober::new(t0, settings);
        let mut now = t0;
        let killed = s(t0, 1);
        let mut down_at = None;
        for _ in 0..10 {
            now = now.max(p.poll_timeout());
            assert!(p.poll_send(now));
            let answered = now < killed;
            let done = if answered { now } else { now + p.timeout() };
            if p.handle_result(answered) == Some(false) {
                down_at = Some(done);
                break;
            }
            now = done;
        }
        let down_at = down_at.expect("down");
        assert!(
            down_at - killed <= Duration::from_millis(3000),
            "{:?}",
            down_at - killed
        );
    }
}
