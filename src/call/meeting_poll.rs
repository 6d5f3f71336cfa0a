//! When a waiting caller's meeting (a PIN store mapping to a BBB meeting ID) is asked about
//! again: the BBB API has no push, so the call driver polls it, and this pure schedule decides
//! when.
//!
//! Rules, all on the caller's own schedule (one [`MeetingPoll`] per call):
//! - at most one lookup in flight; the next starts only after its answer;
//! - after an answer, the next lookup is [`MeetingPoll::interval`] later (5 s by default);
//! - when the live directory reports a new conference (it may be this meeting's), the next
//!   lookup starts at once, but never sooner than [`MeetingPoll::min_gap`] after the previous
//!   one started; a report while a lookup is in flight asks again right after its answer (that
//!   answer may predate the conference). Bursts of reports coalesce into one lookup.
//!
//! Sans-IO: `now` is always an input; the driver starts a lookup when
//! [`MeetingPoll::poll_start`] says so, and wakes at [`MeetingPoll::poll_timeout`].

use std::time::{Duration, Instant};

/// The default time between two lookups of a waiting caller's meeting.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The default shortest time between the starts of two lookups, whatever the directory says.
pub const DEFAULT_MIN_GAP: Duration = Duration::from_millis(500);

/// One call's meeting-lookup schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeetingPoll {
    /// Time from an answer to the next lookup.
    pub interval: Duration,
    /// Shortest time between the starts of two lookups.
    pub min_gap: Duration,
    /// Whether a lookup is in flight.
    in_flight: bool,
    /// A directory report came while a lookup was in flight: ask again after its answer.
    again: bool,
    /// When the last lookup started.
    last_start: Option<Instant>,
    /// When the next lookup is due (`None` while one is in flight).
    next_at: Option<Instant>,
    /// Failed lookups in a row (for logging the first failure only).
    failures: u32,
}

impl MeetingPoll {
    /// A schedule whose first lookup is due at `now`.
    pub fn new(now: Instant) -> MeetingPoll {
        MeetingPoll::with(now, DEFAULT_INTERVAL, DEFAULT_MIN_GAP)
    }

    /// A schedule with other timings (tests).
    pub fn with(now: Instant, interval: Duration, min_gap: Duration) -> MeetingPoll {
        MeetingPoll {
            interval,
            min_gap,
            in_flight: false,
            again: false,
            last_start: None,
            next_at: Some(now),
            failures: 0,
        }
    }

    /// Whether a lookup must start now; if so it counts as in flight from `now`.
    pub fn poll_start(&mut self, now: Instant) -> bool {
        if self.in_flight || self.next_at.is_none_or(|t| t > now) {
            return false;
        }
        self.in_flight = true;
        self.again = false;
        self.last_start = Some(now);
        self.next_at = None;
        true
    }

    /// When [`MeetingPoll::poll_start`] will next say yes (`None` while a lookup is in flight).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight {
            None
        } else {
            self.next_at
        }
    }

    /// Whether a lookup is in flight.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// The lookup in flight answered at `now` (`ok`: the API answered, running or not).
    /// Returns true for the first failure after a success (the one worth a warning).
    pub fn answered(&mut self, now: Instant, ok: bool) -> bool {
        self.in_flight = false;
        self.next_at = Some(if self.again {
            self.soonest(now)
        } else {
            now + self.interval
        });
        self.again = false;
        if ok {
            self.failures = 0;
            false
        } else {
            self.failures = self.failures.saturating_add(1);
            self.failures == 1
        }
    }

    /// The live directory reports a new conference at `now`: ask soon.
    pub fn directory_changed(&mut self, now: Instant) {
        if self.in_flight {
            self.again = true;
            return;
        }
        let soonest = self.soonest(now);
        self.next_at = Some(self.next_at.map_or(soonest, |t| t.min(soonest)));
    }

    /// `now`, or later if the last lookup started less than `min_gap` ago.
    fn soonest(&self, now: Instant) -> Instant {
        self.last_start.map_or(now, |s| (s + self.min_gap).max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps of a table-driven run, at milliseconds after t0.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        /// `poll_start` at this time must say this.
        Start(u64, bool),
        /// The lookup answers (ok or failed); the returned "warn" must be this.
        Answer(u64, bool, bool),
        /// A directory report.
        Dir(u64),
        /// `poll_timeout` must be this (ms after t0), `None`: nothing due.
        Due(Option<u64>),
    }

    #[test]
    fn schedules() {
        use Step::*;
        let cases: Vec<(&str, Vec<Step>)> = vec![
            (
                "first lookup at once, then every interval after the answer",
                vec![
                    Due(Some(0)),
                    Start(0, true),
                    Due(None),
                    Start(10, false),
                    Answer(300, true, false),
                    Due(Some(5_300)),
                    Start(5_299, false),
                    Start(5_300, true),
                    Answer(5_400, true, false),
                    Due(Some(10_400)),
                ],
            ),
            (
                "a directory report while idle asks at once (after the min gap)",
                vec![
                    Start(0, true),
                    Answer(100, true, false),
                    Dir(200),
                    Due(Some(500)),
                    Start(500, true),
                    Answer(600, true, false),
                    Dir(3_000),
                    Due(Some(3_000)),
                    Start(3_000, true),
                ],
            ),
            (
                "a report during a lookup asks again right after its answer",
                vec![
                    Start(0, true),
                    Dir(700),
                    Dir(800),
                    Due(None),
                    Answer(900, true, false),
                    Due(Some(900)),
                    Start(900, true),
                    Answer(950, true, false),
                    // The burst coalesced: back to the interval.
                    Due(Some(5_950)),
                ],
            ),
            (
                "only the first failure in a row warns",
                vec![
                    Start(0, true),
                    Answer(100, false, true),
                    Start(5_100, true),
                    Answer(5_200, false, false),
                    Start(10_200, true),
                    Answer(10_300, true, false),
                    Start(15_300, true),
                    Answer(15_400, false, true),
                ],
            ),
        ];
        for (name, steps) in cases {
            let t0 = Instant::now();
            let at = |ms: u64| t0 + Duration::from_millis(ms);
            let mut p = MeetingPoll::new(t0);
            for step in steps {
                match step {
                    Start(ms, want) => assert_eq!(p.poll_start(at(ms)), want, "{name}: {step:?}"),
                    Answer(ms, ok, warn) => {
                        assert!(p.in_flight(), "{name}: {step:?}");
                        assert_eq!(p.answered(at(ms), ok), warn, "{name}: {step:?}")
                    }
                    Dir(ms) => p.directory_changed(at(ms)),
                    Due(want) => assert_eq!(p.poll_timeout(), want.map(at), "{name}: {step:?}"),
                }
            }
        }
    }
}
