//! Graceful drain: stop taking calls, let the calls in progress end, then exit.
//!
//! A drain starts on SIGTERM, SIGINT or `dialin drain` (`POST /api/v1/drain`). From then on new
//! INVITEs get `503` with `Retry-After` and OPTIONS get `503`, so a load balancer (Kamailio's
//! dispatcher) routes new calls to other instances; `/readyz` turns 503 as well. Calls already
//! in progress go on. At `lifecycle.drain_max` the calls still running are ended (a short
//! goodbye in the voice menu, BYE on bridged calls); dialin exits 0 once the last call is gone,
//! or [`END_GRACE`] after the deadline at the latest.
//!
//! [`DrainPlan`] is the pure decision (time and the number of active calls in, a step out);
//! [`Lifecycle`] is the shared flag the SIP edge, the calls and the admin API look at.

use super::end_signal::{CallsEnding, EndSignal};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How long calls get to say goodbye and hang up after the drain deadline before dialin exits
/// anyway (the "unavailable" prompt is a few seconds; BYE transactions take up to 32 s on a
/// lossy trunk, but a stuck peer must not hold up a restart forever).
pub const END_GRACE: Duration = Duration::from_secs(15);

/// The drain state shared by the SIP edge, every call and the admin API.
#[derive(Debug)]
pub struct Lifecycle {
    /// Set once a drain has started; never cleared (a drained process exits).
    draining: AtomicBool,
    /// Wakes the serve loop when a drain is asked for over HTTP.
    requested: Notify,
    /// Cancelled at the drain deadline: every call ends now.
    end_calls: Arc<EndSignal>,
    /// The `Retry-After` of the 503 answers while draining, in seconds.
    retry_after_secs: u32,
    /// New calls refused because of the drain, for status and metrics.
    refused: AtomicU64,
}

impl Lifecycle {
    /// A running (not draining) instance whose 503s ask for `retry_after`.
    pub fn new(retry_after: Duration) -> Lifecycle {
        Lifecycle {
            draining: AtomicBool::new(false),
            requested: Notify::new(),
            end_calls: Arc::default(),
            retry_after_secs: retry_after.as_secs().clamp(1, u32::MAX as u64) as u32,
            refused: AtomicU64::new(0),
        }
    }

    /// Starts a drain; returns false if one was already running.
    pub fn start_drain(&self) -> bool {
        let first = !self.draining.swap(true, Ordering::SeqCst);
        if first {
            self.requested.notify_one();
        }
        first
    }

    /// Whether new calls are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves when a drain is asked for (also if it was asked before this call).
    pub async fn drain_requested(&self) {
        if self.is_draining() {
            return;
        }
        self.requested.notified().await;
    }

    /// Tells every call to end now.
    pub fn end_calls(&self) {
        self.end_calls.end();
    }

    /// Resolves once [`Lifecycle::end_calls`] was called; each call's driver waits on it.
    /// Cheap to poll (no lock), as drivers poll it on every wake-up.
    pub fn calls_ending(&self) -> CallsEnding {
        self.end_calls.watch()
    }

    /// The `Retry-After` value, in seconds.
    pub fn retry_after_secs(&self) -> u32 {
        self.retry_after_secs
    }

    /// Counts one new call refused because of the drain and returns the `Retry-After` value
    /// (seconds) for its 503: one call, so the count and the answer cannot drift apart.
    pub fn refuse_call(&self) -> u32 {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.retry_after_secs
    }

    /// New calls refused because of the drain since start-up.
    pub fn calls_refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// What the serve loop does next during a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainStep {
    /// Keep waiting; look again at this time or when a call ends, whichever is first.
    Wait(Instant),
    /// The deadline has come: tell the calls to end ([`Lifecycle::end_calls`]).
    EndCalls,
    /// Stop the process; `left` calls were still active (0 in a clean drain).
    Exit {
        /// Calls still active at exit (non-zero only after [`END_GRACE`]).
        left: usize,
    },
}

/// The drain's timeline, pure: `now` and the active call count in, the next step out.
#[derive(Clone, Debug)]
pub struct DrainPlan {
    /// When calls still running are ended.
    deadline: Instant,
    /// Whether [`DrainStep::EndCalls`] was given already.
    ended: bool,
}

impl DrainPlan {
    /// A drain started at `now` with `max` for the calls in progress.
    pub fn new(now: Instant, max: Duration) -> DrainPlan {
        DrainPlan {
            deadline: now + max,
            ended: false,
        }
    }

    /// The step at `now` with `active` calls.
    pub fn step(&mut self, now: Instant, active: usize) -> DrainStep {
        if active == 0 {
            return DrainStep::Exit { left: 0 };
        }
        if now < self.deadline {
            return DrainStep::Wait(self.deadline);
        }
        if !self.ended {
            self.ended = true;
            return DrainStep::EndCalls;
        }
        let hard = self.deadline + END_GRACE;
        if now < hard {
            DrainStep::Wait(hard)
        } else {
            DrainStep::Exit { left: active }
        }
    }

    /// A second SIGTERM/SIGINT: the deadline is now.
    pub fn hurry(&mut self, now: Instant) {
        self.deadline = self.deadline.min(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_timeline() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let max = Duration::from_secs(60);
        let mut plan = DrainPlan::new(t0, max);
        // (seconds after the start, active calls) → step
        let cases = [
            (0, 3, DrainStep::Wait(s(60))),
            (30, 1, DrainStep::Wait(s(60))),
            (60, 1, DrainStep::EndCalls),
            (61, 1, DrainStep::Wait(s(60) + END_GRACE)),
            (75, 1, DrainStep::Exit { left: 1 }),
        ];
        for (at, active, want) in cases {
            assert_eq!(plan.step(s(at), active), want, "at {at}s");
        }
        // The last call ending exits at once, before or after the deadline.
        assert_eq!(
            DrainPlan::new(t0, max).step(s(10), 0),
            DrainStep::Exit { left: 0 }
        );
        assert_eq!(plan.step(s(62), 0), DrainStep::Exit { left: 0 });
    }

    #[test]
    fn a_second_signal_ends_calls_now() {
        let t0 = Instant::now();
        let mut plan = DrainPlan::new(t0, Duration::from_secs(3600));
        let now = t0 + Duration::from_secs(5);
        plan.hurry(now);
        assert_eq!(plan.step(now, 2), DrainStep::EndCalls);
    }

    #[tokio::test]
    async fn lifecycle_flags() {
        let l = Lifecycle::new(Duration::from_secs(30));
        assert!(!l.is_draining());
        assert!(l.start_drain());
        assert!(!l.start_drain(), "a second drain is not a new one");
        assert!(l.is_draining());
        l.drain_requested().await; // resolves at once: already draining
        l.end_calls();
        l.calls_ending().await;
        assert_eq!(l.retry_after_secs(), 30);
    }
}
