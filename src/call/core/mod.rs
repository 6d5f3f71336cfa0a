//! The call core: one pure state machine per call that owns every decision about it.
//!
//! It holds the call flow ([`CallFlow`]: greeting, PIN entry, routing's answers, bridging,
//! every way a call ends) and everything around it that is policy: the caller's ACK and the
//! media timeout, the session timer (RFC 4028), both legs' SDP state (answers to re-INVITEs,
//! hold, late offer, early media), wrong PINs and guessing protection's delay, the waiting
//! room and its meeting polls, the server leg's answer, and the drain.
//!
//! # Run loop contract
//! Sans-IO, like str0m's `Rtc` and quinn-proto's `Connection`. The driver (`call::driver`)
//! owns the sockets, dialogs and tasks and decides nothing:
//! ```text
//! let mut call = Call::new(now, setup);
//! loop {
//!     while let Some(action) = call.poll_action() { carry it out }
//!     if call.is_finished() { break }
//!     sleep until call.poll_timeout() (and the media path's own packet clock) or an input;
//!     call.handle_caller(now, ev) | handle_server | handle_media | handle_lookup
//!         | handle_meeting_answer | handle_directory_changed | handle_recheck
//!         | handle_numbered | handle_shutdown | handle_timeout(now, last_rx)
//! }
//! ```
//! The core reads no clock (`now` is an input), touches no socket, awaits nothing and never
//! panics on an input that makes no sense in its state: such inputs are ignored. Every
//! deadline is in one [`TimerTable`]; `poll_timeout` is its earliest. Questions the core
//! cannot answer alone (where a PIN leads, a BBB API lookup, the caller's number in the
//! conference) are actions whose answers come back as inputs. The media path keeps its own
//! packet clock (prompt pacing, echo): that is media's, not the call's.
//!
//! Files: `io` (inputs and actions), `timers` (the timer table), `legs` (SDP state of both
//! legs, re-INVITEs, the server's answer), `route` (PIN answers, guessing delay, waiting
//! room, meeting polls). Whole calls are tested on simulated time in `sim` and `tests`.

mod caller_probe;
mod io;
mod legs;
mod route;
mod server_loss;
mod server_probe;
mod timers;

#[cfg(test)]
mod caller_probe_tests;
#[cfg(test)]
mod server_loss_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use io::{
    CallAction, CallerEvent, InDialog, MediaEvent, MeetingAnswer, Record, ReplyStatus, RequestId,
    RxTimes, ServerEvent, Side,
};
pub use server_loss::{BYE_GRACE, REJOIN_RETRY, SERVER_SILENCE};
pub use server_probe::SERVER_PROBE;
pub use timers::{Timer, TimerTable};

use crate::call::flow::{
    CallFlow, DigitSource, FlowAction, FlowInput, FlowSettings, FlowState, Outcome,
};
use crate::digit::Digit;
use crate::privacy::CallerKey;
use crate::routing::ConferenceTarget;
use crate::sip::sdes::SdesAnswer;
use crate::sip::sdp::Negotiated;
use crate::sip::session_timer::SessionTimer;
use legs::Legs;
use route::RouteState;
use server_loss::LossState;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tracing::info;

/// How long the caller's ACK to our 200 may take. ACKs come within milliseconds; this covers
/// several lost 200s (retransmitted at 0.5, 1, 2, 4 s ...).
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// Our side of the SDP toward both legs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSdp {
    /// The address our SDP advertises.
    pub advertise: IpAddr,
    /// The caller leg's RTP port.
    pub caller_port: u16,
    /// The `o=` session id of every SDP this call sends.
    pub session_id: u64,
}

/// How the edge answered the caller's INVITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    /// 200 with our answer to the caller's offer: the ACK is due.
    Offer(Negotiated),
    /// 200 with our offer (the INVITE had no SDP): the ACK carries the caller's answer.
    LateOffer,
    /// 183 with our answer (early media): the voice menu plays now; the 200, with `body`
    /// again, follows once the call is bridged.
    Early {
        /// The caller's negotiated offer.
        negotiated: Negotiated,
        /// The SDP answer the 183 carried.
        body: Vec<u8>,
    },
}

