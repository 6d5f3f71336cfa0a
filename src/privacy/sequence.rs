//! Numbering phone callers per conference (`Phone 1`, `Phone 2`, … and the `phone-N` user
//! part), so callers in one meeting tell each other apart without any number shown.
//!
//! In memory only, bounded: a conference nobody dialled for [`IDLE_FORGET`] starts again at 1,
//! and at most [`MAX_CONFERENCES`] conferences are remembered (the least recently used is
//! forgotten first). Keys are conference pseudonyms, not numbers. Pure: `now` is an input.

use super::pseudonym::Pseudonym;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A conference idle this long restarts its numbering.
pub const IDLE_FORGET: Duration = Duration::from_secs(12 * 60 * 60);

/// The most conferences whose numbering is remembered at once.
pub const MAX_CONFERENCES: usize = 10_000;

/// One conference's counter.
#[derive(Clone, Copy, Debug)]
struct Counter {
    /// The number the last caller got.
    last: u64,
    /// When the last caller got it.
    used: Instant,
}

/// Per-conference caller numbers.
#[derive(Debug, Default)]
pub struct ConferenceSequences {
    /// Counters by conference pseudonym.
    counters: HashMap<Pseudonym, Counter>,
}

impl ConferenceSequences {
    /// The next caller number (1, 2, …) for `conference` at `now`.
    pub fn next(&mut self, now: Instant, conference: Pseudonym) -> u64 {
        if !self.counters.contains_key(&conference) && self.counters.len() >= MAX_CONFERENCES {
            self.forget_idle(now);
            if self.counters.len() >= MAX_CONFERENCES {
                let oldest = self
                    .counters
                    .iter()
                    .min_by_key(|(_, c)| c.used)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.counters.remove(&k);
                }
            }
        }
        let counter = self
            .counters
            .entry(conference)
            .or_insert(Counter { last: 0, used: now });
        if now.saturating_duration_since(counter.used) >= IDLE_FORGET {
            counter.last = 0;
        }
        counter.last += 1;
        counter.used = now;
        counter.last
    }

    /// How many conferences are remembered.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    fn forget_idle(&mut self, now: Instant) {
        self.counters
            .retain(|_, c| now.saturating_duration_since(c.used) < IDLE_FORGET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ConferenceId;
    use crate::privacy::pseudonym::Pseudonymizer;

    fn conf(p: &Pseudonymizer, n: u32) -> Pseudonym {
        p.conference(&ConferenceId(format!("{}", 70000 + n)))
    }

    #[test]
    fn numbers_per_conference_and_restarts_when_idle() {
        let t0 = Instant::now();
        let p = Pseudonymizer::new(t0, Duration::from_secs(86_400), [5; 32]);
        let mut s = ConferenceSequences::default();
        assert_eq!(s.next(t0, conf(&p, 1)), 1);
        assert_eq!(s.next(t0, conf(&p, 1)), 2);
        assert_eq!(s.next(t0, conf(&p, 2)), 1);
        let later = t0 + IDLE_FORGET - Duration::from_secs(1);
        assert_eq!(s.next(later, conf(&p, 1)), 3);
        assert_eq!(s.next(later + IDLE_FORGET, conf(&p, 1)), 1);
    }

    #[test]
    fn stays_bounded() {
        let t0 = Instant::now();
        let p = Pseudonymizer::new(t0, Duration::from_secs(86_400), [6; 32]);
        let mut s = ConferenceSequences::default();
        for n in 0..(MAX_CONFERENCES as u32 + 50) {
            s.next(t0 + Duration::from_millis(n as u64), conf(&p, n));
        }
        assert_eq!(s.len(), MAX_CONFERENCES);
        // The most recent conference is still counting.
        let last = conf(&p, MAX_CONFERENCES as u32 + 49);
        assert_eq!(s.next(t0 + Duration::from_secs(60), last), 2);
    }
}
