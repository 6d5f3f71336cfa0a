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
//! - no media in either direction once the caller's leg is up: [`Outcome::MediaTimeout`],
//!   whatever the state; every leg that is up or ringing is hung up or cancelled.
//! - the end of a drain ([`FlowInput::Shutdown`]): callers in the voice menu hear the
//!   "unavailable" prompt and are hung up, bridged and echo calls are hung up at once:
//!   [`Outcome::Shutdown`]. Calls already being sent away keep their outcome.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::call::pin::{PinCollector, PinEvent, PinSettings};
use crate::call::PromptId;
use crate::digit::Digit;
use crate::routing::{ConferenceTarget, RouteDecision};
use crate::secret::Pin;

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
}

/// Where a digit came from; decides whether it must be forwarded to the server by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigitSource {
    /// An RFC 4733 event in the caller's RTP: once bridged it is relayed with the audio.
    Rtp,
    /// A SIP INFO body: once bridged the server only hears it if we send it as RFC 4733.
    Info,
}

/// Everything that can happen to a call, as told by its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowInput {
    /// The trunk leg is up (200 sent, ACK received): start the greeting.
    CallerAnswered,
    /// The caller pressed a key.
    Digit(Digit, DigitSource),
    /// The prompt last asked for has played to its end (not sent for a stopped prompt).
    PromptFinished,
    /// The answer to [`FlowAction::Resolve`].
    Routed(RouteDecision),
    /// The server leg's 200 OK was received and ACKed.
    ServerAnswered,
    /// The server leg was rejected or its transport failed before it was answered.
    ServerFailed,
    /// BYE/CANCEL from the caller, or the trunk leg was lost.
    CallerHungUp,
    /// BYE from the server.
    ServerHungUp,
    /// No RTP in either direction for the configured media timeout.
    MediaTimeout,
    /// Guessing protection blocked this caller: once answered, say goodbye at once. Only
    /// taken before the caller's leg is up.
    Blocked,
    /// The drain deadline has come: end the call now (a short goodbye in the voice menu).
    Shutdown,
}

/// What the flow asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowAction {
    /// Start this prompt, replacing any playing one.
    Play(PromptId),
    /// Barge-in or bridging: stop the prompt now (no [`FlowInput::PromptFinished`] follows).
    StopPrompt,
    /// Ask routing where this PIN leads; answer with [`FlowInput::Routed`].
    Resolve(Pin),
    /// Start the server leg INVITE.
    DialServer(ConferenceTarget),
    /// Give up a server leg that has not been answered yet (CANCEL).
    CancelServer,
    /// Relay media between the legs from now on.
    Bridge,
    /// Connect the caller to the built-in echo.
    StartEcho,
    /// The meeting has not started: check it again whenever the directory changes (and, for
    /// a BBB meeting ID, on the driver's polling schedule) and answer with
    /// [`FlowInput::Routed`].
    AwaitConference,
    /// While bridged: send this digit to the server as RFC 4733 (INFO digits only; RTP digits
    /// are already relayed with the audio).
    SendDigit(Digit),
    /// While bridged: the caller pressed the mute key; toggle their mute in the conference
    /// (over the Event Socket, or by forwarding the key where the server has none).
    ToggleMute(Digit),
    /// BYE the trunk leg.
    HangUpCaller,
    /// BYE the server leg.
    HangUpServer,
    /// The call is over; the driver cleans up and stops. Emitted exactly once.
    Finished(Outcome),
}

/// Why a call ended; see the module doc for which hang-up gives which outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Bridged to a conference, then the caller hung up.
    Bridged,
    /// Connected to the echo test, then it ended.
    Echo,
    /// Too many failed PIN tries.
    InvalidPin,
    /// The conference could not be reached (server failed or did not answer).
    NoConference,
    /// The caller hung up before being bridged.
    CallerHangup,
    /// Bridged, then the server hung up.
    ServerHangup,
    /// No media in either direction.
    MediaTimeout,
    /// The caller was blocked by guessing protection and heard only the goodbye prompt.
    Blocked,
    /// Ended by dialin at the end of a drain (shutdown or restart).
    Shutdown,
}

/// Where the call is; small, `Copy` and safe to log (it carries no PIN or address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// Waiting for the trunk leg to be up.
    Answering,
    /// The welcome prompt is playing.
    Greeting,
    /// Listening for PIN digits.
    CollectingPin,
    /// The "invalid PIN" prompt is playing.
    InvalidPin,
    /// Waiting for routing's answer.
    Resolving,
    /// The server leg is ringing; the "connecting" prompt plays.
    ConnectingServer,
    /// Media is relayed between the caller and the conference.
    Bridged,
    /// The caller talks to the echo test.
    Echo,
    /// The "unavailable" prompt is playing before hanging up.
    Unavailable,
    /// The "goodbye" prompt is playing before hanging up.
    Goodbye,
    /// dialin is shutting down: the "unavailable" prompt plays before hanging up.
    Closing,
    /// The meeting has not started; the caller holds.
    Waiting,
    /// The call is over; every input is ignored.
    Ended,
}

