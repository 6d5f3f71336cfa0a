//! Resolving a store mapping to a BBB meeting ID at call time, and waiting for that meeting.
//!
//! The BBB API is asked for the running meeting's voiceBridge (each lookup bounded by
//! [`MEETING_LOOKUP_TIMEOUT`], one in flight per call, in its own small task so the call's loop
//! keeps relaying and timing). Answers:
//! - running: route to its conference (where the directory sees it, or on its server);
//! - not running, or unknown to the API (meetings usually exist only once the frontend
//!   creates them): the meeting ID is a known meeting, so the caller waits in the waiting room
//!   like any mapped meeting, and the API is asked again on the [`MeetingPoll`] schedule
//!   (every 5 s, and promptly when the live directory reports a new conference) until it runs
//!   or `ivr.max_wait` is over;
//! - the API fails (unreachable, error, timeout, no `[[bbb_api]]` for the mapping) on the
//!   first lookup: "unavailable" and goodbye, not "invalid PIN" — the PIN is right and typing
//!   it again would not help; while waiting, a failure just means asking again later.
//!
//! Log lines name the call only: never the meeting ID, the PIN or the conference number.

use super::{live, CallDriver};
use crate::bbb_api::FoundMeeting;
use crate::call::context::CallContext;
use crate::call::flow::FlowState;
use crate::call::meeting_poll::MeetingPoll;
use crate::routing::{RouteDecision, WaitingFor};
use crate::store::live::MeetingLookup;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// The longest one BBB API lookup may take; a slower one counts as failed.
pub const MEETING_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What one lookup found.
#[derive(Debug)]
pub(super) enum MeetingAnswer {
    /// The meeting runs.
    Running(FoundMeeting),
    /// The API does not know it, or it has not started.
    NotRunning,
    /// The API could not answer (the reason holds no meeting ID).
    Failed(String),
}

/// A call's meeting-ID mapping while it is being resolved or waited for.
pub(super) struct MeetingWait {
    /// What to ask the API.
    lookup: MeetingLookup,
    /// When to ask.
    poll: MeetingPoll,
}

/// Asks the BBB API once, bounded by [`MEETING_LOOKUP_TIMEOUT`].
async fn ask(ctx: Arc<CallContext>, lookup: MeetingLookup) -> MeetingAnswer {
    match tokio::time::timeout(MEETING_LOOKUP_TIMEOUT, ctx.meetings.voice_bridge(&lookup)).await {
        Ok(Ok(Some(found))) => MeetingAnswer::Running(found),
        Ok(Ok(None)) => MeetingAnswer::NotRunning,
        Ok(Err(e)) => MeetingAnswer::Failed(e.to_string()),
        Err(_) => MeetingAnswer::Failed("the BBB API took longer than 5 s".into()),
    }
}

impl CallDriver {
    /// A PIN mapped to a BBB meeting ID: ask the API now. The directory (if any) is watched
    /// from here on, so a conference created while the first lookup is in flight counts.
    pub(super) fn begin_meeting(&mut self, now: Instant, lookup: MeetingLookup) {
        self.meeting = Some(MeetingWait {
            lookup,
            poll: MeetingPoll::new(now),
        });
        if self.waiting.is_none() {
            let directory = self.settings.router.directory();
            self.waiting = directory.map(|d| live::DirectoryWait::new(d.subscribe()));
        }
        self.start_meeting_lookup(now);
    }

    /// Whether the caller is still resolving or waiting for a meeting ID; drops the meeting
    /// state once the call has moved on (hung up, max_wait over, joined).
    fn meeting_still_wanted(&mut self) -> bool {
        let wanted = matches!(self.flow.state(), FlowState::Resolving | FlowState::Waiting);
        if !wanted {
            self.meeting = None;
        }
        wanted && self.meeting.is_some()
    }

