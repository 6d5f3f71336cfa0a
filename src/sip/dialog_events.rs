//! One dialog-state channel for all calls, handed out to each call by Call-ID.
//!
//! Why: rsipstack reports a dialog's state changes over a tokio unbounded channel, and such a
//! channel allocates its first block at once: 32 slots of `DialogState`, several hundred bytes
//! each. Two channels per call (trunk leg and server leg) were 13 KB of every bridged call's
//! resident memory (`bench/run`: 83 -> 70 KB per call). Here every dialog reports into
//! one shared channel; a task forwards each event, boxed, to the channel of the call that
//! subscribed to its Call-ID, whose slots are then a pointer wide.
//!
//! A call subscribes before it creates the dialog, so no event can come first: the trunk leg
//! by the INVITE's Call-ID and From tag (two calls may bring the same Call-ID: a broken or
//! hostile peer must not take over another call's events), the server leg by the random
//! Call-ID dialin gives its INVITE. Events nobody subscribed to (a call already cleaned up)
//! are dropped, as they were when each call's receiver was dropped with it.
//!
//! # Bounds
//! - Each leg's channel holds [`LEG_QUEUE`] events. A call's task reads them as they come, so
//!   a full queue means its peer sends in-dialog requests (INFO, OPTIONS, re-INVITEs) faster
//!   than the call can handle them, or the task is stuck. The forwarding task never waits for
//!   a call (one slow call must not hold up every other call's events): an event that finds
//!   its leg's queue full is dropped and counted in [`EVENTS_DROPPED`] and
//!   [`DialogEvents::dropped`]. That only loses what the flooding peer sent itself: its
//!   request goes unanswered (rsipstack ends the transaction when the event is dropped with
//!   its handle, and the peer gives up on it), an INFO digit in it is lost.
//!   The exception is the end of a dialog (`Terminated`), which the call must hear to hang up
//!   the other leg: it is handed to a task of its own that waits for room (at most one per
//!   dialog, as a dialog ends once; the task ends when the call reads it or is gone).
//! - The shared channel is unbounded because rsipstack's API forces it: a dialog takes a
//!   [`DialogStateSender`], which is rsipstack's `UnboundedSender<DialogState>`. It stays
//!   short: the forwarding task drains it without ever waiting on a call (a map lookup under
//!   a lock held for that alone, then `try_send`), and what fills it is SIP messages, which
//!   the edge already bounds (per-source rate limits, connection caps, call admission).

use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{channel, unbounded_channel, Receiver, Sender};

/// Events one call leg's channel holds. A call's task reads its events as they come; a
/// legitimate peer has a handful in flight at most (a re-INVITE, a few INFO digits, the BYE).
pub const LEG_QUEUE: usize = 16;

pub use crate::ops::metrics::EVENTS_DROPPED;

/// A call leg's subscription.
struct Route {
    /// Its number, so dropping it removes only itself.
    id: u64,
    /// The peer's tag the events must carry (`None`: any).
    remote_tag: Option<String>,
    tx: Sender<Box<DialogState>>,
}

/// Call-ID → the legs subscribed to it (almost always one).
type RouteMap = HashMap<String, Vec<Route>>;
type Routes = Mutex<RouteMap>;

/// The shared channel's sending side (given to rsipstack for every dialog) and who gets what.
pub struct DialogEvents {
    /// Given to rsipstack for every dialog; unbounded because rsipstack's type is.
    sender: DialogStateSender,
    /// Who gets the events of which Call-ID.
    routes: Arc<Routes>,
    /// Numbers subscriptions, so a dropped one removes only itself.
    next_id: AtomicU64,
    /// Events dropped for a full leg queue since start.
    dropped: Arc<AtomicU64>,
}

