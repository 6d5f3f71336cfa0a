//! When a trunk's next REGISTER goes out and whether it counts as registered, on simulated
//! time (sans-IO): refresh at three quarters of the granted lifetime, retry with doubling
//! back-off after a failure, up to [`MAX_BACKOFF`]. `register` sends the REGISTERs.

use std::time::{Duration, Instant};

/// The longest wait between failed attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// A trunk's registration state, as shown in status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RegState {
    /// No answer yet.
    Registering = 0,
    /// The registrar accepted the binding and it has not expired.
    Registered = 1,
    /// The last attempt failed and no binding is valid: retrying with back-off.
    Failed = 2,
}

impl RegState {
    pub(super) fn from_u8(v: u8) -> RegState {
        match v {
            1 => RegState::Registered,
            2 => RegState::Failed,
            _ => RegState::Registering,
        }
    }

    /// A short name for the status line.
    pub fn as_str(self) -> &'static str {
        match self {
            RegState::Registering => "registering",
            RegState::Registered => "registered",
            RegState::Failed => "failed",
        }
    }
}

/// How one REGISTER attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx, with the lifetime the registrar granted.
    Registered {
        /// The granted lifetime.
        granted: Duration,
    },
    /// A final non-2xx (wrong password, forbidden, busy registrar).
    Refused,
    /// No answer (unreachable registrar, transport error, timeout).
    Unreachable,
}

/// When to register next and whether the trunk is registered; sans-IO.
#[derive(Clone, Debug)]
pub struct RegisterSchedule {
    /// When the next REGISTER is due.
    next: Instant,
    /// Until when the last accepted binding is valid.
    valid_until: Option<Instant>,
    /// Failed attempts in a row.
    failures: u32,
    /// Whether any attempt has ended yet.
    answered: bool,
}

impl RegisterSchedule {
    /// A schedule whose first REGISTER is due at `now`.
    pub fn new(now: Instant) -> RegisterSchedule {
        RegisterSchedule {
            next: now,
            valid_until: None,
            failures: 0,
            answered: false,
        }
    }

    /// When the next REGISTER is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Records how the attempt that ended at `now` went and schedules the next one.
    pub fn handle_attempt(&mut self, now: Instant, attempt: Attempt) {
        self.answered = true;
        match attempt {
            Attempt::Registered { granted } => {
                self.failures = 0;
                self.valid_until = Some(now + granted);
                self.next = now + (granted * 3 / 4).max(Duration::from_secs(1));
            }
            Attempt::Refused | Attempt::Unreachable => {
                let backoff = Duration::from_secs(1 << self.failures.min(7)).min(MAX_BACKOFF);
                self.failures += 1;
                self.next = now + backoff;
            }
        }
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> RegState {
        match self.valid_until {
            Some(until) if now < until => RegState::Registered,
            _ if !self.answered => RegState::Registering,
            _ => RegState::Failed,
        }
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_before_expiry_and_back_off_after_failures() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = RegisterSchedule::new(t0);
        assert_eq!(r.poll_timeout(), t0);
        assert_eq!(r.state(t0), RegState::Registering);
        // (time of the attempt's end, outcome) → (next attempt, state right after)
        let table = [
            (0, Attempt::Unreachable, 1, RegState::Failed),
            (1, Attempt::Refused, 1 + 2, RegState::Failed),
            (3, Attempt::Unreachable, 3 + 4, RegState::Failed),
            (
                7,
                Attempt::Registered { granted: s(600) },
                7 + 450,
                RegState::Registered,
            ),
            // A failed refresh keeps the valid binding and retries soon.
            (457, Attempt::Unreachable, 457 + 1, RegState::Registered),
            (
                458,
                Attempt::Registered { granted: s(4) },
                458 + 3,
                RegState::Registered,
            ),
        ];
        for (at, attempt, next, state) in table {
            r.handle_attempt(t0 + s(at), attempt);
            assert_eq!(r.poll_timeout(), t0 + s(next), "after {attempt:?} at {at}");
            assert_eq!(r.state(t0 + s(at)), state, "after {attempt:?} at {at}");
        }
        // The 4 s binding lapses without a refresh.
        assert_eq!(r.state(t0 + s(461)), RegState::Registered);
        assert_eq!(r.state(t0 + s(462)), RegState::Failed);
    }

    #[test]
    fn back_off_is_capped() {
        let t0 = Instant::now();
        let mut r = RegisterSchedule::new(t0);
        for _ in 0..20 {
            r.handle_attempt(t0, Attempt::Refused);
        }
        assert_eq!(r.poll_timeout(), t0 + MAX_BACKOFF);
    }
}
