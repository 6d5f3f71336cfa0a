//! Routing's answers in the core: wrong PINs and guessing protection's delay, the waiting
//! room (re-checked whenever the live directory changes), and meeting IDs resolved through
//! the BBB API on the [`MeetingPoll`] schedule.
//!
//! Meeting-ID answers:
//! - running: route to its conference (where the directory sees it, or on its server);
//! - not running, or unknown to the API: the caller waits in the waiting room, and the API is
//!   asked again (every 5 s, and promptly when the live directory reports a new conference)
//!   until it runs or `ivr.max_wait` is over;
//! - the API fails on the first lookup: "unavailable" and goodbye, not "invalid PIN" (the PIN
//!   is right and typing it again would not help); while waiting, a failure just means asking
//!   again later.
//!
//! Log lines name the call only: never the meeting ID, the PIN or the conference number.

use super::{Call, CallAction, MeetingAnswer, Record, Timer};
use crate::call::flow::{FlowInput, FlowState};
use crate::call::meeting_poll::MeetingPoll;
use crate::routing::{Lookup, RouteDecision, WaitingFor};
use crate::store::shared_mappings::MeetingLookup;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// A call's meeting-ID mapping while it is being resolved or waited for.
#[derive(Debug)]
struct MeetingWait {
    /// What to ask the API.
    lookup: MeetingLookup,
    /// When to ask.
    poll: MeetingPoll,
}

/// The call's routing state.
#[derive(Debug, Default)]
pub(super) struct RouteState {
    /// Wrong PINs typed in this call; any, without reaching a meeting, make a failed call.
    pub wrong_pins: u32,
    /// A routing answer held back by guessing protection (its time is `Timer::HeldRoute`).
    held: Option<RouteDecision>,
    /// The meeting a waiting caller waits for (or a caller who lost it).
    pub(super) waiting_for: Option<WaitingFor>,
    /// Whether the driver tells us of directory changes.
    watching: bool,
    /// The meeting ID being resolved or waited for.
    meeting: Option<MeetingWait>,
}

impl RouteState {
    /// When the next meeting lookup is due.
    pub(super) fn meeting_deadline(&self) -> Option<Instant> {
        self.meeting.as_ref().and_then(|m| m.poll.poll_timeout())
    }
}

impl Call {
    /// Routing's answer to [`CallAction::Resolve`]. `answer_delay` is guessing protection's
    /// delay for the caller's source network now (a slow answer costs a guesser more than a
    /// person); it applies to an answer that is ready.
    pub fn handle_lookup(&mut self, now: Instant, lookup: Lookup, answer_delay: Duration) {
        if self.flow.state() != FlowState::Resolving || self.route.held.is_some() {
            return;
        }
        match lookup {
            Lookup::Ready(decision) => self.answer_route(now, decision, answer_delay),
            Lookup::Meeting(m) => self.begin_meeting(now, m),
        }
        self.pump(now);
    }

    /// Gives the flow routing's answer, or holds it back by `delay`. Wrong PINs are counted.
    fn answer_route(&mut self, now: Instant, decision: RouteDecision, delay: Duration) {
        let label = crate::ops::metrics::route_label(&decision);
        self.record(Record::PinAttempt(label));
        if decision == RouteDecision::Invalid {
            self.route.wrong_pins += 1;
            self.actions.push_back(CallAction::RecordFailedPin);
        }
        if delay.is_zero() {
            self.routed(now, decision);
        } else {
            info!(
                call = self.call_no,
                caller = %self.caller_key,
                delay_ms = delay.as_millis() as u64,
                "many wrong PINs lately: answering the PIN slowly"
            );
            self.route.held = Some(decision);
            self.timers.set(Timer::HeldRoute, Some(now + delay));
        }
    }

    /// The held answer is due.
    pub(super) fn release_held_route(&mut self, now: Instant) {
        self.timers.set(Timer::HeldRoute, None);
        if let Some(decision) = self.route.held.take() {
            self.routed(now, decision);
        }
    }

    /// Hands routing's decision to the flow, remembering what a waiting caller waits for.
    fn routed(&mut self, now: Instant, decision: RouteDecision) {
        match &decision {
            RouteDecision::Unavailable => info!(
                call = self.call_no,
                "conference unavailable (on two servers, or its server's Event Socket is down)"
            ),
            RouteDecision::Waiting(w) => self.route.waiting_for = Some(w.clone()),
            _ => {}
        }
        self.flow.handle_input(now, FlowInput::Routed(decision));
    }

    /// The meeting has not started: watch the directory for it.
    pub(super) fn await_conference(&mut self, now: Instant) {
        info!(call = self.call_no, "meeting not started: caller waits");
        self.watch();
        // A conference created between the resolve and the subscription counts (a meeting
        // ID's lookups watched the directory all along).
        if self.route.meeting.is_none() {
            self.recheck_waiting(now);
        }
    }

    pub(super) fn watch(&mut self) {
        if !self.route.watching {
            self.route.watching = true;
            self.actions.push_back(CallAction::WatchDirectory);
        }
    }

    fn unwatch(&mut self) {
        if self.route.watching {
            self.route.watching = false;
            self.actions.push_back(CallAction::UnwatchDirectory);
        }
    }

    /// The live directory changed (a conference may have started).
    pub fn handle_directory_changed(&mut self, now: Instant) {
        if self.route.watching {
            self.recheck_waiting(now);
            self.pump(now);
        }
    }