/// Everything the core needs to start a call, gathered by the edge while answering.
#[derive(Debug)]
pub struct CallSetup {
    /// The call's number in logs.
    pub call_no: u64,
    /// The caller's pseudonym (logs).
    pub caller_key: CallerKey,
    /// The flow's knobs.
    pub flow: FlowSettings,
    /// How long a call may go without RTP from the caller.
    pub media_timeout: Duration,
    /// How long a bridged server may send nothing before its leg counts as lost (zero: never).
    pub server_silence: Duration,
    /// `media.server_probe` (zero: off).
    pub server_probe: Duration,
    /// Our SDP identity.
    pub local: LocalSdp,
    /// How the INVITE was answered.
    pub answered: Answered,
    /// SRTP on the caller leg (our crypto line in every SDP toward it).
    pub srtp: Option<SdesAnswer>,
    /// The negotiated session timer; it starts with the 200.
    pub session: Option<SessionTimer>,
    /// Guessing protection blocked the caller: goodbye at once.
    pub blocked: bool,
    /// When the INVITE arrived (set-up latency).
    pub invite_at: Instant,
}

/// One call's core; see the module doc for the run loop.
#[derive(Debug)]
pub struct Call {
    /// The call's number in logs.
    call_no: u64,
    /// The caller's pseudonym in logs.
    caller_key: CallerKey,
    /// The voice menu and the call's states.
    flow: CallFlow,
    /// The mute key, kept from the server where the Event Socket can mute.
    mute_key: Option<Digit>,
    /// Every deadline of the call.
    timers: TimerTable,
    /// Actions not yet taken by the driver.
    actions: VecDeque<CallAction>,
    /// `media.timeout`.
    media_timeout: Duration,
    /// `media.server_silence` (zero: off).
    server_silence: Duration,
    /// `media.server_probe` (zero: off).
    server_probe: Duration,
    /// Both legs' SDP state and the server leg.
    legs: Legs,
    /// The caller leg's session timer, once the 200 is out.
    session: Option<SessionTimer>,
    /// Early media: the 200 still owed (its body and the timer it starts).
    early: Option<(Vec<u8>, Option<SessionTimer>)>,
    /// Whether the caller's ACK came (the flow hears `CallerAnswered` once).
    confirmed: bool,
    /// Whether an OPTIONS to the holding caller is out, unanswered yet.
    caller_probe: bool,
    /// Whether an OPTIONS to the bridged server is out, unanswered yet.
    server_probe_out: bool,
    /// When the INVITE arrived.
    invite_at: Instant,
    /// When the PIN was complete.
    resolved_at: Option<Instant>,
    /// Routing's answers, guessing protection, the waiting room.
    route: RouteState,
    /// The conference the caller was numbered in (the one dialled again after a loss).
    joined: Option<ConferenceTarget>,
    /// A lost server leg and what dialling it again needs.
    loss: LossState,
    /// Whether the drain deadline was passed to the flow already.
    shutdown_seen: bool,
    /// Whether `Finished` was emitted.
    finished: bool,
}

impl Call {
    /// A call the edge has just answered (or is answering with early media) at `now`.
    pub fn new(now: Instant, setup: CallSetup) -> Call {
        let mut call = Call {
            call_no: setup.call_no,
            caller_key: setup.caller_key,
            flow: CallFlow::new(setup.flow),
            mute_key: setup.flow.mute_key,
            timers: TimerTable::default(),
            actions: VecDeque::with_capacity(8),
            media_timeout: setup.media_timeout,
            server_silence: setup.server_silence,
            server_probe: setup.server_probe,
            legs: Legs::new(setup.local, setup.srtp),
            session: None,
            early: None,
            confirmed: false,
            caller_probe: false,
            server_probe_out: false,
            invite_at: setup.invite_at,
            resolved_at: None,
            route: RouteState::default(),
            joined: None,
            loss: LossState::default(),
            shutdown_seen: false,
            finished: false,
        };
        if setup.blocked {
            call.flow.handle_input(now, FlowInput::Blocked);
        }
        let mut session = setup.session;
        match setup.answered {
            Answered::Offer(n) => {
                call.start_session(now, session);
                call.caller_media(now, n);
                call.timers.set(Timer::Ack, Some(now + ACK_WAIT));
            }
            Answered::LateOffer => {
                call.start_session(now, session);
                call.timers.set(Timer::Ack, Some(now + ACK_WAIT));
            }
            Answered::Early { negotiated, body } => {
                call.caller_media(now, negotiated);
                call.early = Some((body, session.take()));
                call.caller_answered(now);
            }
        }
        call.pump(now);
        call
    }

