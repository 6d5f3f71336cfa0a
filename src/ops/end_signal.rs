//! The "end every call now" signal of a drain's deadline, cheap for a call to keep watching.
//!
//! Why: a call's driver wakes for every RTP packet and polls each thing it waits for, this
//! signal included. A shared `CancellationToken` (or `Notify`) takes a mutex on every such
//! poll, so every relayed packet of every call took the same lock. Here each call holds its
//! own oneshot receiver, whose poll is an atomic load; the mutex is taken only when a call
//! starts watching, stops watching, and at the deadline.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Who is watching, and whether the signal was given.
#[derive(Debug, Default)]
pub struct EndSignal {
    state: Mutex<Watchers>,
}

#[derive(Debug, Default)]
struct Watchers {
    ended: bool,
    next_id: u64,
    waiting: HashMap<u64, oneshot::Sender<()>>,
}

impl EndSignal {
    /// Gives the signal: every watcher, present and future, resolves.
    pub fn end(&self) {
        let mut w = self.lock();
        w.ended = true;
        for (_, tx) in w.waiting.drain() {
            tx.send(()).ok();
        }
    }

    /// A future that resolves once [`EndSignal::end`] was called (at once if it was before).
    pub fn watch(self: &Arc<Self>) -> CallsEnding {
        let (tx, rx) = oneshot::channel();
        let mut w = self.lock();
        let id = w.next_id;
        w.next_id += 1;
        if w.ended {
            tx.send(()).ok();
        } else {
            w.waiting.insert(id, tx);
        }
        CallsEnding {
            rx,
            id,
            signal: self.clone(),
        }
    }

    /// How many calls are watching (for tests: ended calls leave none behind).
    #[cfg(test)]
    pub fn watchers(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> MutexGuard<'_, Watchers> {
        // Each operation leaves the state consistent, so a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's watch on the signal; dropping it stops watching.
#[derive(Debug)]
pub struct CallsEnding {
    rx: oneshot::Receiver<()>,
    id: u64,
    signal: Arc<EndSignal>,
}

impl Future for CallsEnding {
    type Output = ();

    /// Ready once the signal was given. Poll it no more after that (as any oneshot).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.rx).poll(cx).map(|_| ())
    }
}

impl Drop for CallsEnding {
    fn drop(&mut self) {
        self.signal.lock().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    #[tokio::test]
    async fn watchers_resolve_at_the_signal_and_late_ones_at_once() {
        let s = Arc::new(EndSignal::default());
        let mut early = s.watch();
        let gone = s.watch();
        drop(gone);
        assert_eq!(s.watchers(), 1, "a dropped watch is forgotten");
        assert!(
            timeout(Duration::from_millis(20), &mut early)
                .await
                .is_err(),
            "no signal yet"
        );
        s.end();
        timeout(Duration::from_secs(1), &mut early)
            .await
            .expect("resolves at the signal");
        timeout(Duration::from_secs(1), s.watch())
            .await
            .expect("a watch taken after the signal resolves at once");
        drop(early);
        assert_eq!(s.watchers(), 0);
    }
}
