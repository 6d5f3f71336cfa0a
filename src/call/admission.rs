//! Admission of new calls: the global concurrent-call limit, the per-trunk limit and the limit
//! on calls still in the IVR (not yet bridged).
//!
//! Capacity (RTP ports, CPU, the BBB servers' patience) is finite, and PIN guessers would happily
//! hold every line in the voice menu. A call that finds a limit full is refused with `503` and
//! `Retry-After` before anything is allocated for it. Each slot is a guard: dropping it (on any
//! exit path of the call task) frees the slot, so a crashed or cancelled call never leaks one.
//! The counters are plain atomics read by [`Admission::counts`] for status and metrics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The configured limits; `None` for a trunk means no limit of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most calls at once (`limits.max_calls`).
    pub max_calls: usize,
    /// Most calls in the IVR at once (`limits.max_ivr_calls`).
    pub max_ivr: usize,
    /// Per trunk, in trunk order: most calls at once from that trunk.
    pub per_trunk: Vec<Option<usize>>,
}

/// Which limit refused a call (for the log line and the counters; no caller data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_calls` reached.
    Calls,
    /// `limits.max_ivr_calls` reached.
    Ivr,
    /// The trunk's `max_calls` reached.
    Trunk,
}

impl Refusal {
    /// A short name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Calls => "max_calls",
            Refusal::Ivr => "max_ivr_calls",
            Refusal::Trunk => "trunk_max_calls",
        }
    }
}

/// One counter with a ceiling.
#[derive(Debug)]
struct Gate {
    /// Slots in use.
    used: AtomicUsize,
    /// The ceiling.
    max: usize,
}

impl Gate {
    fn new(max: usize) -> Gate {
        Gate {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot if one is free (never goes above `max`, even with racing callers).
    fn try_take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The shared admission state of the whole bridge.
#[derive(Debug)]
pub struct Admission {
    /// All calls.
    calls: Gate,
    /// Calls not yet bridged.
    ivr: Gate,
    /// One gate per trunk with a limit.
    trunks: Vec<Option<Gate>>,
    /// Calls refused, per [`Refusal`] in declaration order.
    refused: [AtomicU64; 3],
}

/// Counts for status and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionCounts {
    /// Calls holding a slot.
    pub calls: usize,
    /// Calls holding an IVR slot.
    pub ivr: usize,
    /// Calls refused by `max_calls`, `max_ivr_calls` and a trunk's `max_calls`.
    pub refused: [u64; 3],
}

/// A call's slots; dropping it frees them. The IVR slot can be given up earlier, when the call
/// is bridged.
#[derive(Debug)]
pub struct CallSlot {
    /// The shared state the slots belong to.
    admission: Arc<Admission>,
    /// The trunk the call came from, if known.
    trunk: Option<usize>,
    /// Whether the call holds a slot of its trunk's gate.
    gated: bool,
    /// Whether the IVR slot is still held.
    in_ivr: bool,
}

impl Admission {
    /// Builds the gates for `limits`.
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            calls: Gate::new(limits.max_calls),
            ivr: Gate::new(limits.max_ivr),
            trunks: limits.per_trunk.iter().map(|m| m.map(Gate::new)).collect(),
            refused: Default::default(),
        })
    }

    /// Admits a call arriving over trunk `trunk` (an index into the trunk list, `None` when
    /// unknown), or says which limit is full. Slots taken before a full one are given back.
    pub fn admit(self: &Arc<Self>, trunk: Option<usize>) -> Result<CallSlot, Refusal> {
        let trunk_gate = trunk.and_then(|t| self.trunks.get(t)?.as_ref().map(|g| (t, g)));
        if !self.calls.try_take() {
            return Err(self.refuse(Refusal::Calls));
        }
        if let Some((_, g)) = trunk_gate {
            if !g.try_take() {
                self.calls.give_back();
                return Err(self.refuse(Refusal::Trunk));
            }
        }
        if !self.ivr.try_take() {
            self.calls.give_back();
            if let Some((_, g)) = trunk_gate {
                g.give_back();
            }
            return Err(self.refuse(Refusal::Ivr));
        }
        Ok(CallSlot {
            admission: self.clone(),
            trunk,
            gated: trunk_gate.is_some(),
            in_ivr: true,
        })
    }

    fn refuse(&self, r: Refusal) -> Refusal {
        self.refused[r as usize].fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The current counts.
    pub fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            calls: self.calls.used.load(Ordering::Relaxed),
            ivr: self.ivr.used.load(Ordering::Relaxed),
            refused: [0, 1, 2].map(|i| self.refused[i].load(Ordering::Relaxed)),
        }
    }
}

