//! Carrying out the core's actions: media (prompts, bridging, echo, digits, leg updates),
//! SIP (answers, hang-ups, replies, refreshes, the server INVITE), routing's and guessing
//! protection's answers, and metrics. SIP sends that wait for the network run in small tasks,
//! so the call's loop never waits on them.

use super::{CallDriver, ServerLeg};
use crate::call::core::{CallAction, Record, ReplyStatus, ServerEvent, Side};
use crate::media::call_media::{CallMedia, Leg};
use crate::media::g711::Law;
use crate::media::relay::{MediaPath, PathHandle, SrtpLeg, MAX_PACKET};
use crate::ops::metrics;
use crate::ops::rtp_quality::RtpQuality;
use crate::routing::ConferenceTarget;
use crate::sip::capabilities::answer_headers;
use crate::sip::legs::{sdp_content_type, server_invite};
use crate::sip::sdp;
use crate::sip::session_timer::SessionTimer;
use rsipstack::sip::{Header, StatusCode};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};
use tracing::{debug, info, warn};

/// Why the server leg could not be dialled (the caller then hears "unavailable").
#[derive(Debug, thiserror::Error)]
enum DialError {
    /// The call has no media path to add the leg's socket to (a bug).
    #[error("the call has no media path")]
    NoMediaPath,
    /// No RTP port for the server leg.
    #[error(transparent)]
    Port(#[from] crate::media::ports::PortError),
    /// The leg's socket could not be set up for the relay.
    #[error("the server leg's RTP socket cannot be used: {0}")]
    Socket(std::io::Error),
    /// The server's address does not make a SIP URI.
    #[error(transparent)]
    Uri(#[from] crate::sip::legs::InvalidUri),
    /// rsipstack would not build the INVITE.
    #[error("the INVITE could not be built")]
    Invite,
}

impl CallDriver {
    /// Carries out the core's actions (and those its answers lead to); true when the call is
    /// over.
    // Over 80 lines: one arm per action, each a line or two; the table reads best whole.
    pub(super) fn carry_out(&mut self, now: Instant) -> bool {
        while let Some(action) = self.core.poll_action() {
            match action {
                CallAction::StartMedia(leg) => {
                    if !self.start_media(now, leg) {
                        return true;
                    }
                }
                CallAction::Play(id) => {
                    let prompt = self.settings.prompts.get(id);
                    self.with_media(|m| m.play(prompt, now));
                }
                CallAction::StopPrompt => self.with_media(|m| m.stop_prompt()),
                CallAction::Resolve(pin) => {
                    let unix = crate::store::model::unix_now();
                    let lookup = self.settings.router.lookup_at(&pin, now, unix);
                    let delay = self
                        .ctx
                        .ledger
                        .answer_delay(SystemTime::now(), &self.source_net);
                    self.core.handle_lookup(now, lookup, delay);
                }
                CallAction::LookupMeeting(lookup) => self.look_up_meeting(lookup),
                CallAction::WatchDirectory => self.watch_directory(),
                CallAction::UnwatchDirectory => self.directory = None,
                CallAction::Recheck(waiting_for) => {
                    let decision = self.settings.router.recheck(&waiting_for, now);
                    self.core.handle_recheck(now, decision);
                }
                CallAction::NumberCaller(target) => self.number_caller(now, target),
                CallAction::DialServer {
                    target,
                    seq,
                    law,
                    telephone_event_pt,
                } => self.dial(now, target, seq, law, telephone_event_pt),
                CallAction::CancelServer => self.cancel_server(),
                CallAction::HangUpServer => {
                    if let Some(s) = &self.server {
                        let dialog = s.dialog.clone();
                        tokio::spawn(async move { dialog.bye().await.ok() });
                    }
                }
                CallAction::Bridge { leg, mute_key } => {
                    self.with_media(|m| {
                        m.bridge(leg, now);
                        m.intercept(mute_key);
                    });
                    self.watch_server_health(now);
                }
                CallAction::Unbridge => self.unbridge(now),
                CallAction::StartEcho => self.with_media(|m| m.start_echo()),
                CallAction::LeaveIvr => self.slot.leave_ivr(),
                CallAction::SendDigit(d) => self.send_digit(d),
                CallAction::ToggleMute(d) => self.toggle_mute(d),
                CallAction::SetMute(muted) => self.set_mute(muted),
                CallAction::AnswerCaller { body, session } => {
                    let mut headers = vec![sdp_content_type()];
                    headers.extend(answer_headers(session.as_ref()));
                    if self.trunk.accept(Some(headers), Some(body)).is_err() {
                        info!(call = self.call_no, "the caller left before the answer");
                    }
                }
                CallAction::RejectCaller => {
                    self.trunk
                        .reject(Some(StatusCode::TemporarilyUnavailable), None)
                        .ok();
                }
                CallAction::HangUpCaller => {
                    let dialog = self.trunk.clone();
                    tokio::spawn(async move { dialog.bye().await.ok() });
                }
                CallAction::ProbeCaller => self.probe_caller(),
                CallAction::ProbeServer => self.probe_server(),
                CallAction::Reply {
                    request,
                    status,
                    session,
                    sdp,
                } => self.reply(request, status, session, sdp),
                CallAction::UpdateLeg {
                    side,
                    remote,
                    sending,
                } => self.with_media(|m| {
                    let leg = match side {
                        Side::Caller => Some(&mut m.caller),
                        Side::Server => m.server.as_mut(),
                    };
                    if let Some(leg) = leg {
                        leg.update(remote, sending);
                    }
                }),
                CallAction::Rekey(key) => {
                    if let Some(path) = &self.path {
                        path.with(|p| p.srtp.as_mut().map(|s| s.rekey(key)));
                    }
                }
                CallAction::RefreshSession { session, sdp } => self.refresh(session, sdp),
                CallAction::RecordFailedPin => self
                    .ctx
                    .ledger
                    .record_failed_pin(SystemTime::now(), &self.source_net),
                CallAction::Record(r) => self.record(r),
                CallAction::Finished { outcome, failed } => {
                    let now = SystemTime::now();
                    if self.ctx.ledger.record_call(now, &self.caller_key, failed) {
                        info!(
                            call = self.call_no,
                            caller = %self.caller_key,
                            "caller blocked: too many failed calls"
                        );
                    }
                    metrics::call_ended(outcome.label());
                    return true;
                }
            }
        }
        false
    }

    /// Runs `f` on the call's media state, once the media path exists.
    fn with_media(&self, f: impl FnOnce(&mut CallMedia)) {
        if let Some(path) = &self.path {
            path.with(|p| f(&mut p.media));
        }
    }

    /// Starts the call's media path with the caller's leg; false when it cannot be watched
    /// (then the caller hears the end of the call rather than silence, and the call ends).
    fn start_media(&mut self, now: Instant, leg: Leg) -> bool {
        let Some(pending) = self.pending_media.take() else {
            return true;
        };
        let path = MediaPath::new(
            CallMedia::new(leg, now),
            pending.socket,
            // Boxed: most calls have none, and the context is larger than the rest of the path.
            pending
                .sdes
                .map(|a| Box::new(SrtpLeg::new(&a.remote_key, &a.local_key, MAX_PACKET))),
            [RtpQuality::new(now, 8000), RtpQuality::new(now, 8000)],
        );
        match PathHandle::insert(path) {
            Ok(path) => {
                self.path = Some(path);
                true
            }
            Err(e) => {
                warn!(call = self.call_no, error = %e, "ending call: its RTP socket cannot be watched");
                // An early-media call is still unanswered: a final error instead of a BYE.
                if pending.early {
                    let busy = Some(StatusCode::ServiceUnavailable);
                    self.trunk.reject(busy, None).ok();
                } else {
                    let bye = self.trunk.clone();
                    tokio::spawn(async move { bye.bye().await.ok() });
                }
                metrics::call_ended("unavailable");
                false
            }
        }
    }

    /// Starts the server leg: binds its RTP port and sends the INVITE; the core hears that
    /// it went out, or that it failed.
    fn dial(&mut self, now: Instant, target: ConferenceTarget, seq: u64, law: Law, te: u8) {
        self.server_name = Some(target.server.clone());
        // A try after a loss: the last try's leg (refused, cancelled, hung up) is forgotten.
        self.forget_server();
        let event = match self.send_invite(&target, seq, law, te) {
            Ok(port) => {
                self.log_dial(now, &target);
                ServerEvent::Dialled { port }
            }
            Err(reason) => {
                warn!(call = self.call_no, server = %target.server, %reason, "cannot dial server");
                ServerEvent::Failed
            }
        };
        self.core.handle_server(now, event);
    }

    /// Binds the server leg's RTP port and sends its INVITE; the port on success.
    fn send_invite(
        &mut self,
        target: &ConferenceTarget,
        seq: u64,
        law: Law,
        te: u8,
    ) -> Result<u16, DialError> {
        let path = self.path.as_ref().ok_or(DialError::NoMediaPath)?;
        let (lease, socket) = self.ctx.bind_rtp()?;
        socket.set_nonblocking(true).map_err(DialError::Socket)?;
        path.add_server_socket(socket).map_err(DialError::Socket)?;
        let offer = sdp::build_offer(
            self.ctx.advertise,
            lease.port(),
            law,
            te,
            rand::random::<u32>() as u64,
            1,
        );
        let masked = self.ctx.privacy.present_numbered(&self.caller, seq);
        let opt = server_invite(
            target,
            &masked,
            &self.dialin_call,
            self.ctx.advertise,
            self.ctx.sip_port,
            self.ctx.contact.clone(),
            offer,
        )?;
        // Our own Call-ID, so the leg's events are subscribed to before the INVITE goes out.
        let call_id = format!("{:032x}", rand::random::<u128>());
        let events = self.ctx.dialog_events.subscribe(&call_id, None);
        let opt = rsipstack::dialog::invitation::InviteOption {
            call_id: Some(call_id),
            ..opt
        };
        let (dialog, invite) = self
            .ctx
            .dialog_layer
            .do_invite_async(opt, self.ctx.dialog_events.sender())
            .map_err(|_| DialError::Invite)?;
        let port = lease.port();
        self.server = Some(ServerLeg {
            dialog,
            events,
            _port: lease,
            invite: Some(invite),
            port_check: Some(super::port_check::spawn(target.server_addr)),
            probe: None,
        });
        Ok(port)
    }

    /// The server leg is lost: the caller gets the voice menu's media again, and the leg's
    /// dialog, RTP socket and port are let go (the BYE, sent before, goes on in its own task).
    fn unbridge(&mut self, now: Instant) {
        // While the directory still remembers the lost server's conferences: the rejoin
        // restores the member's mute.
        self.refresh_member_muted();
        if let Some(path) = &self.path {
            path.with(|p| p.media.unbridge(now));
        }
        self.forget_server();
    }

    /// Lets the server leg's dialog and RTP socket go, and with them its port (closed before
    /// the port goes back to the pool, so the next leg can bind it).
    pub(super) fn forget_server(&mut self) {
        self.health = None;
        if let Some(path) = &self.path {
            path.remove_server_socket();
        }
        if let Some(mut s) = self.server.take() {
            for task in [s.port_check.take(), s.probe.take()].into_iter().flatten() {
                task.abort();
            }
            self.ctx.dialog_layer.remove_dialog(&s.dialog.id());
            if let Some(invite) = s.invite.take() {
                let layer = self.ctx.dialog_layer.clone();
                super::server_invite::let_finish(layer, s.dialog, invite);
            }
        }
    }

    /// CANCELs the ringing server leg (or the numbering before it), then ends its INVITE
    /// transaction.
    fn cancel_server(&mut self) {
        if let Some((_, h)) = self.numbering.take() {
            h.abort();
        }
        if let Some(s) = self.server.as_mut() {
            let dialog = s.dialog.clone();
            if let Some(invite) = s.invite.take() {
                // The CANCEL ends the INVITE with 487, or a 200 crosses it: either way the
                // INVITE is let finish (a late 200 gets its BYE).
                let layer = self.ctx.dialog_layer.clone();
                super::server_invite::let_finish(layer, dialog.clone(), invite);
            }
            tokio::spawn(async move { dialog.cancel().await.ok() });
        }
    }

    /// Answers a held in-dialog request.
    fn reply(
        &mut self,
        request: crate::call::core::RequestId,
        status: ReplyStatus,
        session: Option<SessionTimer>,
        sdp: Option<Vec<u8>>,
    ) {
        let Some(i) = self.requests.iter().position(|(id, _)| *id == request) else {
            return;
        };
        let (_, handle) = self.requests.swap_remove(i);
        let status = match status {
            ReplyStatus::Ok => StatusCode::OK,
            ReplyStatus::NotAcceptableHere => StatusCode::NotAcceptableHere,
            ReplyStatus::UnsupportedMediaType => StatusCode::UnsupportedMediaType,
            ReplyStatus::MethodNotAllowed => StatusCode::MethodNotAllowed,
        };
        let mut headers = Vec::new();
        if sdp.is_some() {
            headers.push(sdp_content_type());
        }
        if session.is_some() {
            headers.extend(answer_headers(session.as_ref()));
        }
        tokio::spawn(async move { handle.respond(status, Some(headers), sdp).await.ok() });
    }

    /// Refreshes the caller's session with a re-INVITE carrying our SDP.
    fn refresh(&mut self, session: SessionTimer, sdp: Vec<u8>) {
        let headers = vec![
            sdp_content_type(),
            Header::SessionExpires(session.session_expires().into()),
            Header::Supported("timer".into()),
        ];
        let dialog = self.trunk.clone();
        let call_no = self.call_no;
        // Its answer comes back as `CallerEvent::Reached`: no answer, 408 or 481 end the call.
        self.caller_request = Some(tokio::spawn(async move {
            let answer = dialog.reinvite(Some(headers), Some(sdp)).await;
            let ok = matches!(
                &answer,
                Ok(Some(r)) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful
            );
            debug!(call = call_no, ok, "session refreshed by re-INVITE");
            peer_holds_dialog(&answer)
        }));
    }

    /// Sends the bridged server an in-dialog OPTIONS; its answer wakes the call
    /// (`Wake::ServerReached`).
    fn probe_server(&mut self) {
        let Some(s) = self.server.as_mut() else {
            return;
        };
        let dialog = s.dialog.clone();
        s.probe = Some(tokio::spawn(async move {
            let answer = dialog
                .request(rsipstack::sip::Method::Options, None, None)
                .await;
            peer_holds_dialog(&answer)
        }));
    }

    /// Sends the holding caller an in-dialog OPTIONS; its answer wakes the call
    /// (`Wake::Reached`).
    fn probe_caller(&mut self) {
        let dialog = self.trunk.clone();
        self.caller_request = Some(tokio::spawn(async move {
            // rsipstack sends nothing (and answers `None`) outside a confirmed dialog: no
            // probe then, and no verdict either.
            if !dialog.state().is_confirmed() {
                return true;
            }
            let answer = dialog
                .request(rsipstack::sip::Method::Options, None, None)
                .await;
            peer_holds_dialog(&answer)
        }));
    }

    /// Records a measurement.
    fn record(&self, record: Record) {
        match record {
            Record::SetupLatency(phase, took) => metrics::setup_latency(phase, took),
            Record::PinAttempt(label) => metrics::pin_attempt(label),
            Record::Bridged => {
                self.ctx.stats.bridged.fetch_add(1, Ordering::Relaxed);
            }
            Record::EchoTest => {
                self.ctx.stats.echo_tests.fetch_add(1, Ordering::Relaxed);
            }
            Record::ServerLost(reason) => metrics::server_leg_lost(reason),
            Record::Rejoined => metrics::rejoined(),
        }
    }
}

/// Whether the answer to an in-dialog request says the peer (the caller's phone, the server)
/// still holds the dialog:
/// any final response but 408 (Request Timeout) and 481 (no such call). No answer at all (the
/// transaction timed out) or a request that could not be sent say it does not.
fn peer_holds_dialog(answer: &rsipstack::Result<Option<rsipstack::sip::Response>>) -> bool {
    use rsipstack::sip::StatusCode;
    match answer {
        Ok(Some(r)) => !matches!(
            r.status_code,
            StatusCode::RequestTimeout | StatusCode::CallTransactionDoesNotExist
        ),
        Ok(None) | Err(_) => false,
    }
}
