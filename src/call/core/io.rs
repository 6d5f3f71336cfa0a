//! The call core's vocabulary toward its driver: what the driver tells it (events of each
//! leg, of the media, of routing) and what it asks the driver to do ([`CallAction`]).
//!
//! Everything here is plain data, already parsed: no rsipstack transaction, no header lookup
//! by string. In-dialog requests carry a [`RequestId`] the driver chose, so the core can name
//! the request its answer is for without holding the transaction.

use crate::call::flow::Outcome;
use crate::call::PromptId;
use crate::digit::Digit;
use crate::media::call_media::Leg;
use crate::media::g711::Law;
use crate::media::srtp::INLINE_KEY_LEN;
use crate::routing::{ConferenceTarget, RouteDecision, WaitingFor};
use crate::secret::Pin;
use crate::sip::session_timer::SessionTimer;
use crate::store::shared_mappings::MeetingLookup;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The driver's name for an in-dialog request it holds (to answer it later): any number that
/// is unique among the call's open requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// Which leg of the call something is about.
pub use crate::media::Side;

/// An in-dialog request of either leg, parsed by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InDialog {
    /// SIP INFO: the digit its DTMF body carries, if it is one; `empty` when it had no body.
    Info {
        /// The key the body names (`application/dtmf-relay` or `application/dtmf`).
        digit: Option<Digit>,
        /// Whether the body was empty (a keep-alive some providers send).
        empty: bool,
    },
    /// A re-INVITE (`update: false`) or UPDATE (`update: true`); `body` is its SDP offer,
    /// empty for a refresh without SDP.
    Offer {
        /// UPDATE rather than re-INVITE (a bodiless UPDATE is answered without a body).
        update: bool,
        /// The SDP offer; empty when none came.
        body: Vec<u8>,
    },
    /// OPTIONS inside the dialog (a keep-alive).
    Options,
    /// NOTIFY, REFER, MESSAGE, PUBLISH: nothing dialin does.
    Unsupported,
}

/// What happened on the caller's leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerEvent {
    /// The ACK to our 200 came; `body` is its SDP (the answer to our offer, for a call that
    /// came without one).
    Acked {
        /// The ACK's body.
        body: Vec<u8>,
    },
    /// BYE or CANCEL from the caller, or its dialog was lost.
    HungUp,
    /// A request inside the caller's dialog.
    Request(RequestId, InDialog),
    /// An in-dialog request we sent the caller ([`CallAction::ProbeCaller`]'s OPTIONS, or a
    /// session refresh) was answered (`alive`), or got no answer, 408 or 481 (not `alive`:
    /// the phone has forgotten the call or is gone).
    Reached {
        /// Whether the caller's phone still holds the dialog.
        alive: bool,
    },
}

/// What happened on the server's leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// The INVITE went out from this local RTP port.
    Dialled {
        /// The server leg's RTP port (for answering its re-INVITEs).
        port: u16,
    },
    /// The INVITE could not be sent at all, or its transaction failed (no final response).
    Failed,
    /// A final response other than 2xx.
    Refused,
    /// A 2xx with this SDP answer.
    Answered {
        /// The answer's SDP.
        body: Vec<u8>,
    },
    /// BYE from the server, or its dialog was lost.
    HungUp,
    /// A request inside the server's dialog.
    Request(RequestId, InDialog),
    /// Our OPTIONS in the server's dialog ([`CallAction::ProbeServer`]) was answered
    /// (`alive`), or got no answer, 408 or 481 (not `alive`).
    Reached {
        /// Whether the server still holds the leg.
        alive: bool,
    },
}

/// What the call's media path tells the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key decoded from the caller's RTP (RFC 4733).
    Digit(Digit),
    /// The prompt last asked for has played to its end.
    PromptFinished,
    /// Relaying the call's packets failed (a bug): the call must end.
    Failed,
    /// The server leg's RTP port refused our packets (ICMP port unreachable).
    ServerUnreachable,
}

/// When the media path last received RTP from each leg: the core's silence checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxTimes {
    /// From the caller.
    pub caller: Instant,
    /// From the server (or when it was bridged, before its first packet).
    pub server: Instant,
}

/// A meeting-ID lookup's answer, as the driver got it from the BBB API and routing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeetingAnswer {
    /// The meeting runs; routing's decision for its conference.
    Running(RouteDecision),
    /// The API does not know the meeting, or it has not started.
    NotRunning,
    /// The API could not answer (the reason holds no meeting ID).
    Failed(String),
}

/// How the core answers an in-dialog request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// 200 OK.
    Ok,
    /// 488: an offer without our codec (nothing changes).
    NotAcceptableHere,
    /// 415: an INFO body that is no DTMF.
    UnsupportedMediaType,
    /// 405: a request dialin has no use for.
    MethodNotAllowed,
}

