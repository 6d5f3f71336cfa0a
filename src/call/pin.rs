//! The PIN collector: turns keypad digits and the passing of time into one typed PIN, or into
//! the reason why no PIN came.
//!
//! Sans-IO: the call flow feeds it digits and the current time, asks [`PinCollector::poll_timeout`]
//! when to come back, and calls [`PinCollector::handle_timeout`] then. It never reads a clock.
//!
//! Rules: numeric keys accumulate; `#` ends the entry; reaching `max_digits` ends it by itself;
//! `*` throws away what was typed and restarts the first-digit timer; A–D are ignored. The
//! first-digit timer runs from [`PinCollector::arm`] (the prompt has finished) and every numeric
//! key restarts the inter-digit timer. Digits typed before `arm` (barge-in) count normally.
//! After it reports a [`PinEvent`] the collector is empty and unarmed, ready for the next try.

use std::fmt;
use std::time::{Duration, Instant};

use crate::digit::Digit;
use crate::secret::Pin;

/// How long and how fast a caller may type; built from the config's `[pin]` section.
///
/// The config validates `1 <= min_digits <= max_digits`; the collector does not panic on other
/// values, it just never produces an empty [`Pin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinSettings {
    /// Fewer digits than this are reported as [`PinEvent::TooShort`].
    pub min_digits: usize,
    /// Entry ends by itself when this many digits are typed; also bounds the buffer.
    pub max_digits: usize,
    /// How long to wait for the first key after [`PinCollector::arm`] or `*`.
    pub first_digit_timeout: Duration,
    /// How long to wait for the next key after a numeric key.
    pub inter_digit_timeout: Duration,
}

/// What one try at typing a PIN came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinEvent {
    /// A PIN of `min_digits..=max_digits` digits, ended by `#`, by `max_digits` or by a pause.
    Entered(Pin),
    /// Entry ended (by `#` or a pause) with fewer than `min_digits` digits, including `#` alone.
    TooShort,
    /// The first-digit timer ran out with nothing typed.
    NoInput,
}

/// Collects one PIN at a time from DTMF digits; see the module doc for the rules.
///
/// `Debug` shows how many digits are held, never which.
pub struct PinCollector {
    /// Timeouts and length limits.
    settings: PinSettings,
    /// The numeric keys typed so far in this try (ASCII digits, at most `max_digits`).
    typed: String,
    /// When [`PinCollector::handle_timeout`] should be called; `None` while unarmed and idle.
    deadline: Option<Instant>,
}

impl PinCollector {
    /// A collector with nothing typed and no timer running.
    pub fn new(settings: PinSettings) -> PinCollector {
        PinCollector {
            settings,
            typed: String::with_capacity(settings.max_digits),
            deadline: None,
        }
    }

    /// Starts listening: the prompt asking for the PIN has finished (or was cut by barge-in).
    ///
    /// With nothing typed yet this starts the first-digit timer. If digits were already typed
    /// (barge-in), their inter-digit timer keeps running unchanged.
    pub fn arm(&mut self, now: Instant) {
        if self.typed.is_empty() {
            self.deadline = Some(now + self.settings.first_digit_timeout);
        } else if self.deadline.is_none() {
            // Digits held but the timer was stopped by `disarm`: give the caller a full pause.
            self.deadline = Some(now + self.settings.inter_digit_timeout);
        }
    }

    /// Stops the timer but keeps what was typed, e.g. while something else is going on.
    pub fn disarm(&mut self) {
        self.deadline = None;
    }

    /// Forgets what was typed and stops the timer.
    pub fn reset(&mut self) {
        self.typed.clear();
        self.deadline = None;
    }

    /// How many digits are held now; safe to log.
    pub fn typed_len(&self) -> usize {
        self.typed.len()
    }

    /// Takes one key. Returns the end of this try if the key ended it.
    pub fn handle_digit(&mut self, now: Instant, digit: Digit) -> Option<PinEvent> {
        match digit {
            Digit::Num(n) => {
                debug_assert!(n < 10, "Digit::Num holds 0-9 by construction");
                self.typed.push(char::from(b'0' + n.min(9)));
                if self.typed.len() >= self.settings.max_digits {
                    return Some(self.finish());
                }
                self.deadline = Some(now + self.settings.inter_digit_timeout);
                None
            }
            Digit::Hash => Some(self.finish()),
            Digit::Star => {
                self.typed.clear();
                self.deadline = Some(now + self.settings.first_digit_timeout);
                None
            }
            Digit::Letter(_) => None,
        }
    }

