//! The per-call state machine: greeting, PIN entry, routing, dialling the BBB server, bridging,
//! and every way a call can end.
//!
//! Sans-IO, in the str0m/quinn-proto style: the call's driver task feeds [`FlowInput`]s with the
//! current time to [`CallFlow::handle_input`], and after every input drains
//! [`CallFlow::poll_action`] until it returns `None`, then sleeps until
//! [`CallFlow::poll_timeout`] (or the next input) and calls [`CallFlow::handle_timeout`]. The
//! flow reads no clock, touches no socket and never panics on an input that makes no sense in
//! its state: such inputs are ignored.
//!
//! ```text
//! Answering ─CallerAnswered─▶ Greeting ─PromptFinished or a key (barge-in)─▶ CollectingPin
//! CollectingPin ─PIN─▶ Resolving ─Routed(Conference)─▶ ConnectingServer ─ServerAnswered─▶ Bridged
//!                                ─Routed(Echo)──────▶ Echo
//! CollectingPin ─TooShort─▶ InvalidPin ─PromptFinished or a key─▶ CollectingPin
//! CollectingPin ─NoInput──▶ Greeting (Welcome again)
//! Resolving ─Routed(Invalid)─▶ InvalidPin
//! Resolving ─Routed(Unavailable)─▶ Unavailable
//! Resolving ─Routed(Waiting)─▶ Waiting (NotStarted, then Hold looping) ─Routed(Conference)─▶ ConnectingServer
//! Waiting ─max_wait─▶ Unavailable
//! (any failed try, when tries are used up) ─▶ Goodbye ─PromptFinished─▶ Ended
//! ConnectingServer ─ServerFailed or timeout─▶ Unavailable ─PromptFinished─▶ Ended
//! (voice menu or connecting) ─Shutdown─▶ Closing ─PromptFinished─▶ Ended
//! Bridged ─ServerLost─▶ Rejoining (ConnectionLost, then Hold) ─Routed(Conference)─▶ ConnectingServer
//! Rejoining ─rejoin_max─▶ Unavailable   (see `rejoin` for the rest)
//! ```
//! Every state ends in `Ended` on hang-up or media timeout, emitting [`FlowAction::Finished`]
//! exactly once. States that wait for the caller or the server have a deadline (PIN timers,
//! server answer timer); prompts ending and routing answers are the driver's to deliver.
//!
//! # Outcomes
//! [`Outcome`] says why the call ended, for metrics and the log:
//! - the caller hangs up before being bridged (greeting, PIN entry, resolving, connecting):
//!   [`Outcome::CallerHangup`];
//! - a bridged call ended by the caller: [`Outcome::Bridged`] (the normal end); ended by the
//!   server (meeting over, kicked): [`Outcome::ServerHangup`];
//! - an echo test the caller hangs up: [`Outcome::Echo`];
//! - once the call is already being sent away (Goodbye or Unavailable prompt), the outcome
//!   stays [`Outcome::InvalidPin`] / [`Outcome::NoConference`] even if the caller hangs up
//!   before the prompt ends: the reason the call failed does not change;
//! - no media from the caller once its leg is up: [`Outcome::MediaTimeout`],
//!   whatever the state; every leg that is up or ringing is hung up or cancelled;
//! - a call that lost its server and ended before it was bridged again (hung up while holding,
//!   or `rejoin_max` over): [`Outcome::ServerLost`].
//! - the end of a drain ([`FlowInput::Shutdown`]): callers in the voice menu hear the
//!   "unavailable" prompt and are hung up, bridged and echo calls are hung up at once:
//!   [`Outcome::Shutdown`]. Calls already being sent away keep their outcome.
//!
//! # Files
//! This file holds the machine and its run loop; its parts are split by job: `state` (the
//! states), `io` (inputs and actions), `menu` (digits, PIN entry, prompts ending), `routed`
//! (routing's answers, the server leg answering), `rejoin` (a lost server leg dialled again)
//! and `ending` (outcomes, hang-ups, shutdown).

mod ending;
mod io;
mod menu;
mod rejoin;
mod routed;
mod state;

pub use ending::Outcome;
pub use io::{DigitSource, FlowAction, FlowInput};
pub use state::FlowState;
use state::State;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::call::pin::{PinCollector, PinSettings};
use crate::call::PromptId;
use crate::digit::Digit;