impl DialogEvents {
    /// Starts the forwarding task on the current runtime; it runs as long as any dialog or
    /// this value holds a sender.
    pub fn start() -> Arc<DialogEvents> {
        let (sender, mut shared) = unbounded_channel::<DialogState>();
        let routes: Arc<Routes> = Arc::default();
        let task_routes = routes.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        let task_dropped = dropped.clone();
        tokio::spawn(async move {
            while let Some(ev) = shared.recv().await {
                let target = lock(&task_routes)
                    .get(ev.id().call_id.as_str())
                    .and_then(|legs| {
                        legs.iter().find(|r| {
                            r.remote_tag
                                .as_deref()
                                .is_none_or(|t| t == ev.id().remote_tag)
                        })
                    })
                    .map(|r| r.tx.clone());
                if let Some(tx) = target {
                    forward(&tx, Box::new(ev), &task_dropped);
                }
            }
        });
        Arc::new(DialogEvents {
            sender,
            routes,
            next_id: AtomicU64::new(0),
            dropped,
        })
    }

    /// The sender to give rsipstack when creating a dialog.
    pub fn sender(&self) -> DialogStateSender {
        self.sender.clone()
    }

    /// Routes the events of dialogs with `call_id` (and, if given, whose peer's tag is
    /// `remote_tag`) to the returned receiver until it is dropped.
    pub fn subscribe(&self, call_id: &str, remote_tag: Option<&str>) -> DialogEventReceiver {
        let (tx, rx) = channel(LEG_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let route = Route {
            id,
            remote_tag: remote_tag.map(str::to_string),
            tx,
        };
        lock(&self.routes)
            .entry(call_id.to_string())
            .or_default()
            .push(route);
        DialogEventReceiver {
            rx,
            id,
            call_id: call_id.to_string(),
            routes: self.routes.clone(),
        }
    }

    /// How many events were dropped because their call leg's queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many call legs are subscribed: one per live leg, none once calls have ended.
    #[cfg(test)]
    pub fn subscriptions(&self) -> usize {
        lock(&self.routes).values().map(Vec::len).sum()
    }
}

/// One call leg's dialog events. Dropping it ends the subscription.
pub struct DialogEventReceiver {
    /// The leg's queue, [`LEG_QUEUE`] events long.
    rx: Receiver<Box<DialogState>>,
    /// This subscription's number, so dropping it never removes a newer one.
    id: u64,
    /// The Call-ID subscribed to, to find the subscription again on drop.
    call_id: String,
    /// The map to remove the subscription from on drop.
    routes: Arc<Routes>,
}

impl DialogEventReceiver {
    /// The next event of this leg's dialog; `None` only if the forwarding task is gone.
    pub async fn recv(&mut self) -> Option<DialogState> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll: the waker stays registered until an event comes, so a
    /// call can poll its events only when they woke it.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<DialogState>> {
        self.rx.poll_recv(cx).map(|ev| ev.map(|ev| *ev))
    }
}

impl Drop for DialogEventReceiver {
    fn drop(&mut self) {
        let mut routes = lock(&self.routes);
        if let Some(legs) = routes.get_mut(&self.call_id) {
            legs.retain(|r| r.id != self.id);
            if legs.is_empty() {
                routes.remove(&self.call_id);
            }
        }
    }
}

/// Hands `ev` to its leg without waiting: dropped and counted when the leg's queue is full,
/// except a dialog's end, which a task delivers once there is room (see the module doc).
fn forward(tx: &Sender<Box<DialogState>>, ev: Box<DialogState>, dropped: &AtomicU64) {
    match tx.try_send(ev) {
        // A call that ended meanwhile has dropped its receiver: nothing to do.
        Ok(()) | Err(TrySendError::Closed(_)) => {}
        Err(TrySendError::Full(ev)) if matches!(*ev, DialogState::Terminated(..)) => {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(ev).await.ok() });
        }
        Err(TrySendError::Full(_)) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(EVENTS_DROPPED).increment(1);
        }
    }
}