/// The state with the data only that state needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Answering,
    Greeting,
    CollectingPin,
    InvalidPin,
    Resolving,
    ConnectingServer {
        /// When we stop waiting for the server's answer.
        deadline: Instant,
    },
    Bridged,
    Echo {
        /// When the echo test ends.
        until: Instant,
    },
    Unavailable {
        /// We CANCELled a ringing server leg; a 200 crossing the CANCEL must be hung up.
        cancelled: bool,
    },
    Goodbye,
    Closing {
        /// As in `Unavailable`: a ringing server leg was cancelled.
        cancelled: bool,
    },
    Waiting {
        /// When the caller has waited long enough.
        until: Instant,
    },
    Ended,
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
            actions: VecDeque::with_capacity(4),
        }
    }

    /// Where the call is, for logs and metrics.
    pub fn state(&self) -> FlowState {
        match self.state {
            State::Answering => FlowState::Answering,
            State::Greeting => FlowState::Greeting,
            State::CollectingPin => FlowState::CollectingPin,
            State::InvalidPin => FlowState::InvalidPin,
            State::Resolving => FlowState::Resolving,
            State::ConnectingServer { .. } => FlowState::ConnectingServer,
            State::Bridged => FlowState::Bridged,
            State::Echo { .. } => FlowState::Echo,
            State::Unavailable { .. } => FlowState::Unavailable,
            State::Goodbye => FlowState::Goodbye,
            State::Closing { .. } => FlowState::Closing,
            State::Waiting { .. } => FlowState::Waiting,
            State::Ended => FlowState::Ended,
        }
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
                    self.play(
                        PromptId::Unavailable,
                        State::Unavailable { cancelled: false },
                    );
                }
            }
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
                self.play(
                    PromptId::Unavailable,
                    State::Unavailable { cancelled: true },
                );
            }
            State::Echo { until } if now >= until => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Echo);
            }
            State::Waiting { until } if now >= until => {
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
            State::Waiting { until } => Some(until),
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

    fn on_digit(&mut self, now: Instant, digit: Digit, source: DigitSource) {
        match self.state {
            // Letters are ignored entirely, so they do not cut the prompt either.
            State::Greeting | State::InvalidPin if !matches!(digit, Digit::Letter(_)) => {
                // Barge-in: the prompt is stopped, so no PromptFinished will arm the collector.
                self.push(FlowAction::StopPrompt);
                self.state = State::CollectingPin;
                self.pin.arm(now);
                self.collect(now, digit);
            }
            State::CollectingPin => self.collect(now, digit),
            State::Bridged if Some(digit) == self.settings.mute_key => {
                self.push(FlowAction::ToggleMute(digit))
            }
            State::Bridged if source == DigitSource::Info => {
                self.push(FlowAction::SendDigit(digit))
            }
            _ => {}
        }
    }

    fn collect(&mut self, now: Instant, digit: Digit) {
        if let Some(event) = self.pin.handle_digit(now, digit) {
            self.on_pin_event(event);
        }
    }

    fn on_pin_event(&mut self, event: PinEvent) {
        match event {
            PinEvent::Entered(pin) => {
                self.push(FlowAction::Resolve(pin));
                self.state = State::Resolving;
            }
            PinEvent::TooShort => self.fail_attempt(PromptId::InvalidPin),
            PinEvent::NoInput => self.fail_attempt(PromptId::Welcome),
        }
    }

    /// Counts a failed try; re-prompts with `retry` or, when tries are used up, says goodbye.
    fn fail_attempt(&mut self, retry: PromptId) {
        self.failures = self.failures.saturating_add(1);
        self.pin.reset();
        if self.failures >= self.settings.attempts {
            self.play(PromptId::Goodbye, State::Goodbye);
        } else if retry == PromptId::Welcome {
            self.play(PromptId::Welcome, State::Greeting);
        } else {
            self.play(PromptId::InvalidPin, State::InvalidPin);
        }
    }

    fn on_prompt_finished(&mut self, now: Instant) {
        match self.state {
            State::Greeting | State::InvalidPin => {
                self.pin.arm(now);
                self.state = State::CollectingPin;
            }
            State::Goodbye => {
                self.push(FlowAction::HangUpCaller);
                self.finish(self.goodbye_outcome());
            }
            State::Unavailable { .. } => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::NoConference);
            }
            State::Closing { .. } => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Shutdown);
            }
            // The "not started" prompt leads into the hold loop, which repeats.
            State::Waiting { .. } => self.push(FlowAction::Play(PromptId::Hold)),
            // The "connecting" prompt ending changes nothing: we still wait for the server.
            _ => {}
        }
    }

    fn on_routed(&mut self, now: Instant, decision: RouteDecision) {
        if let State::Waiting { .. } = self.state {
            // Only a running conference ends the wait; anything else (still not started, a
            // server blip) keeps the caller holding until max_wait.
            if let RouteDecision::Conference(target) = decision {
                self.push(FlowAction::StopPrompt);
                self.state = State::Resolving;
                self.on_routed(now, RouteDecision::Conference(target));
            }
            return;
        }
        if self.state != State::Resolving {
            return;
        }
        match decision {
            RouteDecision::Conference(target) => {
                self.push(FlowAction::Play(PromptId::Connecting));
                self.push(FlowAction::DialServer(target));
                let deadline = now + self.settings.server_answer_timeout;
                self.state = State::ConnectingServer { deadline };
            }
            RouteDecision::Echo => {
                self.push(FlowAction::StopPrompt);
                self.push(FlowAction::StartEcho);
                self.state = State::Echo {
                    until: now + self.settings.echo_max,
                };
            }
            RouteDecision::Invalid => self.fail_attempt(PromptId::InvalidPin),
            RouteDecision::Unavailable => self.play(
                PromptId::Unavailable,
                State::Unavailable { cancelled: false },
            ),
            RouteDecision::Waiting(_) => {
                self.push(FlowAction::AwaitConference);
                self.play(
                    PromptId::NotStarted,
                    State::Waiting {
                        until: now + self.settings.max_wait,
                    },
                );
            }
        }
    }

    fn on_server_answered(&mut self) {
        match self.state {
            State::ConnectingServer { .. } => {
                self.push(FlowAction::StopPrompt);
                self.push(FlowAction::Bridge);
                self.state = State::Bridged;
            }
            // A 200 that crossed our CANCEL: that leg is up now and must not linger.
            State::Unavailable { cancelled: true } => {
                self.push(FlowAction::HangUpServer);
                self.state = State::Unavailable { cancelled: false };
            }
            State::Closing { cancelled: true } => {
                self.push(FlowAction::HangUpServer);
                self.state = State::Closing { cancelled: false };
            }
            _ => {}
        }
    }

    fn on_caller_hung_up(&mut self) {
        let outcome = match self.state {
            State::ConnectingServer { .. } => {
                self.push(FlowAction::CancelServer);
                Outcome::CallerHangup
            }
            State::Bridged => {
                self.push(FlowAction::HangUpServer);
                Outcome::Bridged
            }
            State::Echo { .. } => Outcome::Echo,
            State::Unavailable { .. } => Outcome::NoConference,
            State::Goodbye => self.goodbye_outcome(),
            State::Closing { .. } => Outcome::Shutdown,
            State::Answering
            | State::Greeting
            | State::CollectingPin
            | State::InvalidPin
            | State::Resolving
            | State::Waiting { .. } => Outcome::CallerHangup,
            State::Ended => return,
        };
        self.finish(outcome);
    }

    /// Why a call that heard the goodbye prompt ended.
    fn goodbye_outcome(&self) -> Outcome {
        if self.blocked {
            Outcome::Blocked
        } else {
            Outcome::InvalidPin
        }
    }

    fn on_media_timeout(&mut self) {
        match self.state {
            // No media is expected before the caller's leg is up.
            State::Answering | State::Ended => return,
            State::ConnectingServer { .. } => {
                self.push(FlowAction::HangUpCaller);
                self.push(FlowAction::CancelServer);
            }
            State::Bridged => {
                self.push(FlowAction::HangUpCaller);
                self.push(FlowAction::HangUpServer);
            }
            _ => self.push(FlowAction::HangUpCaller),
        }
        self.finish(Outcome::MediaTimeout);
    }

    fn on_shutdown(&mut self) {
        match self.state {
            // The 200 is out but not confirmed: nothing to say yet, just hang up.
            State::Answering => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Shutdown);
            }
            State::Greeting
            | State::CollectingPin
            | State::InvalidPin
            | State::Resolving
            | State::Waiting { .. } => {
                self.pin.reset();
                self.play(PromptId::Unavailable, State::Closing { cancelled: false });
            }
            State::ConnectingServer { .. } => {
                self.push(FlowAction::CancelServer);
                self.play(PromptId::Unavailable, State::Closing { cancelled: true });
            }
            State::Bridged => {
                self.push(FlowAction::HangUpCaller);
                self.push(FlowAction::HangUpServer);
                self.finish(Outcome::Shutdown);
            }
            State::Echo { .. } => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Shutdown);
            }
            // Already being sent away, or over.
            State::Unavailable { .. } | State::Goodbye | State::Closing { .. } | State::Ended => {}
        }
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
