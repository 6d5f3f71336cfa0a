//! [`SharedDirectory`]: the directory shared between the Event Socket tasks (writers) and the calls (readers), and
//! the read-only view for status and metrics.
//!
//! A plain mutex around the pure [`Directory`]: every critical section is a map look-up or a
//! small update, never I/O, and nothing on the RTP path touches it. A `watch` channel tells
//! waiting callers that a conference was created.

use super::directory::{Directory, Presence, ServerStatus};
use crate::esl::client::ConferenceFeed;
use crate::esl::message::{Event, ListedConference};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The shared directory; cheap to clone.
#[derive(Clone)]
pub struct SharedDirectory {
    /// The pure directory.
    inner: Arc<Mutex<Directory>>,
    /// Bumped whenever a conference is created (or a server comes up), for waiting callers.
    created: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SharedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.lock().fmt(f)
    }
}

impl SharedDirectory {
    /// A directory over the watched servers (config names).
    pub fn new(servers: &[String], grace: Duration) -> SharedDirectory {
        SharedDirectory {
            inner: Arc::new(Mutex::new(Directory::new(servers, grace))),
            created: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        // A panic while holding the lock would be a bug in the pure directory; its data is
        // still consistent enough to route by, so keep going rather than poison every call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where conference `name` runs at `now`.
    pub fn lookup(&self, name: &str, now: Instant) -> Presence {
        self.lock().lookup(name, now)
    }

    /// Runs a reader `f` on the directory, locked for the duration (a few map look-ups).
    pub fn read<R>(&self, f: impl FnOnce(&Directory) -> R) -> R {
        f(&self.lock())
    }

    /// Whether server `name` is watched over an Event Socket.
    pub fn watches(&self, name: &str) -> bool {
        self.lock().index(name).is_some()
    }

    /// Runs a writer's update; `notify` says whether waiters must re-check.
    pub fn update<R>(&self, f: impl FnOnce(&mut Directory) -> (R, bool)) -> R {
        let (r, notify) = f(&mut self.lock());
        if notify {
            self.created.send_modify(|n| *n = n.wrapping_add(1));
        }
        r
    }

    /// A receiver that changes whenever a conference may have started.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.created.subscribe()
    }

    /// Our call's member on server `name`: its conference and member id.
    pub fn member(&self, server: &str, call: &str) -> Option<(super::ConferenceId, u32)> {
        let d = self.lock();
        d.member(d.index(server)?, call)
    }

    /// The read-only view for status lines and metrics.
    pub fn view(&self) -> DirectoryView {
        DirectoryView(self.clone())
    }
}

/// The Event Socket tasks write here: a snapshot or a created conference wakes waiting callers.
impl ConferenceFeed for SharedDirectory {
    fn handle_snapshot(&self, idx: usize, now: Instant, list: Vec<ListedConference>) {
        self.update(|d| {
            d.handle_snapshot(idx, now, list);
            ((), true)
        });
    }

    fn handle_down(&self, idx: usize, now: Instant) {
        self.update(|d| {
            d.handle_down(idx, now);
            ((), false)
        });
    }

    fn handle_event(&self, idx: usize, now: Instant, event: &Event) {
        self.update(|d| {
            let created = d.handle_event(idx, now, event);
            ((), created)
        });
    }
}

/// Read-only: per-server Event Socket state, conference counts and the collision counter.
/// Carries no conference numbers.
#[derive(Clone, Debug)]
pub struct DirectoryView(SharedDirectory);

impl DirectoryView {
    /// Every watched server's state and trusted conference count at `now`.
    pub fn servers(&self, now: Instant) -> Vec<ServerStatus> {
        self.0.lock().status(now)
    }

    /// Conferences seen live on two servers at once since start-up.
    pub fn collisions(&self) -> u64 {
        self.0.lock().collisions()
    }
}