    /// Where the call is, for logs and metrics.
    pub fn state(&self) -> FlowState {
        self.flow.state()
    }

    /// Whether the call is over (`Finished` was emitted; nothing more will be).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next action for the driver, oldest first; `None` once all are taken.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`Call::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Something happened on the caller's leg.
    pub fn handle_caller(&mut self, now: Instant, event: CallerEvent) {
        match event {
            CallerEvent::Acked { body } => self.on_ack(now, &body),
            CallerEvent::HungUp => self.flow.handle_input(now, FlowInput::CallerHungUp),
            CallerEvent::Request(id, req) => self.on_request(now, Side::Caller, id, req),
            CallerEvent::Reached { alive } => self.on_caller_reached(now, alive),
        }
        self.pump(now);
    }

    /// Something happened on the server's leg.
    pub fn handle_server(&mut self, now: Instant, event: ServerEvent) {
        self.on_server(now, event);
        self.pump(now);
    }

    /// The media path has news.
    pub fn handle_media(&mut self, now: Instant, event: MediaEvent) {
        match event {
            MediaEvent::Digit(d) => self
                .flow
                .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp)),
            MediaEvent::PromptFinished => self.flow.handle_input(now, FlowInput::PromptFinished),
            MediaEvent::Failed => {
                info!(
                    call = self.call_no,
                    "the call's media relay failed: ending call"
                );
                self.flow.handle_input(now, FlowInput::MediaTimeout);
            }
            MediaEvent::ServerUnreachable => self.on_server_unreachable(now),
        }
        self.pump(now);
    }

    /// The drain deadline has come: end the call (a short goodbye in the voice menu).
    pub fn handle_shutdown(&mut self, now: Instant) {
        if !self.shutdown_seen {
            self.shutdown_seen = true;
            info!(call = self.call_no, "drain deadline: ending call");
            self.flow.handle_input(now, FlowInput::Shutdown);
            self.pump(now);
        }
    }

    /// Fires whatever is due at `now`. `rx` is when the media path last received a packet
    /// from each leg (`None` before it exists); early or spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant, rx: Option<RxTimes>) {
        for timer in Timer::ALL {
            if self.finished || !self.timers.is_due(timer, now) {
                continue;
            }
            if self.on_timer(now, timer, rx) {
                break;
            }
        }
        self.pump(now);
    }

    /// One due timer; true when it ended the call (nothing else fires then).
    fn on_timer(&mut self, now: Instant, timer: Timer, rx: Option<RxTimes>) -> bool {
        match timer {
            Timer::SessionExpiry => {
                info!(
                    call = self.call_no,
                    "session timer expired without a refresh: ending call"
                );
                self.set_session(None);
                // The same ending as a dead media path: both legs get BYE.
                self.flow.handle_input(now, FlowInput::MediaTimeout);
                return true;
            }
            Timer::Ack => {
                self.timers.set(Timer::Ack, None);
                info!(call = self.call_no, "no ACK for the answer: ending call");
                self.actions.push_back(CallAction::HangUpCaller);
                self.flow.handle_input(now, FlowInput::CallerHungUp);
                return true;
            }
            Timer::MediaCheck => {
                // Checked lazily rather than re-armed per packet: at the check, the timeout
                // runs from the caller's last packet. A caller that holds may send nothing
                // (`inactive`): then the session timer decides, or an OPTIONS probe.
                let due = match rx {
                    _ if self.legs.caller_holds() => {
                        self.probe_holding_caller();
                        now + self.media_timeout
                    }
                    Some(rx) => rx.caller + self.media_timeout,
                    None => now,
                };
                if now >= due {
                    info!(
                        call = self.call_no,
                        "no RTP from the caller for media.timeout: ending call"
                    );
                    self.flow.handle_input(now, FlowInput::MediaTimeout);
                    return true;
                }
                self.timers.set(Timer::MediaCheck, Some(due));
            }
            Timer::ServerCheck => self.check_server(now, rx),
            Timer::Rejoin => self.retry_rejoin(now),
            Timer::ServerProbe => self.probe_server(now),
            Timer::SessionRefresh => self.refresh_session(now),
            Timer::Flow => {
                let waited = self.flow.state() == FlowState::Waiting;
                self.flow.handle_timeout(now);
                if waited && self.flow.state() != FlowState::Waiting {
                    info!(call = self.call_no, "ivr.max_wait is over: goodbye");
                }
            }
            Timer::MeetingPoll => self.start_meeting_lookup(now),
            Timer::HeldRoute => self.release_held_route(now),
        }
        false
    }

    /// The caller's session timer runs from `now` (the 200 went out).
    fn start_session(&mut self, now: Instant, session: Option<SessionTimer>) {
        let mut session = session;
        if let Some(t) = session.as_mut() {
            t.handle_refresh(now);
        }
        self.set_session(session);
    }

    /// Keeps `session` and its deadlines in the table.
    fn set_session(&mut self, session: Option<SessionTimer>) {
        self.session = session;
        let s = session.as_ref();
        self.timers
            .set(Timer::SessionExpiry, s.map(SessionTimer::poll_expiry));
        self.timers.set(
            Timer::SessionRefresh,
            s.and_then(SessionTimer::poll_refresh),
        );
    }

    /// Our refresh is due: a re-INVITE with our SDP. Counted as refreshed when sent; a
    /// refresh that fails leaves the caller's side to end the call (its own timer runs on
    /// the same interval).
    fn refresh_session(&mut self, now: Instant) {
        let Some(mut timer) = self.session else {
            return;
        };
        timer.handle_refresh(now);
        self.set_session(Some(timer));
        if let Some(sdp) = self.legs.caller_body(true) {
            self.actions.push_back(CallAction::RefreshSession {
                session: timer,
                sdp,
            });
        }
    }

    /// The caller's leg is up: the voice menu starts.
    fn caller_answered(&mut self, now: Instant) {
        if self.confirmed {
            return;
        }
        self.confirmed = true;
        self.timers.set(Timer::Ack, None);
        self.record(Record::SetupLatency(
            "caller_answer",
            now.saturating_duration_since(self.invite_at),
        ));
        self.flow.handle_input(now, FlowInput::CallerAnswered);
    }

    /// The ACK came: for a late offer it carries the caller's answer.
    fn on_ack(&mut self, now: Instant, body: &[u8]) {
        if self.confirmed {
            // A re-INVITE's ACK confirms the dialog again: nothing to do.
            return;
        }
        if self.legs.caller().is_none() {
            match legs::negotiate_caller(body) {
                Ok(n) => self.caller_media(now, n),
                Err(e) => {
                    info!(
                        call = self.call_no,
                        reason = %e,
                        "ending call: no usable answer to our offer in the ACK"
                    );
                    self.actions.push_back(CallAction::HangUpCaller);
                    self.finished(Outcome::RejectedCodec);
                    return;
                }
            }
        }
        self.caller_answered(now);
    }

    /// The caller's media is negotiated: the media path starts, and with it the media check.
    fn caller_media(&mut self, now: Instant, n: Negotiated) {
        let leg = self.legs.set_caller(n);
        self.actions.push_back(CallAction::StartMedia(leg));
        self.timers
            .set(Timer::MediaCheck, Some(now + self.media_timeout));
    }

    fn record(&mut self, record: Record) {
        self.actions.push_back(CallAction::Record(record));
    }

    /// Turns the flow's actions into the driver's, doing the call's part of each.
    fn pump(&mut self, now: Instant) {
        while let Some(action) = self.flow.poll_action() {
            if self.finished {
                // Ended by the core itself (an unusable late answer): the flow has no say.
                continue;
            }
            match action {
                FlowAction::Play(id) => self.actions.push_back(CallAction::Play(id)),
                FlowAction::StopPrompt => self.actions.push_back(CallAction::StopPrompt),
                FlowAction::Resolve(pin) => {
                    self.resolved_at = Some(now);
                    self.actions.push_back(CallAction::Resolve(pin));
                }
                FlowAction::AwaitConference if self.flow.state() == FlowState::Rejoining => {
                    self.await_rejoin(now)
                }
                FlowAction::AwaitConference => self.await_conference(now),
                FlowAction::Unbridge => self.unbridge(),
                FlowAction::DialServer(target) => {
                    if self.legs.server_dialled() {
                        // A try after a loss: the last try's leg (refused, cancelled) is over.
                        self.legs.server_gone();
                    }
                    self.legs.server_wanted();
                    self.actions.push_back(CallAction::NumberCaller(target));
                }
                FlowAction::CancelServer => self.actions.push_back(CallAction::CancelServer),
                FlowAction::Bridge => self.bridge(now),
                FlowAction::StartEcho => {
                    self.actions.push_back(CallAction::StartEcho);
                    self.left_ivr(now);
                    self.record(Record::EchoTest);
                    info!(call = self.call_no, "echo test");
                }
                FlowAction::SendDigit(d) => self.actions.push_back(CallAction::SendDigit(d)),
                FlowAction::ToggleMute(d) => {
                    self.loss.muted = !self.loss.muted;
                    self.actions.push_back(CallAction::ToggleMute(d));
                }
                FlowAction::HangUpCaller => {
                    let action = match self.early.take() {
                        Some(_) => CallAction::RejectCaller,
                        None => CallAction::HangUpCaller,
                    };
                    self.actions.push_back(action);
                }
                FlowAction::HangUpServer => {
                    if self.legs.server_dialled() {
                        self.actions.push_back(CallAction::HangUpServer);
                    }
                }
                FlowAction::Finished(outcome) => self.finished(outcome),
            }
        }
        self.sync_timers();
    }

    /// Relays media between the caller and the answered server leg from now on.
    fn bridge(&mut self, now: Instant) {
        let Some(leg) = self.legs.take_pending_server() else {
            return;
        };
        let mute_key = self.mute_key.filter(|_| self.legs.server_can_mute());
        self.actions.push_back(CallAction::Bridge { leg, mute_key });
        let rejoin = self.loss.lost;
        self.watch_server(now);
        if rejoin {
            // Out of the voice menu and counted as bridged since the first time.
            return;
        }
        self.left_ivr(now);
        self.record(Record::Bridged);
        if let Some(at) = self.resolved_at {
            self.record(Record::SetupLatency(
                "server_answer",
                now.saturating_duration_since(at),
            ));
        }
        info!(call = self.call_no, "bridged");
    }

    /// The caller left the voice menu: its IVR slot is free, and an early-media call is
    /// answered now.
    fn left_ivr(&mut self, now: Instant) {
        self.actions.push_back(CallAction::LeaveIvr);
        if let Some((body, session)) = self.early.take() {
            self.start_session(now, session);
            self.actions.push_back(CallAction::AnswerCaller {
                body,
                session: self.session,
            });
        }
    }

    /// The flow ended the call.
    fn finished(&mut self, outcome: Outcome) {
        let reached_meeting = matches!(outcome, Outcome::Bridged | Outcome::ServerHangup);
        let failed = self.route.wrong_pins > 0 && !reached_meeting && outcome != Outcome::Blocked;
        info!(call = self.call_no, caller = %self.caller_key, ?outcome, "call ended");
        self.actions
            .push_back(CallAction::Finished { outcome, failed });
        self.finished = true;
        self.timers = TimerTable::default();
    }

    /// Mirrors the flow's and the meeting poll's deadlines into the table.
    fn sync_timers(&mut self) {
        if self.finished {
            return;
        }
        self.timers.set(Timer::Flow, self.flow.poll_timeout());
        self.timers
            .set(Timer::MeetingPoll, self.route.meeting_deadline());
    }
}
