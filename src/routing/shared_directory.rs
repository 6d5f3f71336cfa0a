//! [`SharedDirectory`]: the directory shared between the Event Socket tasks (writers) and the calls (readers), and
//! the read-only view for status and metrics.
//!
//! A plain mutex around the pure [`Directory`]: every critical section is a map look-up or a
//! small update, never I/O, and nothing on the RTP path touches it. A `watch` channel tells
//! waiting callers that a conference was created, and anyone who follows a server that its
//! health ([`ServerHealth`]) changed; [`SharedDirectory::spawn_health_clock`] makes the
//! changes that come with time alone (a grace period ending) fire it too.

use super::directory::{Directory, Presence, ServerHealth, ServerStatus};
use crate::esl::client::{ConferenceFeed, LinkLoss};
use crate::esl::message::{Event, ListedConference};
use crate::ids::ServerName;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The shared directory; cheap to clone.
#[derive(Clone)]
pub struct SharedDirectory {
    /// The pure directory.
    inner: Arc<Mutex<Directory>>,
    /// Bumped whenever a conference is created (or a server comes up) and whenever any
    /// server's health changes, for waiting callers and calls that follow their server.
    created: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for SharedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.lock().fmt(f)
    }
}

impl SharedDirectory {
    /// A directory over the watched servers (config names).
    pub fn new(servers: &[ServerName], grace: Duration) -> SharedDirectory {
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

    /// A receiver whose value changes whenever a conference may have started or any
    /// server's [`ServerHealth`] changed (Up, Quiet, Down, either way; also when a grace
    /// period ends, if [`SharedDirectory::spawn_health_clock`] runs, as it does in `serve`).
    /// The value carries no meaning: on a change, re-read what you follow
    /// ([`SharedDirectory::server_health`], [`SharedDirectory::lookup`]). Like every `watch`,
    /// several changes between two reads wake the receiver once; a change may also be spurious
    /// (a conference on another server), so compare with what you saw before.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.created.subscribe()
    }

    /// Whether server `server` (its config name) can take calls at `now`: [`ServerHealth::Up`],
    /// [`ServerHealth::Quiet`] (Event Socket lost by timeouts, or not yet connected, within
    /// `esl.grace`: conferences still trusted, calls in progress go on) or
    /// [`ServerHealth::Down`] (Event Socket refused or closed, OPTIONS probes failing, or
    /// quiet past `esl.grace`: no new calls; a bridged call's server leg is likely dead). A
    /// server neither watched over an Event Socket nor probed, or not configured, is `Up`.
    /// For the call core: subscribe ([`SharedDirectory::subscribe`]) and re-check this on
    /// every change to notice that a bridged call's server died.
    pub fn server_health(&self, server: &str, now: Instant) -> ServerHealth {
        self.lock().health(server, now)
    }

    /// The OPTIONS prober's verdict on `server` at `now` (after its thresholds): wakes the
    /// subscribers when a server's health changed.
    pub fn handle_probe(&self, server: &str, now: Instant, alive: bool) {
        self.update(|d| {
            d.handle_probe(server, alive);
            ((), d.take_health_change(now))
        });
    }

    /// Wakes the subscribers if some server's health changed by the passing of time alone
    /// (a grace period ended) by `now`.
    pub fn handle_timeout(&self, now: Instant) {
        self.update(|d| ((), d.take_health_change(now)));
    }

    /// When [`SharedDirectory::handle_timeout`] is next due, if a grace period is running.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.lock().next_change(now)
    }

    /// Starts the task that calls [`SharedDirectory::handle_timeout`] when a grace period ends,
    /// so [`SharedDirectory::subscribe`] fires on health changes that no input brings. Ends
    /// with `cancel`.
    pub fn spawn_health_clock(&self, cancel: tokio_util::sync::CancellationToken) {
        let dir = self.clone();
        let mut changes = self.subscribe();
        tokio::spawn(async move {
            // tokio's clock (the same as std's in service; paused and advanced in tests).
            let now = || tokio::time::Instant::now().into_std();
            loop {
                let next = dir.poll_timeout(now());
                // Without a running grace period, wait for an input (which may start one).
                let sleep = async {
                    match next {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sleep => dir.handle_timeout(now()),
                    r = changes.changed() => if r.is_err() { return },
                    _ = cancel.cancelled() => return,
                }
            }
        });
    }

    /// Our call's member on server `name`: its conference and member id.
    pub fn member(&self, server: &str, call: &str) -> Option<(super::ConferenceId, u32)> {
        let d = self.lock();
        d.member(d.index(server)?, call)
    }

    /// Whether our call's member on `server` is muted now (see [`Directory::member_muted`]).
    pub fn member_muted(&self, server: &str, call: &str) -> Option<bool> {
        let d = self.lock();
        d.member_muted(d.index(server)?, call)
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
            d.take_health_change(now);
            ((), true)
        });
    }

    fn handle_down(&self, idx: usize, now: Instant, loss: LinkLoss) {
        self.update(|d| {
            d.handle_down(idx, now, loss);
            ((), d.take_health_change(now))
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

    /// Server `server`'s health at `now` (see [`SharedDirectory::server_health`]).
    pub fn health(&self, server: &str, now: Instant) -> ServerHealth {
        self.0.server_health(server, now)
    }

    /// Conferences seen live on two servers at once since start-up.
    pub fn collisions(&self) -> u64 {
        self.0.lock().collisions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `subscribe` fires on every health change, also one that only time brings (the clock
    /// task), and `server_health` tells what it is now.
    #[tokio::test]
    async fn subscribers_see_every_health_change() {
        // Real time (tokio's test-util, for paused time, is not built here): a short grace.
        let grace = Duration::from_millis(200);
        let dir = SharedDirectory::new(&["bbb1".into()], grace);
        let cancel = tokio_util::sync::CancellationToken::new();
        dir.spawn_health_clock(cancel.clone());
        let mut rx = dir.subscribe();
        rx.borrow_and_update();
        let now = || tokio::time::Instant::now().into_std();
        dir.handle_snapshot(0, now(), vec![]);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        assert_eq!(dir.server_health("bbb1", now()), ServerHealth::Up);
        dir.handle_down(0, now(), LinkLoss::Quiet);
        assert!(rx.has_changed().unwrap(), "Up → Quiet");
        rx.borrow_and_update();
        assert_eq!(dir.server_health("bbb1", now()), ServerHealth::Quiet);
        // Grace over: the clock task wakes the subscribers without any input.
        tokio::time::timeout(grace * 10, rx.changed())
            .await
            .expect("the grace period's end fires")
            .unwrap();
        assert_eq!(dir.server_health("bbb1", now()), ServerHealth::Down);
        // Probes: an unwatched server down and up again fires twice; a repeat does not.
        rx.borrow_and_update();
        dir.handle_probe("bbb9", now(), false);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        dir.handle_probe("bbb9", now(), false);
        assert!(!rx.has_changed().unwrap());
        dir.handle_probe("bbb9", now(), true);
        assert!(rx.has_changed().unwrap());
        cancel.cancel();
    }
}
