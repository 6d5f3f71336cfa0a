//! Where guessing-protection state lives: the [`AttemptLedger`] seam and its in-memory
//! implementation for a single instance.
//!
//! The call layer asks the ledger three things: may this caller call ([`AttemptLedger::check_caller`]
//! at answer time), how long to hold a PIN answer ([`AttemptLedger::answer_delay`]), and it
//! reports wrong PINs and the end of each call. The methods are synchronous and cheap (a short
//! lock, no I/O) because they run inside a call's driver. A cluster-wide implementation backed by
//! the store (PostgreSQL) keeps the same local [`Guard`] as a cache, writes its records through to
//! the database from a background task and merges other instances' blocks and failure counts
//! into the cache every few seconds; the guard's decisions stay the pure functions of
//! [`super::guard`].

use super::guard::{Guard, GuardCounts, GuardLimits, SourceNet, Standing};
use super::pseudonym::CallerKey;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The guessing-protection state a call consults and feeds. Implementations must be cheap and
/// must not block on I/O: they are called from call drivers.
pub trait AttemptLedger: Send + Sync + 'static {
    /// Whether `caller` may call at `now`; counts a blocked call.
    fn check_caller(&self, now: SystemTime, caller: &CallerKey) -> Standing;
    /// A call by `caller` ended; `failed` when it typed a wrong PIN and reached no meeting.
    /// Returns true if this blocked the caller.
    fn record_call(&self, now: SystemTime, caller: &CallerKey, failed: bool) -> bool;
    /// A wrong PIN was typed from `net`.
    fn record_failed_pin(&self, now: SystemTime, net: &SourceNet);
    /// How long to hold the answer to a PIN typed from `net` (zero when rates are normal).
    fn answer_delay(&self, now: SystemTime, net: &SourceNet) -> Duration;
    /// Counters for metrics (counts only).
    fn counts(&self) -> GuardCounts;
    /// The limits in force (the call layer needs the network prefix lengths).
    fn limits(&self) -> GuardLimits;
}

/// The ledger of a single instance: a [`Guard`] behind a mutex, gone at restart.
#[derive(Debug)]
pub struct MemoryLedger {
    /// The state; locked for microseconds per call event.
    guard: Mutex<Guard>,
}

impl MemoryLedger {
    /// An empty ledger with these limits.
    pub fn new(limits: GuardLimits) -> MemoryLedger {
        MemoryLedger {
            guard: Mutex::new(Guard::new(limits)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Guard) -> T) -> T {
        // A panic while holding the lock cannot leave the guard half-updated in a way that
        // matters (worst case a count is off), so a poisoned lock is used as is.
        let mut g = self.guard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

impl AttemptLedger for MemoryLedger {
    fn check_caller(&self, now: SystemTime, caller: &CallerKey) -> Standing {
        self.with(|g| g.check_caller(now, caller))
    }

    fn record_call(&self, now: SystemTime, caller: &CallerKey, failed: bool) -> bool {
        self.with(|g| g.record_call(now, caller, failed))
    }

    fn record_failed_pin(&self, now: SystemTime, net: &SourceNet) {
        self.with(|g| g.record_failed_pin(now, net))
    }

    fn answer_delay(&self, now: SystemTime, net: &SourceNet) -> Duration {
        self.with(|g| g.answer_delay(now, net))
    }

    fn counts(&self) -> GuardCounts {
        self.with(|g| g.counts())
    }

    fn limits(&self) -> GuardLimits {
        self.with(|g| g.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_memory_ledger_is_a_shared_guard() {
        let limits = GuardLimits {
            failed_calls: 2,
            ..GuardLimits::default()
        };
        let ledger: Arc<dyn AttemptLedger> = Arc::new(MemoryLedger::new(limits));
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let c = CallerKey::Withheld;
        assert!(!ledger.record_call(t, &c, true));
        let other = ledger.clone();
        assert!(other.record_call(t, &c, true));
        assert!(matches!(
            ledger.check_caller(t, &c),
            Standing::Blocked { .. }
        ));
        assert_eq!(ledger.counts().blocked_calls, 1);
        assert_eq!(ledger.limits(), limits);
    }
}
