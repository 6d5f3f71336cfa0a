//! Tells a call's driver whether one of its rare wake-up sources fired (SIP events, its timer,
//! the drain signal), so a wake-up by an RTP packet polls the two sockets and nothing else.
//!
//! Why: a bridged call wakes about 100 times a second for packets and almost never for
//! anything else, yet a `select!` polls every branch on every wake-up: two event channels, the
//! timer, the drain signal and a readiness future per socket that takes the socket's waiter
//! lock twice. `perf` put that at roughly a tenth of dialin's CPU per relayed packet. The
//! rare sources are polled with a waker of their own that sets this flag before waking the
//! task; the driver polls them again only when the flag is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// Set when a source polled with the waker [`WakeFlag::new`] returns wakes the call's task.
pub struct WakeFlag {
    woken: AtomicBool,
    /// The call task's own waker, woken in turn.
    task: Mutex<Option<Waker>>,
}

impl WakeFlag {
    /// A flag that starts set (nothing has been polled yet) and the waker that sets it.
    pub fn new() -> (Arc<WakeFlag>, Waker) {
        let flag = Arc::new(WakeFlag {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(flag.clone());
        (flag, waker)
    }

    /// Whether the sources must be polled; clears the flag.
    pub fn take(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Makes the next wait poll the sources (their state or registration changed).
    pub fn set(&self) {
        self.woken.store(true, Ordering::Release);
    }

    /// Remembers the task to wake; called before the sources are polled.
    pub fn register(&self, task: &Waker) {
        let mut slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(task)) {
            *slot = Some(task.clone());
        }
    }
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let slot = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = slot.as_ref() {
            task.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_sets_the_flag_and_wakes_the_registered_task() {
        let (flag, waker) = WakeFlag::new();
        assert!(flag.take(), "starts set: the sources were never polled");
        assert!(!flag.take());
        // Woken before any task registered: the flag still says so.
        waker.wake_by_ref();
        assert!(flag.take());
        let count = Arc::new(Count(AtomicUsize::new(0)));
        flag.register(&Waker::from(count.clone()));
        waker.wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(flag.take());
        assert!(!flag.take());
        flag.set();
        assert!(flag.take());
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "set() wakes nobody");
    }
}
