//! The flow's vocabulary toward its driver: what can happen to a call ([`FlowInput`]) and
//! what the flow asks the driver to do ([`FlowAction`]).

use crate::call::PromptId;
use crate::digit::Digit;
use crate::routing::{ConferenceTarget, RouteDecision};
use crate::secret::Pin;

use super::Outcome;

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
    /// The bridged server leg is gone without a BYE (its FreeSWITCH crashed, its port is
    /// closed, its Event Socket is down): the caller holds while the meeting is dialled again.
    ServerLost,
    /// No RTP from the caller for the configured media timeout (the caller's leg is lost).
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
    /// The media relayed to the server leg stops and the voice menu's media (prompts) takes
    /// over: the server leg is lost and will be dialled again.
    Unbridge,
    /// The meeting has not started (or its server was lost): check it again whenever the directory changes (and, for
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
