//! The call's side of the live directory: waiting for a meeting to start, and the mute key
//! over the server's Event Socket.

use super::CallDriver;
use crate::call::flow::FlowInput;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::watch::Receiver;
use tracing::{info, warn};

impl CallDriver {
    /// The mute key: `conference <name> tmute <member>` over the server's Event Socket, or
    /// the key forwarded where the server has none or our member is not known.
    pub(super) fn toggle_mute(&mut self, digit: crate::digit::Digit) {
        let server = self.server_name.as_deref().unwrap_or("");
        let (Some(esl), Some(dir)) = (self.ctx.esl.get(server), self.settings.router.directory())
        else {
            self.path.with(|p| p.media.send_digit(digit));
            return;
        };
        match dir.member(server, &self.dialin_call) {
            Some((conference, member)) => {
                let sent = esl.api(format!("conference {} tmute {member}", conference.expose()));
                info!(call = self.call_no, server, sent, "mute key: toggling mute");
            }
            None => {
                warn!(
                    call = self.call_no,
                    server,
                    "mute key: our conference member is not known (no add-member event seen); forwarding the key instead"
                );
                // Better a key BBB's caller controls may act on than a key that does nothing.
                self.path.with(|p| p.media.send_digit(digit));
            }
        }
    }

    /// Hands routing's decision to the flow, remembering what a waiting caller waits for.
    pub(super) fn routed(&mut self, now: Instant, decision: crate::routing::RouteDecision) {
        use crate::routing::RouteDecision;
        match &decision {
            RouteDecision::Unavailable => info!(
                call = self.call_no,
                "conference unavailable (on two servers, or its server's Event Socket is down)"
            ),
            RouteDecision::Waiting(w) => self.waiting_for = Some(w.clone()),
            _ => {}
        }
        self.flow.handle_input(now, FlowInput::Routed(decision));
    }

    /// While the caller waits: checks the meeting again and lets the flow decide.
    pub(super) fn recheck_waiting(&mut self, now: Instant) {
        if self.meeting_directory_changed(now) {
            return;
        }
        if self.flow.state() != crate::call::flow::FlowState::Waiting {
            self.waiting = None;
            return;
        }
        if let Some(waiting_for) = &self.waiting_for {
            let decision = self.settings.router.recheck(waiting_for, now);
            if matches!(decision, crate::routing::RouteDecision::Conference(_)) {
                info!(call = self.call_no, "meeting started: joining");
                self.waiting = None;
            }
            self.flow.handle_input(now, FlowInput::Routed(decision));
        }
    }
}

/// The directory's change notifications as a wait the driver keeps across its wake-ups, so
/// the watch's waiter list is not joined and left again at every one of them.
pub(super) struct DirectoryWait(Pin<Box<dyn Future<Output = (Receiver<u64>, bool)> + Send>>);

impl DirectoryWait {
    /// Waits for the next change seen by `rx`.
    pub(super) fn new(rx: Receiver<u64>) -> DirectoryWait {
        DirectoryWait(Box::pin(async move {
            let mut rx = rx;
            let open = rx.changed().await.is_ok();
            (rx, open)
        }))
    }

    /// Ready with `true` at each change (then waits for the next one), with `false` once the
    /// directory is gone (then pends forever).
    pub(super) fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let (rx, open) = std::task::ready!(self.0.as_mut().poll(cx));
        *self = if open {
            DirectoryWait::new(rx)
        } else {
            DirectoryWait(Box::pin(std::future::pending()))
        };
        Poll::Ready(open)
    }
}