/// A measurement for metrics; the driver records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A set-up phase took this long (`caller_answer`, `server_answer`).
    SetupLatency(&'static str, Duration),
    /// A PIN got this answer (`route_label`).
    PinAttempt(&'static str),
    /// The call was bridged to a conference.
    Bridged,
    /// The call started the echo test.
    EchoTest,
    /// The bridged server leg was lost, for this reason (a `LOSS_REASONS` label).
    ServerLost(&'static str),
    /// The call was bridged again after a loss.
    Rejoined,
}

/// What the core asks its driver to do, in order.
#[derive(Debug)]
pub enum CallAction {
    /// The caller's media is known: start the media path with this caller leg.
    StartMedia(Leg),
    /// Start this prompt, replacing any playing one.
    Play(PromptId),
    /// Stop the prompt now.
    StopPrompt,
    /// Ask routing where this PIN leads; answer with [`super::Call::handle_lookup`].
    Resolve(Pin),
    /// Ask the BBB API once for this meeting; answer with
    /// [`super::Call::handle_meeting_answer`].
    LookupMeeting(MeetingLookup),
    /// Tell the core of every change of the live directory
    /// ([`super::Call::handle_directory_changed`]).
    WatchDirectory,
    /// Stop telling it.
    UnwatchDirectory,
    /// Ask routing again for a waiting caller's meeting; answer with
    /// [`super::Call::handle_recheck`].
    Recheck(WaitingFor),
    /// Number the caller in the target conference (`Phone N`); answer with
    /// [`super::Call::handle_numbered`].
    NumberCaller(ConferenceTarget),
    /// Send the server leg's INVITE: the target, the caller's number in it, and the codec
    /// to offer.
    DialServer {
        /// Where to.
        target: ConferenceTarget,
        /// The caller's number in the conference.
        seq: u64,
        /// The caller's law (no transcoding).
        law: Law,
        /// The telephone-event payload type to offer.
        telephone_event_pt: u8,
    },
    /// Give up the ringing server leg (CANCEL), or the numbering before it.
    CancelServer,
    /// BYE the server leg.
    HangUpServer,
    /// Relay media between the legs from now on; `mute_key` is kept from the server.
    Bridge {
        /// The answered server leg.
        leg: Leg,
        /// The key the caller mutes with (handled by [`CallAction::ToggleMute`]).
        mute_key: Option<Digit>,
    },
    /// The server leg is lost: stop relaying to it, give the caller the voice menu's media
    /// (prompts) again, and forget the leg (its dialog and RTP port); it will be dialled anew.
    Unbridge,
    /// Connect the caller to the built-in echo.
    StartEcho,
    /// The call left the voice menu (bridged or echo): give up its IVR slot.
    LeaveIvr,
    /// Send this digit to the server as RFC 4733.
    SendDigit(Digit),
    /// Toggle the caller's mute in the conference (Event Socket), or forward `Digit`.
    ToggleMute(Digit),
    /// Mute (`true`) or unmute the caller's member in the conference through the Event Socket
    /// (hold, rejoin): a state, not a toggle, so a moderator's mute is never undone. Nothing
    /// where the server has no Event Socket or our member is not known.
    SetMute(bool),
    /// Send the 200 an early-media call still owes: `body` (the 183's SDP again), with the
    /// session timer's headers.
    AnswerCaller {
        /// The SDP answer.
        body: Vec<u8>,
        /// The session timer, started by this 200.
        session: Option<SessionTimer>,
    },
    /// End an early-media call that was never answered: 480.
    RejectCaller,
    /// BYE the caller's leg.
    HangUpCaller,
    /// Ask the server whether it still holds the bridged leg: an in-dialog OPTIONS, where its
    /// silence cannot tell (`media.server_silence = "off"`); answer with
    /// [`ServerEvent::Reached`].
    ProbeServer,
    /// Ask the caller's phone whether it still holds the call: an in-dialog OPTIONS, for a
    /// caller on hold (who sends no RTP to judge by); answer with [`CallerEvent::Reached`].
    ProbeCaller,
    /// Answer an in-dialog request.
    Reply {
        /// Which request.
        request: RequestId,
        /// Its status.
        status: ReplyStatus,
        /// The session timer whose headers a caller's 2xx carries.
        session: Option<SessionTimer>,
        /// The SDP body, if any.
        sdp: Option<Vec<u8>>,
    },
    /// A re-INVITE moved a leg's peer or held it: update the relay.
    UpdateLeg {
        /// Which leg.
        side: Side,
        /// The peer's new RTP address.
        remote: SocketAddr,
        /// Whether we send to it (false: held).
        sending: bool,
    },
    /// The caller's re-INVITE brought a new SRTP key: decrypt with it from now on.
    Rekey([u8; INLINE_KEY_LEN]),
    /// Refresh the caller's session (RFC 4028): a re-INVITE with our SDP.
    RefreshSession {
        /// The session timer (its `Session-Expires`).
        session: SessionTimer,
        /// Our current SDP toward the caller.
        sdp: Vec<u8>,
    },
    /// A wrong PIN: count it for the caller's source network (guessing protection).
    RecordFailedPin,
    /// A measurement for metrics.
    Record(Record),
    /// The call is over: report it (`failed`: wrong PINs without reaching a meeting) and
    /// clean up. Emitted exactly once, last.
    Finished {
        /// Why it ended.
        outcome: Outcome,
        /// Whether guessing protection counts it as a failed call.
        failed: bool,
    },
}

/// Shows the codec only: a leg's peer address is the caller's IP on the caller leg.
impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let codec = self.codec();
        f.debug_struct("Leg")
            .field("law", &codec.law)
            .field("pt", &codec.pt)
            .finish_non_exhaustive()
    }
}