fn lock(routes: &Routes) -> MutexGuard<'_, RouteMap> {
    // The map stays consistent even if a holder panicked: each operation is one call.
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::dialog::TerminatedReason;
    use rsipstack::dialog::DialogId;
    use std::time::Duration;
    use tokio::time::timeout;

    fn ended(call_id: &str, remote_tag: &str) -> DialogState {
        DialogState::Terminated(
            DialogId {
                call_id: call_id.into(),
                local_tag: "ours".into(),
                remote_tag: remote_tag.into(),
            },
            TerminatedReason::UacBye,
        )
    }

    /// "call-id/remote-tag" of the leg's next event, `None` if none comes.
    async fn next(rx: &mut DialogEventReceiver) -> Option<String> {
        timeout(Duration::from_millis(200), rx.recv())
            .await
            .ok()
            .flatten()
            .map(|ev| format!("{}/{}", ev.id().call_id, ev.id().remote_tag))
    }

    #[tokio::test]
    async fn each_leg_gets_the_events_of_its_call_id_only() {
        let events = DialogEvents::start();
        let mut trunk = events.subscribe("trunk-1", Some("caller"));
        let mut server = events.subscribe("server-1", None);
        let tx = events.sender();
        tx.send(ended("server-1", "fs")).expect("open");
        tx.send(ended("nobody", "x")).expect("open");
        tx.send(ended("trunk-1", "caller")).expect("open");
        assert_eq!(next(&mut trunk).await.as_deref(), Some("trunk-1/caller"));
        assert_eq!(next(&mut server).await.as_deref(), Some("server-1/fs"));
        assert_eq!(next(&mut trunk).await, None, "nothing else for this leg");
        assert_eq!(events.subscriptions(), 2);
        drop(trunk);
        drop(server);
        assert_eq!(events.subscriptions(), 0, "ended legs leave nothing behind");
    }

    fn trying(call_id: &str) -> DialogState {
        DialogState::Trying(DialogId {
            call_id: call_id.into(),
            local_tag: "ours".into(),
            remote_tag: "caller".into(),
        })
    }

    #[tokio::test]
    async fn a_full_leg_queue_drops_and_counts_events_but_never_the_dialogs_end() {
        let events = DialogEvents::start();
        let mut flooded = events.subscribe("flood", None);
        let mut other = events.subscribe("other", None);
        let tx = events.sender();
        let extra = 3;
        for _ in 0..LEG_QUEUE + extra {
            tx.send(trying("flood")).expect("open");
        }
        tx.send(ended("flood", "caller")).expect("open");
        tx.send(ended("other", "caller")).expect("open");
        // The other call is not held up by the flooded one.
        assert_eq!(next(&mut other).await.as_deref(), Some("other/caller"));
        assert_eq!(
            events.dropped(),
            extra as u64,
            "what did not fit is counted"
        );
        for _ in 0..LEG_QUEUE {
            let ev = flooded.recv().await.expect("open");
            assert!(matches!(ev, DialogState::Trying(_)), "{ev}");
        }
        let last = flooded.recv().await.expect("open");
        assert!(matches!(last, DialogState::Terminated(..)), "{last}");
        assert_eq!(next(&mut flooded).await, None);
    }

    #[tokio::test]
    async fn two_calls_with_one_call_id_keep_their_own_events() {
        let events = DialogEvents::start();
        let mut first = events.subscribe("same", Some("caller-1"));
        let mut second = events.subscribe("same", Some("caller-2"));
        let tx = events.sender();
        tx.send(ended("same", "caller-2")).expect("open");
        tx.send(ended("same", "caller-1")).expect("open");
        assert_eq!(next(&mut first).await.as_deref(), Some("same/caller-1"));
        assert_eq!(next(&mut second).await.as_deref(), Some("same/caller-2"));
        drop(first);
        assert_eq!(
            events.subscriptions(),
            1,
            "the other call keeps its subscription"
        );
        tx.send(ended("same", "caller-2")).expect("open");
        assert_eq!(next(&mut second).await.as_deref(), Some("same/caller-2"));
    }
}
