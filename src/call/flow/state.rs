//! Where a call is: the public, loggable [`FlowState`] and the private [`State`] that carries
//! each state's deadline or flag.

use std::time::Instant;

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
    /// The server leg was lost while bridged: the caller holds while the meeting is dialled
    /// again (as soon as it runs again, here or on another server).
    Rejoining,
    /// The call is over; every input is ignored.
    Ended,
}

impl FlowState {
    /// The `state` label of `/metrics` (`dialin_calls_active{state}`): a fixed word, one of
    /// `ops::metrics::STATES`.
    pub fn label(self) -> &'static str {
        match self {
            FlowState::Answering => "answering",
            FlowState::Greeting => "greeting",
            FlowState::CollectingPin => "collecting_pin",
            FlowState::InvalidPin => "invalid_pin",
            FlowState::Resolving => "resolving",
            FlowState::ConnectingServer => "connecting_server",
            FlowState::Bridged => "bridged",
            FlowState::Echo => "echo",
            FlowState::Unavailable => "unavailable",
            FlowState::Goodbye => "goodbye",
            FlowState::Closing => "closing",
            FlowState::Waiting => "waiting",
            FlowState::Rejoining => "rejoining",
            FlowState::Ended => "ended",
        }
    }
}

/// The state with the data only that state needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
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
    Rejoining {
        /// When dialin gives up dialling the meeting again (`routing.rejoin_max`).
        until: Instant,
    },
    Ended,
}

impl State {
    /// The loggable name of this state, without its data.
    pub(super) fn public(self) -> FlowState {
        match self {
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
            State::Rejoining { .. } => FlowState::Rejoining,
            State::Ended => FlowState::Ended,
        }
    }
}
