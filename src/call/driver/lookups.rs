//! The call's questions that take I/O, each answered by a small task or a watch so the call's
//! loop keeps relaying and timing: BBB API lookups of a meeting ID (bounded by
//! [`MEETING_LOOKUP_TIMEOUT`], one in flight per call), the cluster's shared numbering of the
//! caller, and the live directory's change notifications. What the answers mean is the core's
//! to decide.

use super::CallDriver;
use crate::bbb_api::FoundMeeting;
use crate::call::context::CallContext;
use crate::call::core::MeetingAnswer;
use crate::routing::directory::ServerHealth;
use crate::routing::ConferenceTarget;
use crate::store::shared_mappings::MeetingLookup;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::watch::Receiver;
use tracing::info;

/// The longest one BBB API lookup may take; a slower one counts as failed.
pub const MEETING_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What one lookup found.
#[derive(Debug)]
pub(super) enum Found {
    /// The meeting runs.
    Running(FoundMeeting),
    /// The API does not know it, or it has not started.
    NotRunning,
    /// The API could not answer (the reason holds no meeting ID).
    Failed(String),
}

/// Asks the BBB API once, bounded by [`MEETING_LOOKUP_TIMEOUT`].
async fn ask(ctx: Arc<CallContext>, lookup: MeetingLookup) -> Found {
    match tokio::time::timeout(MEETING_LOOKUP_TIMEOUT, ctx.meetings.voice_bridge(&lookup)).await {
        Ok(Ok(Some(found))) => Found::Running(found),
        Ok(Ok(None)) => Found::NotRunning,
        Ok(Err(e)) => Found::Failed(e.to_string()),
        Err(_) => Found::Failed("the BBB API took longer than 5 s".into()),
    }
}

impl CallDriver {
    /// Starts a lookup (the core asks for one at a time).
    pub(super) fn look_up_meeting(&mut self, lookup: MeetingLookup) {
        let task = tokio::spawn(ask(self.ctx.clone(), lookup));
        if let Some(old) = self.lookup.replace(task) {
            old.abort();
        }
    }

    /// A lookup's answer in the core's terms: a running meeting becomes routing's decision.
    pub(super) fn meeting_answer(&self, now: Instant, found: Found) -> MeetingAnswer {
        match found {
            Found::Running(f) => MeetingAnswer::Running(self.settings.router.meeting_target(
                f.conference,
                f.server.as_deref(),
                now,
            )),
            Found::NotRunning => MeetingAnswer::NotRunning,
            Found::Failed(reason) => MeetingAnswer::Failed(reason),
        }
    }

    /// Numbers the caller in `target`'s conference: the cluster's shared numbering (bounded
    /// by its own wait; the answer comes back as a wake-up) or, alone, the local counter.
    pub(super) fn number_caller(&mut self, now: Instant, target: ConferenceTarget) {
        if let Some(store) = self.ctx.privacy.shared_sequences() {
            let conference = self.ctx.privacy.conference(now, &target.conference);
            let task = crate::privacy::cluster_sequence::reserve(store, conference);
            if let Some((_, old)) = self.numbering.replace((target, tokio::spawn(task))) {
                old.abort();
            }
            return;
        }
        self.numbered(now, target, None);
    }

    /// The caller's number is known (`shared`, or the local counter's): the core dials.
    pub(super) fn numbered(&mut self, now: Instant, target: ConferenceTarget, shared: Option<u64>) {
        let seq = shared.unwrap_or_else(|| self.ctx.privacy.next_local(now, &target.conference));
        let can_mute = self.ctx.esl.contains_key(&target.server);
        self.core.handle_numbered(now, target, seq, can_mute);
    }

    /// Watches the live directory (if there is one) for the core.
    pub(super) fn watch_directory(&mut self) {
        if self.directory.is_none() {
            let directory = self.settings.router.directory();
            self.directory = directory.map(|d| DirectoryWait::new(d.subscribe()));
        }
    }

    /// Bridged: watches the directory for the server's health, from its health now.
    pub(super) fn watch_server_health(&mut self, now: Instant) {
        let directory = self.settings.router.directory();
        self.health = match (directory, self.server_name.as_deref()) {
            (Some(d), Some(server)) => Some((
                DirectoryWait::new(d.subscribe()),
                d.server_health(server, now),
            )),
            _ => None,
        };
    }

    /// The directory changed while bridged: a server that went `Down` since (its Event
    /// Socket refused or closed, its probes failing) has lost the leg. `Quiet` does not count:
    /// a socket that only went quiet says nothing about the media, which the core watches.
    pub(super) fn check_server_health(&mut self, now: Instant) {
        let (Some(directory), Some(server)) = (
            self.settings.router.directory(),
            self.server_name.as_deref(),
        ) else {
            return;
        };
        let health = directory.server_health(server, now);
        let Some((_, seen)) = self.health.as_mut() else {
            return;
        };
        let was = std::mem::replace(seen, health);
        if health == ServerHealth::Down && was != ServerHealth::Down {
            self.core.handle_server_down(now);
        }
    }

    /// The dial's log line: the server and the conference's pseudonym.
    pub(super) fn log_dial(&self, now: Instant, target: &ConferenceTarget) {
        let conf = self.ctx.privacy.conference(now, &target.conference);
        info!(call = self.call_no, server = %target.server, %conf, "dialling server");
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
