//! The voice menu: digits (barge-in, PIN entry, keys forwarded or muting once bridged), PIN
//! collector events, failed tries, and what a prompt ending leads to.

use std::time::Instant;

use crate::call::pin::PinEvent;
use crate::call::PromptId;
use crate::digit::Digit;

use super::{CallFlow, DigitSource, FlowAction, Outcome, State};

impl CallFlow {
    pub(super) fn on_digit(&mut self, now: Instant, digit: Digit, source: DigitSource) {
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

    pub(super) fn collect(&mut self, now: Instant, digit: Digit) {
        if let Some(event) = self.pin.handle_digit(now, digit) {
            self.on_pin_event(event);
        }
    }

    pub(super) fn on_pin_event(&mut self, event: PinEvent) {
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
    pub(super) fn fail_attempt(&mut self, retry: PromptId) {
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

    pub(super) fn on_prompt_finished(&mut self, now: Instant) {
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
                self.finish(self.lost_outcome(Outcome::NoConference));
            }
            State::Closing { .. } => {
                self.push(FlowAction::HangUpCaller);
                self.finish(Outcome::Shutdown);
            }
            // The "not started" prompt leads into the hold loop, which repeats.
            State::Waiting { .. } | State::Rejoining { .. } => {
                self.push(FlowAction::Play(PromptId::Hold))
            }
            // Dialling the meeting again: the caller keeps holding.
            State::ConnectingServer { .. } if self.rejoining() => {
                self.push(FlowAction::Play(PromptId::Hold))
            }
            // The "connecting" prompt ending changes nothing: we still wait for the server.
            _ => {}
        }
    }
}
