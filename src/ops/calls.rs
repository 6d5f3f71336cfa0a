//! The calls in progress, for `GET /api/v1/calls` and the per-state gauges.
//!
//! Each call's driver holds a [`TrackedCall`] and tells it the flow state when it changes (a few
//! times per call, never per packet). The list holds only the call's running number (the same
//! `call=N` the log uses), the caller's log pseudonym (the same `caller=`), its state and its
//! start: no number, PIN, conference or address.

use crate::ops::metrics::StateGauge;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One call as the admin API shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CallSummary {
    /// The call's running number since start-up (`call=N` in the log).
    pub call: u64,
    /// The caller's log pseudonym (`caller=` in the log: a keyed hash, or `withheld`), once
    /// known; never the number.
    pub caller: Option<String>,
    /// Its flow state (a metrics `state` label, such as `bridged`).
    pub state: &'static str,
    /// Seconds since the INVITE arrived.
    pub age_secs: u64,
}

/// What the registry keeps per call.
#[derive(Clone, Debug)]
struct Entry {
    /// The caller's log pseudonym, once known.
    caller: Option<String>,
    /// The flow state label.
    state: &'static str,
    /// When the call started.
    since: Instant,
}

/// The calls in progress; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct CallRegistry {
    /// By call number; as many entries as active calls, each removed when its call ends.
    calls: Arc<Mutex<BTreeMap<u64, Entry>>>,
}

impl CallRegistry {
    /// Adds call `call`, started at `now`, as answering; it leaves the list when the returned
    /// handle drops.
    pub fn track(&self, call: u64, now: Instant) -> TrackedCall {
        self.lock().insert(
            call,
            Entry {
                caller: None,
                state: "answering",
                since: now,
            },
        );
        TrackedCall {
            call,
            state: "answering",
            registry: self.clone(),
            gauge: StateGauge::new(),
        }
    }

    /// The calls in progress at `now`, oldest first.
    pub fn list(&self, now: Instant) -> Vec<CallSummary> {
        self.lock()
            .iter()
            .map(|(call, e)| CallSummary {
                call: *call,
                caller: e.caller.clone(),
                state: e.state,
                age_secs: now.saturating_duration_since(e.since).as_secs(),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry>> {
        // A panic while holding this lock leaves a consistent map (single inserts/removes).
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's entry in the registry and the state gauges; removed from both on drop.
#[derive(Debug)]
pub struct TrackedCall {
    /// The call number.
    call: u64,
    /// The state last set, so an unchanged state costs one comparison (no lock): the driver
    /// calls [`TrackedCall::set_state`] after every input, RTP packets included.
    state: &'static str,
    /// Where the entry lives.
    registry: CallRegistry,
    /// The call's place in the `dialin_calls_active{state}` gauges.
    gauge: StateGauge,
}

impl TrackedCall {
    /// The caller's log pseudonym is known (shown by `GET /api/v1/calls`).
    pub fn set_caller(&self, pseudonym: String) {
        if let Some(e) = self.registry.lock().get_mut(&self.call) {
            e.caller = Some(pseudonym);
        }
    }

    /// The call is in `state` now (a metrics state label); no lock when unchanged.
    #[inline]
    pub fn set_state(&mut self, state: &'static str) {
        if state == self.state {
            return;
        }
        self.state = state;
        if let Some(e) = self.registry.lock().get_mut(&self.call) {
            e.state = state;
        }
        self.gauge.set(state);
    }
}

impl Drop for TrackedCall {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn calls_come_and_go() {
        let r = CallRegistry::default();
        let t0 = Instant::now();
        let mut a = r.track(1, t0);
        a.set_caller("0123456789ab".into());
        let b = r.track(2, t0 + Duration::from_secs(5));
        a.set_state("bridged");
        let at = t0 + Duration::from_secs(10);
        assert_eq!(
            r.list(at),
            vec![
                CallSummary {
                    call: 1,
                    caller: Some("0123456789ab".into()),
                    state: "bridged",
                    age_secs: 10
                },
                CallSummary {
                    call: 2,
                    caller: None,
                    state: "answering",
                    age_secs: 5
                },
            ]
        );
        drop(a);
        drop(b);
        assert!(r.list(at).is_empty());
    }
}
