//! Routing's answers (conference, echo, invalid, unavailable, waiting for the meeting) and
//! the server leg being answered.

use std::time::Instant;

use crate::call::PromptId;
use crate::routing::RouteDecision;

use super::{CallFlow, FlowAction, State};

impl CallFlow {
    pub(super) fn on_routed(&mut self, now: Instant, decision: RouteDecision) {
        if let State::Rejoining { .. } = self.state {
            // As in the waiting room: only a running conference counts.
            if let RouteDecision::Conference(target) = decision {
                self.rejoin(now, target);
            }
            return;
        }
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

    pub(super) fn on_server_answered(&mut self) {
        match self.state {
            State::ConnectingServer { .. } => {
                self.push(FlowAction::StopPrompt);
                self.push(FlowAction::Bridge);
                self.state = State::Bridged;
                self.rejoined();
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
            // A dial again after a loss that we gave up on answered after all: the next try
            // dials anew, this leg must not linger in the meeting.
            State::Rejoining { .. } => self.push(FlowAction::HangUpServer),
            _ => {}
        }
    }
}