    /// Ends the try if its timer has run out by `now`; early calls return `None`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<PinEvent> {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                if self.typed.is_empty() {
                    self.reset();
                    Some(PinEvent::NoInput)
                } else {
                    Some(self.finish())
                }
            }
            _ => None,
        }
    }

    /// When [`PinCollector::handle_timeout`] wants to be called, if a timer is running.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Ends the try with what is typed now and empties the collector.
    fn finish(&mut self) -> PinEvent {
        let event = if self.typed.len() >= self.settings.min_digits {
            Pin::new(self.typed.as_str()).map_or(PinEvent::TooShort, PinEvent::Entered)
        } else {
            PinEvent::TooShort
        };
        self.reset();
        event
    }
}

impl fmt::Debug for PinCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinCollector")
            .field("settings", &self.settings)
            .field("typed_len", &self.typed.len())
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One thing happening to the collector in a test script.
    #[derive(Clone, Copy, Debug)]
    enum Step {
        Arm,
        Disarm,
        Reset,
        Key(char),
    }
    use Step::{Arm, Disarm, Key, Reset};

    /// A script: steps at ms offsets.
    type Steps = Vec<(u64, Step)>;
    /// Events with the ms offset at which they came.
    type Events = Vec<(u64, PinEvent)>;

    fn settings() -> PinSettings {
        PinSettings {
            min_digits: 4,
            max_digits: 6,
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
        }
    }

    fn entered(s: &str) -> PinEvent {
        PinEvent::Entered(Pin::new(s).unwrap())
    }

    /// Steps keys from `start` ms, 100 ms apart.
    fn keys(start: u64, s: &str) -> Steps {
        s.chars()
            .enumerate()
            .map(|(i, c)| (start + 100 * i as u64, Key(c)))
            .collect()
    }

    /// Runs a script on simulated time, firing due timeouts before each step and all remaining
    /// ones at the end. Returns each event with its ms offset.
    fn run(settings: PinSettings, script: &[(u64, Step)]) -> Events {
        let t0 = Instant::now();
        let ms = |t: Instant| (t - t0).as_millis() as u64;
        let mut c = PinCollector::new(settings);
        let mut out = Vec::new();
        let fire = |c: &mut PinCollector, out: &mut Vec<_>, until: Option<Instant>| {
            while let Some(d) = c.poll_timeout().filter(|d| until.is_none_or(|u| *d <= u)) {
                if let Some(e) = c.handle_timeout(d) {
                    out.push((ms(d), e));
                }
                assert!(
                    c.poll_timeout() != Some(d),
                    "a fired deadline must not stay"
                );
            }
        };
        for &(at, step) in script {
            let now = t0 + Duration::from_millis(at);
            fire(&mut c, &mut out, Some(now));
            match step {
                Arm => c.arm(now),
                Disarm => c.disarm(),
                Reset => c.reset(),
                Key(ch) => {
                    let d = Digit::from_char(ch).expect("test keys are keypad characters");
                    if let Some(e) = c.handle_digit(now, d) {
                        out.push((at, e));
                    }
                }
            }
        }
        fire(&mut c, &mut out, None);
        out
    }

    #[test]
    // Over 80 lines: a table of cases, one row each (table-driven test).
    fn table() {
        let cases: Vec<(&str, Steps, Events)> = vec![
            (
                "hash ends entry",
                [vec![(0, Arm)], keys(1000, "1234#")].concat(),
                vec![(1400, entered("1234"))],
            ),
            (
                "max digits end entry without hash",
                [vec![(0, Arm)], keys(1000, "123456")].concat(),
                vec![(1500, entered("123456"))],
            ),
            (
                "key after max starts a new try",
                [vec![(0, Arm)], keys(1000, "1234567#")].concat(),
                vec![(1500, entered("123456")), (1700, PinEvent::TooShort)],
            ),
            (
                "hash alone is too short",
                vec![(0, Arm), (1000, Key('#'))],
                vec![(1000, PinEvent::TooShort)],
            ),
            (
                "hash after too few digits",
                [vec![(0, Arm)], keys(1000, "123#")].concat(),
                vec![(1300, PinEvent::TooShort)],
            ),
            (
                "first-digit timeout with nothing typed",
                vec![(0, Arm)],
                vec![(5000, PinEvent::NoInput)],
            ),
            (
                "first-digit timer runs from arm",
                vec![(0, Arm), (4000, Arm)],
                vec![(9000, PinEvent::NoInput)],
            ),
            (
                "inter-digit timeout with enough digits",
                [vec![(0, Arm)], keys(1000, "12345")].concat(),
                vec![(4400, entered("12345"))],
            ),
            (
                "inter-digit timeout with too few digits",
                [vec![(0, Arm)], keys(1000, "12")].concat(),
                vec![(4100, PinEvent::TooShort)],
            ),
            (
                "inter-digit timer restarts on each digit",
                vec![
                    (0, Arm),
                    (1000, Key('1')),
                    (3900, Key('2')),
                    (6800, Key('3')),
                ],
                vec![(9800, PinEvent::TooShort)],
            ),
            (
                "star clears typed digits",
                [vec![(0, Arm)], keys(1000, "12*3456#")].concat(),
                vec![(1700, entered("3456"))],
            ),
            (
                "star restarts the first-digit timer",
                vec![(0, Arm), (1000, Key('1')), (2000, Key('*'))],
                vec![(7000, PinEvent::NoInput)],
            ),
            (
                "letters are ignored",
                [vec![(0, Arm)], keys(1000, "12A3D4#")].concat(),
                vec![(1600, entered("1234"))],
            ),
            (
                "letters do not restart the inter-digit timer",
                vec![(0, Arm), (1000, Key('1')), (3500, Key('B'))],
                vec![(4000, PinEvent::TooShort)],
            ),
            (
                "digits before arm are collected (barge-in)",
                keys(100, "1234#"),
                vec![(500, entered("1234"))],
            ),
            (
                "arm after barge-in keeps the inter-digit timer",
                [keys(100, "12"), vec![(1000, Arm)]].concat(),
                vec![(3200, PinEvent::TooShort)],
            ),
            ("unarmed and idle: no timer", vec![], vec![]),
            (
                "disarm stops the timer",
                vec![(0, Arm), (1000, Disarm)],
                vec![],
            ),
            (
                "disarm keeps digits, arm resumes with a fresh pause",
                [
                    vec![(0, Arm)],
                    keys(1000, "12"),
                    vec![(1500, Disarm), (20_000, Arm)],
                    keys(20_500, "34#"),
                ]
                .concat(),
                vec![(20_700, entered("1234"))],
            ),
            (
                "reset forgets digits",
                [
                    vec![(0, Arm)],
                    keys(1000, "12"),
                    vec![(1500, Reset)],
                    keys(2000, "3456#"),
                ]
                .concat(),
                vec![(2400, entered("3456"))],
            ),
            (
                "after an event the collector is unarmed",
                [vec![(0, Arm)], keys(1000, "#")].concat(),
                vec![(1000, PinEvent::TooShort)],
            ),
            (
                "re-armed for the next try",
                [vec![(0, Arm)], keys(1000, "#"), vec![(2000, Arm)]].concat(),
                vec![(1000, PinEvent::TooShort), (7000, PinEvent::NoInput)],
            ),
        ];
        for (name, script, want) in cases {
            assert_eq!(run(settings(), &script), want, "{name}");
        }
    }

    #[test]
    fn early_timeout_does_nothing() {
        let t0 = Instant::now();
        let mut c = PinCollector::new(settings());
        assert_eq!(c.handle_timeout(t0), None);
        c.arm(t0);
        assert_eq!(c.handle_timeout(t0 + Duration::from_millis(4999)), None);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            c.handle_timeout(t0 + Duration::from_secs(6)),
            Some(PinEvent::NoInput)
        );
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn odd_settings_never_make_an_empty_pin() {
        let s = PinSettings {
            min_digits: 0,
            max_digits: 0,
            ..settings()
        };
        let got = run(s, &[(0, Arm), (100, Key('#')), (200, Key('7'))]);
        assert_eq!(got, vec![(100, PinEvent::TooShort), (200, entered("7"))]);
    }

    #[test]
    fn debug_hides_digits() {
        let t0 = Instant::now();
        let mut c = PinCollector::new(settings());
        for n in [8, 6, 7, 5] {
            assert_eq!(c.handle_digit(t0, Digit::Num(n)), None);
        }
        assert_eq!(c.typed_len(), 4);
        let shown = format!("{c:?}");
        assert!(!shown.contains("8675"), "{shown}");
        let ev = c.handle_digit(t0, Digit::Hash).unwrap();
        assert!(!format!("{ev:?}").contains("8675"));
    }
}