/// The call flow's knobs; built from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSettings {
    /// How PIN entry is timed and bounded.
    pub pin: PinSettings,
    /// How many failed PIN tries (wrong, too short, or nothing typed) end the call; 0 acts as 1.
    pub attempts: u32,
    /// How long the server leg may ring before we give up on it (10 s by default).
    pub server_answer_timeout: Duration,
    /// How long the echo test runs before dialin hangs up (a diagnostic, not an open line).
    pub echo_max: Duration,
    /// How long a caller may wait for a meeting that has not started (`ivr.max_wait`).
    pub max_wait: Duration,
    /// The mute key (`ivr.mute_key` in `esl` mode): once bridged it asks for
    /// [`FlowAction::ToggleMute`] instead of being forwarded.
    pub mute_key: Option<Digit>,
    /// How long a caller whose server leg was lost holds while dialin dials the meeting
    /// again (`routing.rejoin_max`), before "unavailable" and goodbye.
    pub rejoin_max: Duration,
}
/// One call's state machine; see the module doc for the run loop and the outcomes.
#[derive(Debug)]
pub struct CallFlow {
    /// Timeouts and the number of PIN tries.
    settings: FlowSettings,
    /// Where the call is.
    state: State,
    /// Collects the PIN; only fed while greeting, collecting or re-prompting.
    pin: PinCollector,
    /// Failed PIN tries so far; `settings.attempts` of them end the call.
    failures: u32,
    /// The caller is blocked: goodbye instead of welcome, [`Outcome::Blocked`] at the end.
    blocked: bool,
    /// Set while the call lost its server and is being dialled in again: when dialin gives up.
    rejoin_until: Option<Instant>,
    /// Actions not yet taken by the driver; a handful per input at most.
    actions: VecDeque<FlowAction>,
}

impl CallFlow {
    /// A call whose trunk leg is being answered.
    pub fn new(settings: FlowSettings) -> CallFlow {
        CallFlow {
            settings,
            state: State::Answering,
            pin: PinCollector::new(settings.pin),
            failures: 0,
            blocked: false,
            rejoin_until: None,
            actions: VecDeque::with_capacity(4),
        }
    }

    /// Where the call is, for logs and metrics.
    pub fn state(&self) -> FlowState {
        self.state.public()
    }

    /// Takes one input at time `now`; then drain [`CallFlow::poll_action`].
    pub fn handle_input(&mut self, now: Instant, input: FlowInput) {
        if self.state == State::Ended {
            return;
        }
        match input {
            FlowInput::CallerAnswered => {
                if self.state == State::Answering && self.blocked {
                    self.play(PromptId::Goodbye, State::Goodbye);
                } else if self.state == State::Answering {
                    self.play(PromptId::Welcome, State::Greeting);
                }
            }
            FlowInput::Blocked => {
                if self.state == State::Answering {
                    self.blocked = true;
                }
            }
            FlowInput::Digit(digit, source) => self.on_digit(now, digit, source),
            FlowInput::PromptFinished => self.on_prompt_finished(now),
            FlowInput::Routed(decision) => self.on_routed(now, decision),
            FlowInput::ServerAnswered => self.on_server_answered(),
            FlowInput::ServerFailed => {
                if let State::ConnectingServer { .. } = self.state {
                    self.server_unreachable(now, false);
                }
            }
            FlowInput::ServerLost => self.on_server_lost(now),
            FlowInput::CallerHungUp => self.on_caller_hung_up(),
            FlowInput::ServerHungUp => {
                if self.state == State::Bridged {
                    self.push(FlowAction::HangUpCaller);
                    self.finish(Outcome::ServerHangup);
                }
            }
            FlowInput::MediaTimeout => self.on_media_timeout(),
            FlowInput::Shutdown => self.on_shutdown(),
        }
    }

    /// Fires whatever deadline is due at `now`; early or spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::CollectingPin => {
                if let Some(event) = self.pin.handle_timeout(now) {
                    self.on_pin_event(event);
                }
            }
            State::ConnectingServer { deadline } if now >= deadline => {
                self.push(FlowAction::CancelServer);
                self.server_unreachable(now, true);
            }
            State::Echo { until } if now >= until => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Echo);
            }
            State::Waiting { until } | State::Rejoining { until } if now >= until => {
                self.play(
                    PromptId::Unavailable,
                    State::Unavailable { cancelled: false },
                );
            }
            _ => {}
        }
    }

    /// The next action for the driver, oldest first; `None` once all are taken.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<FlowAction> {
        self.actions.pop_front()
    }

    /// When [`CallFlow::handle_timeout`] must be called next, if anything is timed now.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::CollectingPin => self.pin.poll_timeout(),
            State::ConnectingServer { deadline } => Some(deadline),
            State::Echo { until } => Some(until),
            State::Waiting { until } | State::Rejoining { until } => Some(until),
            _ => None,
        }
    }

    fn push(&mut self, action: FlowAction) {
        self.actions.push_back(action);
    }

    fn play(&mut self, prompt: PromptId, next: State) {
        self.push(FlowAction::Play(prompt));
        self.state = next;
    }

    fn finish(&mut self, outcome: Outcome) {
        self.push(FlowAction::Finished(outcome));
        self.state = State::Ended;
        self.pin.reset();
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
