//! How a call ends: the [`Outcome`] and the inputs that end a call from any state (the caller
//! hanging up, media timing out, the drain's shutdown).

use crate::call::PromptId;

use super::{CallFlow, FlowAction, State};

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
    /// No media from the caller for `media.timeout` (its phone or provider is gone), or the
    /// call's relay failed.
    MediaTimeout,
    /// The caller was blocked by guessing protection and heard only the goodbye prompt.
    Blocked,
    /// Ended by dialin at the end of a drain (shutdown or restart).
    Shutdown,
    /// Bridged, then the server leg was lost, and the call ended before it could be
    /// dialled again (the caller hung up while holding, or `routing.rejoin_max` passed).
    ServerLost,
    /// The caller's answer to our offer (in the ACK of an INVITE without SDP) had no codec
    /// dialin speaks. Ended by the call core, never by the flow.
    RejectedCodec,
}

impl Outcome {
    /// The `outcome` label of `/metrics` (`dialin_calls_total{outcome}`): a fixed word, one
    /// of `ops::metrics::OUTCOMES`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Bridged => "bridged",
            Outcome::Echo => "echo",
            Outcome::InvalidPin => "invalid_pin",
            Outcome::NoConference => "no_conference",
            Outcome::CallerHangup => "caller_hangup",
            Outcome::ServerHangup => "server_hangup",
            Outcome::MediaTimeout => "timeout",
            Outcome::Shutdown => "shutdown",
            Outcome::Blocked => "blocked",
            Outcome::RejectedCodec => "rejected_codec",
            Outcome::ServerLost => "server_lost",
        }
    }
}

impl CallFlow {
    pub(super) fn on_caller_hung_up(&mut self) {
        let outcome = match self.state {
            State::ConnectingServer { .. } => {
                self.push(FlowAction::CancelServer);
                self.lost_outcome(Outcome::CallerHangup)
            }
            State::Bridged => {
                self.push(FlowAction::HangUpServer);
                Outcome::Bridged
            }
            State::Echo { .. } => Outcome::Echo,
            State::Unavailable { .. } => self.lost_outcome(Outcome::NoConference),
            State::Goodbye => self.goodbye_outcome(),
            State::Closing { .. } => Outcome::Shutdown,
            State::Answering
            | State::Greeting
            | State::CollectingPin
            | State::InvalidPin
            | State::Resolving
            | State::Waiting { .. } => Outcome::CallerHangup,
            State::Rejoining { .. } => Outcome::ServerLost,
            State::Ended => return,
        };
        self.finish(outcome);
    }

    /// `otherwise`, unless the call lost its server and was being dialled again.
    pub(super) fn lost_outcome(&self, otherwise: Outcome) -> Outcome {
        if self.rejoin_until.is_some() {
            Outcome::ServerLost
        } else {
            otherwise
        }
    }

    /// Why a call that heard the goodbye prompt ended.
    pub(super) fn goodbye_outcome(&self) -> Outcome {
        if self.blocked {
            Outcome::Blocked
        } else {
            Outcome::InvalidPin
        }
    }

    pub(super) fn on_media_timeout(&mut self) {
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

    pub(super) fn on_shutdown(&mut self) {
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
            | State::Waiting { .. }
            | State::Rejoining { .. } => {
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