impl CallSlot {
    /// The trunk the call came from (an index into the trunk list), if known.
    pub fn trunk(&self) -> Option<usize> {
        self.trunk
    }

    /// The call left the IVR (bridged, or in the echo test): frees its IVR slot once.
    pub fn leave_ivr(&mut self) {
        if std::mem::take(&mut self.in_ivr) {
            self.admission.ivr.give_back();
        }
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.leave_ivr();
        self.admission.calls.give_back();
        let gate = self.trunk.filter(|_| self.gated);
        if let Some(g) = gate.and_then(|t| self.admission.trunks.get(t)?.as_ref()) {
            g.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_calls: usize, max_ivr: usize, per_trunk: Vec<Option<usize>>) -> Arc<Admission> {
        Admission::new(&Limits {
            max_calls,
            max_ivr,
            per_trunk,
        })
    }

    #[test]
    fn the_global_limit_refuses_and_frees() {
        let a = limits(2, 10, vec![]);
        let s1 = a.admit(None).unwrap();
        let _s2 = a.admit(None).unwrap();
        assert_eq!(a.admit(None).unwrap_err(), Refusal::Calls);
        drop(s1);
        assert!(a.admit(None).is_ok());
        assert_eq!(a.counts().refused, [1, 0, 0]);
    }

    #[test]
    fn the_ivr_limit_counts_only_calls_not_yet_bridged() {
        let a = limits(10, 2, vec![]);
        let mut s1 = a.admit(None).unwrap();
        let _s2 = a.admit(None).unwrap();
        assert_eq!(a.admit(None).unwrap_err(), Refusal::Ivr);
        s1.leave_ivr();
        s1.leave_ivr(); // twice frees once
        let _s3 = a.admit(None).unwrap();
        assert_eq!(a.admit(None).unwrap_err(), Refusal::Ivr);
        let c = a.counts();
        assert_eq!((c.calls, c.ivr), (3, 2));
        drop(s1);
        assert_eq!(a.counts().ivr, 2, "a bridged call ending frees no IVR slot");
        assert_eq!(a.counts().calls, 2);
    }

    #[test]
    fn a_trunk_limit_leaves_other_trunks_alone() {
        let a = limits(10, 10, vec![Some(1), None]);
        let _t0 = a.admit(Some(0)).unwrap();
        assert_eq!(a.admit(Some(0)).unwrap_err(), Refusal::Trunk);
        assert!(a.admit(Some(1)).is_ok());
        assert!(a.admit(None).is_ok());
        // The refused call gave back its global slot.
        assert_eq!(a.counts().calls, 1);
    }

    #[test]
    fn a_refusal_gives_back_every_slot_taken() {
        let a = limits(10, 1, vec![Some(5)]);
        let _s = a.admit(Some(0)).unwrap();
        assert_eq!(a.admit(Some(0)).unwrap_err(), Refusal::Ivr);
        let c = a.counts();
        assert_eq!((c.calls, c.ivr), (1, 1));
        // The trunk gate was given back too: four more calls fit once the first is bridged.
        drop(_s);
        for _ in 0..5 {
            let mut s = a.admit(Some(0)).unwrap();
            s.leave_ivr();
            std::mem::forget(s);
        }
        assert_eq!(a.admit(Some(0)).unwrap_err(), Refusal::Trunk);
    }
}