    /// The live directory is gone (dialin is stopping): nothing more to watch.
    pub fn handle_directory_closed(&mut self) {
        self.route.watching = false;
    }

    /// While the caller waits (or holds after a loss): asks routing again (or the API, for
    /// a meeting ID).
    pub(super) fn recheck_waiting(&mut self, now: Instant) {
        if self.meeting_directory_changed(now) {
            return;
        }
        if !matches!(self.flow.state(), FlowState::Waiting | FlowState::Rejoining) {
            self.unwatch();
            return;
        }
        if let Some(waiting_for) = &self.route.waiting_for {
            self.actions
                .push_back(CallAction::Recheck(waiting_for.clone()));
        }
    }

    /// Routing's answer to [`CallAction::Recheck`].
    pub fn handle_recheck(&mut self, now: Instant, decision: RouteDecision) {
        let rejoining = match self.flow.state() {
            FlowState::Waiting => false,
            FlowState::Rejoining => true,
            _ => return,
        };
        if matches!(decision, RouteDecision::Conference(_)) {
            match rejoining {
                true => info!(call = self.call_no, "the meeting runs: dialling it again"),
                false => info!(call = self.call_no, "meeting started: joining"),
            }
            self.unwatch();
            self.timers.set(Timer::Rejoin, None);
        }
        self.flow.handle_input(now, FlowInput::Routed(decision));
        if self.flow.state() == FlowState::Rejoining && self.timers.get(Timer::Rejoin).is_none() {
            // Not running yet (or not reachable): look again later, whatever the directory says.
            self.timers
                .set(Timer::Rejoin, Some(now + super::REJOIN_RETRY));
        }
        self.pump(now);
    }

    /// A PIN mapped to a BBB meeting ID: ask the API now. The directory is watched from
    /// here on, so a conference created while the first lookup is in flight counts.
    fn begin_meeting(&mut self, now: Instant, lookup: MeetingLookup) {
        self.route.meeting = Some(MeetingWait {
            lookup,
            poll: MeetingPoll::new(now),
        });
        self.watch();
        self.start_meeting_lookup(now);
    }

    /// Whether the caller is still resolving or waiting for a meeting ID; drops the meeting
    /// state once the call has moved on (hung up, max_wait over, joined).
    fn meeting_still_wanted(&mut self) -> bool {
        let wanted = matches!(self.flow.state(), FlowState::Resolving | FlowState::Waiting);
        if !wanted {
            self.route.meeting = None;
        }
        wanted && self.route.meeting.is_some()
    }

    /// Starts the next lookup if one is due and none is in flight.
    pub(super) fn start_meeting_lookup(&mut self, now: Instant) {
        if !self.meeting_still_wanted() {
            return;
        }
        if let Some(m) = self.route.meeting.as_mut() {
            if m.poll.poll_start(now) {
                let lookup = m.lookup.clone();
                self.actions.push_back(CallAction::LookupMeeting(lookup));
            }
        }
    }

    /// The live directory reports a new conference: if it may be our meeting, ask soon.
    /// False when no meeting ID is being waited for (the directory path applies).
    fn meeting_directory_changed(&mut self, now: Instant) -> bool {
        if !self.meeting_still_wanted() {
            return false;
        }
        if let Some(m) = self.route.meeting.as_mut() {
            m.poll.directory_changed(now);
        }
        self.start_meeting_lookup(now);
        true
    }

    /// A lookup answered: route, wait, or ask again later.
    // Over 80 lines: each answer differs for the first lookup (the PIN's answer) and later
    // ones (a waiting caller's re-check), and the table reads best in one match.
    pub fn handle_meeting_answer(&mut self, now: Instant, answer: MeetingAnswer) {
        if !self.meeting_still_wanted() {
            self.pump(now);
            return;
        }
        let first = self.flow.state() == FlowState::Resolving;
        if first {
            // The PIN's answer (later answers re-check a waiting caller's meeting).
            let label = match &answer {
                MeetingAnswer::Running(_) => "conference",
                MeetingAnswer::NotRunning => "waiting",
                MeetingAnswer::Failed(_) => "unavailable",
            };
            self.record(Record::PinAttempt(label));
        }
        let Some(m) = self.route.meeting.as_mut() else {
            return;
        };
        let ok = !matches!(answer, MeetingAnswer::Failed(_));
        let first_failure = m.poll.answered(now, ok);
        match answer {
            MeetingAnswer::Running(decision) => match decision {
                RouteDecision::Conference(_) | RouteDecision::Waiting(_) => {
                    // Known now: the directory (or the dial) takes it from here.
                    self.route.meeting = None;
                    if !first && matches!(decision, RouteDecision::Conference(_)) {
                        info!(call = self.call_no, "meeting started: joining");
                    }
                    let waits = matches!(decision, RouteDecision::Waiting(_));
                    if !waits {
                        self.unwatch();
                    }
                    self.routed(now, decision);
                    if !first && waits {
                        // Still in the waiting room, now for a conference number.
                        self.recheck_waiting(now);
                    }
                }
                other if first => {
                    self.route.meeting = None;
                    self.routed(now, other);
                }
                // Running but not routable right now (collision, Event Socket down): keep
                // holding and asking until max_wait.
                _ => debug!(
                    call = self.call_no,
                    "the meeting runs but cannot be reached yet; asking again"
                ),
            },
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
                self.route.meeting = None;
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
        self.pump(now);
    }
}
