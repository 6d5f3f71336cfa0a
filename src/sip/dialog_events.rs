//! One dialog-state channel for all calls, handed out to each call by Call-ID.
//!
//! Why: rsipstack reports a dialog's state changes over a tokio unbounded channel, and such a
//! channel allocates its first block at once: 32 slots of `DialogState`, several hundred bytes
//! each. Two channels per call (trunk leg and server leg) were about 40 KB of every bridged
//! call's memory, more than everything else the call holds. Here every dialog reports into
//! one shared channel; a task forwards each event, boxed, to the channel of the call that
//! subscribed to its Call-ID, whose slots are then a pointer wide.
//!
//! A call subscribes to a Call-ID before it creates the dialog, so no event can come first;
//! events for a Call-ID nobody subscribed to (a call already cleaned up) are dropped, as they
//! were when each call's receiver was dropped with it.

use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Call-ID → (subscription number, the call leg's channel).
type RouteMap = HashMap<String, (u64, UnboundedSender<Box<DialogState>>)>;
type Routes = Mutex<RouteMap>;

/// The shared channel's sending side (given to rsipstack for every dialog) and who gets what.
pub struct DialogEvents {
    sender: DialogStateSender,
    routes: Arc<Routes>,
    next_id: AtomicU64,
}

impl DialogEvents {
    /// Starts the forwarding task on the current runtime; it runs as long as any dialog or
    /// this value holds a sender.
    pub fn start() -> Arc<DialogEvents> {
        let (sender, mut shared) = unbounded_channel::<DialogState>();
        let routes: Arc<Routes> = Arc::default();
        let task_routes = routes.clone();
        tokio::spawn(async move {
            while let Some(ev) = shared.recv().await {
                let target = lock(&task_routes)
                    .get(ev.id().call_id.as_str())
                    .map(|r| r.1.clone());
                if let Some(tx) = target {
                    // A call that ended meanwhile has dropped its receiver: nothing to do.
                    tx.send(Box::new(ev)).ok();
                }
            }
        });
        Arc::new(DialogEvents {
            sender,
            routes,
            next_id: AtomicU64::new(0),
        })
    }

    /// The sender to give rsipstack when creating a dialog.
    pub fn sender(&self) -> DialogStateSender {
        self.sender.clone()
    }

    /// Routes the events of dialogs with `call_id` to the returned receiver until it is
    /// dropped. A second subscription to the same Call-ID replaces the first.
    pub fn subscribe(&self, call_id: &str) -> DialogEventReceiver {
        let (tx, rx) = unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.routes).insert(call_id.to_string(), (id, tx));
        DialogEventReceiver {
            rx,
            id,
            call_id: call_id.to_string(),
            routes: self.routes.clone(),
        }
    }

    /// How many Call-IDs are subscribed (tests check that calls leave none behind).
    pub fn subscriptions(&self) -> usize {
        lock(&self.routes).len()
    }
}

/// One call leg's dialog events. Dropping it ends the subscription.
pub struct DialogEventReceiver {
    rx: UnboundedReceiver<Box<DialogState>>,
    /// This subscription's number, so dropping it never removes a newer one.
    id: u64,
    call_id: String,
    routes: Arc<Routes>,
}

impl DialogEventReceiver {
    /// The next event of this leg's dialog; `None` only if the forwarding task is gone.
    pub async fn recv(&mut self) -> Option<DialogState> {
        self.rx.recv().await.map(|ev| *ev)
    }
}

impl Drop for DialogEventReceiver {
    fn drop(&mut self) {
        let mut routes = lock(&self.routes);
        // Only our own entry: a later subscription to the same Call-ID stays.
        if routes.get(&self.call_id).is_some_and(|r| r.0 == self.id) {
            routes.remove(&self.call_id);
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

    fn ended(call_id: &str) -> DialogState {
        DialogState::Terminated(
            DialogId {
                call_id: call_id.into(),
                local_tag: "a".into(),
                remote_tag: "b".into(),
            },
            TerminatedReason::UacBye,
        )
    }

    async fn next(rx: &mut DialogEventReceiver) -> Option<String> {
        timeout(Duration::from_millis(200), rx.recv())
            .await
            .ok()
            .flatten()
            .map(|ev| ev.id().call_id.clone())
    }

    #[tokio::test]
    async fn each_leg_gets_the_events_of_its_call_id_only() {
        let events = DialogEvents::start();
        let mut trunk = events.subscribe("trunk-1");
        let mut server = events.subscribe("server-1");
        let tx = events.sender();
        tx.send(ended("server-1")).expect("open");
        tx.send(ended("nobody")).expect("open");
        tx.send(ended("trunk-1")).expect("open");
        assert_eq!(next(&mut trunk).await.as_deref(), Some("trunk-1"));
        assert_eq!(next(&mut server).await.as_deref(), Some("server-1"));
        assert_eq!(next(&mut trunk).await, None, "nothing else for this leg");
        assert_eq!(events.subscriptions(), 2);
        drop(trunk);
        drop(server);
        assert_eq!(events.subscriptions(), 0, "ended legs leave nothing behind");
    }

    #[tokio::test]
    async fn dropping_a_replaced_subscription_keeps_the_new_one() {
        let events = DialogEvents::start();
        let old = events.subscribe("same");
        let mut new = events.subscribe("same");
        drop(old);
        assert_eq!(events.subscriptions(), 1);
        events.sender().send(ended("same")).expect("open");
        assert_eq!(next(&mut new).await.as_deref(), Some("same"));
    }
}