    /// Starts the next lookup if one is due and none is in flight.
    pub(super) fn start_meeting_lookup(&mut self, now: Instant) {
        if !self.meeting_still_wanted() || self.lookup.is_some() {
            return;
        }
        if let Some(m) = self.meeting.as_mut() {
            if m.poll.poll_start(now) {
                let task = ask(self.ctx.clone(), m.lookup.clone());
                self.lookup = Some(tokio::spawn(task));
            }
        }
    }

    /// The live directory reports a new conference: if it may be our meeting, ask soon.
    /// Returns false when no meeting ID is being waited for (the directory path applies).
    pub(super) fn meeting_directory_changed(&mut self, now: Instant) -> bool {
        if !self.meeting_still_wanted() {
            return false;
        }
        if let Some(m) = self.meeting.as_mut() {
            m.poll.directory_changed(now);
        }
        self.start_meeting_lookup(now);
        true
    }

    /// When the next lookup is due (for the call's one timer).
    pub(super) fn meeting_deadline(&self) -> Option<Instant> {
        self.meeting.as_ref().and_then(|m| m.poll.poll_timeout())
    }

    /// Whether a meeting ID is being resolved or waited for (not a conference number).
    pub(super) fn meeting_active(&self) -> bool {
        self.meeting.is_some()
    }

    /// A lookup answered: route, wait, or ask again later.
    pub(super) fn on_meeting_answer(&mut self, now: Instant, answer: MeetingAnswer) {
        self.lookup = None;
        if !self.meeting_still_wanted() {
            return;
        }
        let first = self.flow.state() == FlowState::Resolving;
        let Some(m) = self.meeting.as_mut() else {
            return;
        };
        if first {
            // The PIN's answer (later answers re-check a waiting caller's meeting).
            let label = match &answer {
                MeetingAnswer::Running(_) => "conference",
                MeetingAnswer::NotRunning => "waiting",
                MeetingAnswer::Failed(_) => "unavailable",
            };
            crate::ops::metrics::pin_attempt(label);
        }
        let ok = !matches!(answer, MeetingAnswer::Failed(_));
        let first_failure = m.poll.answered(now, ok);
        match answer {
            MeetingAnswer::Running(found) => {
                let decision = self
                    .settings
                    .router
                    .meeting_target(found.conference, found.server.as_deref());
                match decision {
                    RouteDecision::Conference(_) | RouteDecision::Waiting(_) => {
                        // Known now: the directory (or the dial) takes it from here.
                        self.meeting = None;
                        if !first && matches!(decision, RouteDecision::Conference(_)) {
                            info!(call = self.call_no, "meeting started: joining");
                        }
                        let waits = matches!(decision, RouteDecision::Waiting(_));
                        self.routed(now, decision);
                        if !first && waits {
                            // Still in the waiting room, now for a conference number.
                            self.recheck_waiting(now);
                        }
                    }
                    other if first => {
                        self.meeting = None;
                        self.routed(now, other);
                    }
                    // Running but not routable right now (collision, Event Socket down):
                    // keep holding and asking until max_wait.
                    _ => debug!(
                        call = self.call_no,
                        "the meeting runs but cannot be reached yet; asking again"
                    ),
                }
            }
            MeetingAnswer::NotRunning if first => {
                info!(
                    call = self.call_no,
                    "the mapped meeting is not running yet: caller waits"
                );
                let waiting = WaitingFor::Meeting(m.lookup.clone());
                self.routed(now, RouteDecision::Waiting(waiting));
            }
            MeetingAnswer::NotRunning => {}
            MeetingAnswer::Failed(reason) if first => {
                warn!(
                    call = self.call_no,
                    "meeting lookup failed: {reason}; the caller hears \"unavailable\""
                );
                self.meeting = None;
                self.routed(now, RouteDecision::Unavailable);
            }
            MeetingAnswer::Failed(reason) if first_failure => warn!(
                call = self.call_no,
                "meeting lookup failed while the caller waits: {reason}; asking again"
            ),
            MeetingAnswer::Failed(reason) => {
                debug!(call = self.call_no, "meeting lookup failed again: {reason}")
            }
        }
        self.start_meeting_lookup(now);
    }
}
