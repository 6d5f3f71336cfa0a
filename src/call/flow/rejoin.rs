//! A bridged call whose server leg is lost: the caller hears that the connection was lost and
//! holds while the meeting is dialled again, wherever it runs again, until
//! `routing.rejoin_max`.
//!
//! ```text
//! Bridged ─ServerLost─▶ Rejoining (ConnectionLost, then Hold looping)
//! Rejoining ─Routed(Conference)─▶ ConnectingServer (hold goes on) ─ServerAnswered─▶ Bridged
//! ConnectingServer ─ServerFailed or timeout─▶ Rejoining (until rejoin_max)
//! Rejoining ─rejoin_max─▶ Unavailable ─PromptFinished─▶ Ended (ServerLost)
//! ```

use std::time::Instant;

use crate::call::PromptId;

use super::{CallFlow, FlowAction, State};

impl CallFlow {
    /// The server leg is gone without a BYE.
    pub(super) fn on_server_lost(&mut self, now: Instant) {
        match self.state {
            State::Bridged => {
                let until = now + self.settings.rejoin_max;
                self.rejoin_until = Some(until);
                self.push(FlowAction::HangUpServer);
                self.push(FlowAction::Unbridge);
                self.push(FlowAction::AwaitConference);
                self.play(PromptId::ConnectionLost, State::Rejoining { until });
            }
            // A leg dialled again that is lost before its answer: one more failed try.
            State::ConnectingServer { .. } => self.server_unreachable(now, true),
            _ => {}
        }
    }

    /// The server leg being dialled failed (`cancelled`: we gave up on it). A first dial sends
    /// the caller away with "unavailable"; a dial after a loss is tried again until
    /// `rejoin_max`.
    pub(super) fn server_unreachable(&mut self, now: Instant, cancelled: bool) {
        match self.rejoin_until {
            Some(until) if now < until => {
                self.push(FlowAction::AwaitConference);
                self.state = State::Rejoining { until };
            }
            _ => self.play(PromptId::Unavailable, State::Unavailable { cancelled }),
        }
    }

    /// The meeting runs again while the caller holds: dial it (the hold loop plays on until
    /// the server answers).
    pub(super) fn rejoin(&mut self, now: Instant, target: crate::routing::ConferenceTarget) {
        self.push(FlowAction::DialServer(target));
        let deadline = now + self.settings.server_answer_timeout;
        self.state = State::ConnectingServer { deadline };
    }

    /// Whether the call is being dialled in again after a loss.
    pub(super) fn rejoining(&self) -> bool {
        self.rejoin_until.is_some()
    }

    /// Bridged again: a later loss starts a new `rejoin_max`.
    pub(super) fn rejoined(&mut self) {
        self.rejoin_until = None;
    }
}
