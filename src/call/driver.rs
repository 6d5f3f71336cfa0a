//! The task that drives one call: it owns the call's flow state machine, its media state and
//! its two RTP sockets, and turns SIP dialog events, packets and deadlines into inputs.
//!
//! One `select!` loop per call; other parts talk to it only through the dialog state channels
//! rsipstack gives each leg. On every exit path the RTP ports are released (their leases drop)
//! and the dialogs are removed from the dialog layer.

use crate::call::context::CallContext;
use crate::call::flow::{CallFlow, DigitSource, FlowAction, FlowInput};
use crate::call::media::{CallMedia, Leg, LegCodec, Received};
use crate::media::g711::Law;
use crate::media::ports::PortLease;
use crate::privacy::mask_caller;
use crate::routing::ConferenceTarget;
use crate::secret::CallerNumber;
use crate::sip::dtmf_info::parse_info_digit;
use crate::sip::legs::{caller_number, sdp_content_type, server_invite};
use crate::sip::sdp::{self, Direction, MediaOffer, Negotiated};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TransactionHandle};
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Request, StatusCode, StatusCodeKind};
use rsipstack::transaction::Transaction;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use tracing::{debug, info, warn};

/// Largest RTP datagram we accept; bigger ones are truncated and then fail to parse.
const MAX_PACKET: usize = 1500;

/// Starts a call for a new INVITE transaction.
pub fn spawn_call(ctx: Arc<CallContext>, tx: Transaction) {
    let (guard, call_no) = ctx.call_started();
    tokio::spawn(async move {
        let _guard = guard;
        run_call(ctx, tx, call_no).await;
    });
}

/// Answers the INVITE (or refuses it) and, once answered, runs the call to its end.
async fn run_call(ctx: Arc<CallContext>, mut tx: Transaction, call_no: u64) {
    // 100 Trying first, before anything else can answer (180 when ringing, 488, 200).
    tx.send_trying().await.ok();
    let (trunk_events_tx, mut trunk_events) = ctx.dialog_layer.new_dialog_state_channel();
    let dialog = match ctx.dialog_layer.get_or_create_server_invite(
        &tx,
        trunk_events_tx,
        None,
        Some(ctx.contact.clone()),
    ) {
        Ok(d) => d,
        Err(_) => {
            tx.reply(StatusCode::BadRequest).await.ok();
            return;
        }
    };
    let caller = caller_number(&tx.original);
    let offer_body = tx.original.body.clone();
    // The dialog drives the INVITE transaction: 100 Trying at once, then ACK or CANCEL.
    let mut inv_dialog = dialog.clone();
    tokio::spawn(async move {
        inv_dialog.handle(&mut tx).await.ok();
    });
    info!(call = call_no, "incoming call");
    if !ctx.answer_delay.is_zero() && !ring(&ctx, &dialog, &mut trunk_events).await {
        info!(call = call_no, "caller gave up before the answer");
        ctx.dialog_layer.remove_dialog(&dialog.id());
        return;
    }

    let session_id = rand::random::<u32>() as u64;
    let Some((negotiated, lease, socket)) =
        answer_caller(&ctx, &dialog, &offer_body, call_no, session_id)
    else {
        ctx.dialog_layer.remove_dialog(&dialog.id());
        return;
    };
    let codec = LegCodec {
        law: negotiated.law,
        pt: negotiated.pt,
        telephone_event_pt: negotiated.telephone_event_pt,
    };
    let now = Instant::now();
    let mut driver = CallDriver {
        ctx: ctx.clone(),
        call_no,
        caller,
        flow: CallFlow::new(ctx.flow),
        media: CallMedia::new(Leg::new(negotiated.remote, codec, true), now),
        caller_sdp: negotiated,
        trunk: dialog,
        trunk_events,
        caller_socket: socket,
        _caller_port: lease,
        server: None,
        pending_server_leg: None,
        caller_confirmed: false,
        sdp_version: 1,
        session_id,
    };
    driver.run().await;
    driver.cleanup();
}

/// Rings for `answer_delay`; false when the caller cancelled meanwhile.
async fn ring(ctx: &CallContext, dialog: &InviteDialog, events: &mut DialogStateReceiver) -> bool {
    dialog.ringing(None, None).ok();
    let deadline = tokio::time::Instant::now() + ctx.answer_delay;
    loop {
        tokio::select! {
            _ = sleep_until(deadline) => return true,
            ev = events.recv() => match ev {
                Some(DialogState::Terminated(..)) | None => return false,
                Some(_) => {}
            },
        }
    }
}

/// Negotiates the caller's offer, binds the caller leg's RTP port and sends 200 OK; on any
/// failure answers the INVITE with the matching error and returns `None`.
fn answer_caller(
    ctx: &CallContext,
    dialog: &InviteDialog,
    offer_body: &[u8],
    call_no: u64,
    session_id: u64,
) -> Option<(Negotiated, PortLease, UdpSocket)> {
    let negotiated = match MediaOffer::parse(offer_body)
        .and_then(|o| sdp::negotiate(&o, &[Law::Ulaw, Law::Alaw]))
    {
        Ok(n) => n,
        Err(e) => {
            info!(call = call_no, reason = %e, "refusing call: no usable audio offer");
            dialog
                .reject(Some(StatusCode::NotAcceptableHere), None)
                .ok();
            return None;
        }
    };
    let (lease, std_socket) = match ctx.ports.bind(ctx.rtp_bind) {
        Ok(p) => p,
        Err(e) => {
            warn!(call = call_no, error = %e, "refusing call: no RTP port");
            dialog
                .reject(Some(StatusCode::ServiceUnavailable), None)
                .ok();
            return None;
        }
    };
    let socket = match UdpSocket::from_std(std_socket) {
        Ok(s) => s,
        Err(e) => {
            warn!(call = call_no, error = %e, "refusing call: RTP socket");
            dialog
                .reject(Some(StatusCode::ServiceUnavailable), None)
                .ok();
            return None;
        }
    };
    let answer = sdp::build_answer(
        ctx.advertise,
        lease.port(),
        &negotiated,
        session_id,
        1,
        negotiated.direction.answer_to(),
    );
    dialog
        .accept(Some(vec![sdp_content_type()]), Some(answer.into_bytes()))
        .ok()?;
    Some((negotiated, lease, socket))
}

/// The server leg while it is being dialled and once it is up.
struct ServerLeg {
    dialog: InviteDialog,
    events: DialogStateReceiver,
    socket: UdpSocket,
    _port: PortLease,
    /// Resolves when the INVITE gets its final response; `None` once taken.
    invite: Option<JoinHandle<InviteAsyncResult>>,
    /// The telephone-event PT we offered (used if the answer lacks one).
    offered_te: u8,
    answered: bool,
}

struct CallDriver {
    ctx: Arc<CallContext>,
    call_no: u64,
    caller: CallerNumber,
    flow: CallFlow,
    media: CallMedia,
    trunk: InviteDialog,
    trunk_events: DialogStateReceiver,
    caller_socket: UdpSocket,
    _caller_port: PortLease,
    server: Option<ServerLeg>,
    /// The answered server leg's media, handed to the media state on `Bridge`.
    pending_server_leg: Option<Leg>,
    /// The caller leg's SDP state, for answering re-INVITEs.
    caller_sdp: Negotiated,
    /// Whether the caller's ACK has arrived (the flow hears `CallerAnswered` once).
    caller_confirmed: bool,
    sdp_version: u64,
    session_id: u64,
}

/// What woke the driver up.
enum Wake {
    Caller(std::io::Result<(usize, SocketAddr)>),
    Server(std::io::Result<(usize, SocketAddr)>),
    Trunk(Option<DialogState>),
    ServerEvent(Option<DialogState>),
    Invite(Result<InviteAsyncResult, tokio::task::JoinError>),
    Timer,
}

impl CallDriver {
    async fn run(&mut self) {
        // Two receive buffers (one per socket), allocated once per call, never per packet.
        let mut buf = vec![0u8; MAX_PACKET].into_boxed_slice();
        let mut server_buf = vec![0u8; MAX_PACKET].into_boxed_slice();
        loop {
            if self.apply_actions() {
                return;
            }
            let deadline = self.next_deadline();
            let wake = {
                let (server_sock, server_events, invite) = match self.server.as_mut() {
                    Some(s) => (Some(&s.socket), Some(&mut s.events), s.invite.as_mut()),
                    None => (None, None, None),
                };
                tokio::select! {
                    r = self.caller_socket.recv_from(&mut buf) => Wake::Caller(r),
                    r = recv_opt(server_sock, &mut server_buf) => Wake::Server(r),
                    e = self.trunk_events.recv() => Wake::Trunk(e),
                    e = recv_events(server_events) => Wake::ServerEvent(e),
                    r = join_opt(invite) => Wake::Invite(r),
                    _ = sleep_until(deadline.into()) => Wake::Timer,
                }
            };
            let now = Instant::now();
            match wake {
                Wake::Caller(Ok((len, from))) => {
                    let r = self.media.handle_caller_packet(now, from, &mut buf, len);
                    self.deliver(now, r, &buf).await;
                }
                Wake::Server(Ok((len, from))) => {
                    let r = self
                        .media
                        .handle_server_packet(now, from, &mut server_buf, len);
                    self.deliver(now, r, &server_buf).await;
                }
                Wake::Caller(Err(_)) | Wake::Server(Err(_)) => {}
                Wake::Trunk(Some(ev)) => self.on_trunk_event(now, ev).await,
                Wake::Trunk(None) => self.flow.handle_input(now, FlowInput::CallerHungUp),
                Wake::ServerEvent(Some(ev)) => self.on_server_event(now, ev).await,
                Wake::ServerEvent(None) => {}
                Wake::Invite(r) => self.on_invite_result(now, r),
                Wake::Timer => self.on_timer(now, &mut buf).await,
            }
        }
    }

    /// The earliest of the flow's, the media's and the media-timeout deadlines.
    fn next_deadline(&mut self) -> Instant {
        let media_timeout = self.media.last_rx() + self.ctx.media_timeout;
        [
            self.flow.poll_timeout(),
            self.media.next_deadline(),
            Some(media_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(media_timeout)
    }

    async fn on_timer(&mut self, now: Instant, buf: &mut [u8]) {
        if now >= self.media.last_rx() + self.ctx.media_timeout {
            info!(call = self.call_no, "no RTP for media.timeout: ending call");
            self.flow.handle_input(now, FlowInput::MediaTimeout);
            return;
        }
        if self.flow.poll_timeout().is_some_and(|t| t <= now) {
            self.flow.handle_timeout(now);
        }
        while let Some(r) = self.media.poll_transmit(now, buf) {
            self.deliver(now, r, buf).await;
        }
        if self.media.poll_prompt_finished() {
            self.flow.handle_input(now, FlowInput::PromptFinished);
        }
    }

    /// Sends what the media state asked for, or feeds a decoded digit to the flow.
    async fn deliver(&mut self, now: Instant, r: Received, buf: &[u8]) {
        match r {
            Received::Ignored => {}
            Received::Digit(d) => self
                .flow
                .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp)),
            Received::ToCaller { len, to } => {
                self.caller_socket.send_to(&buf[..len], to).await.ok();
            }
            Received::ToServer { len, to } => {
                if let Some(s) = &self.server {
                    s.socket.send_to(&buf[..len], to).await.ok();
                }
            }
        }
    }

    async fn on_trunk_event(&mut self, now: Instant, ev: DialogState) {
        match ev {
            // A re-INVITE's ACK confirms the dialog again: answer the flow once.
            DialogState::Confirmed(..) if !self.caller_confirmed => {
                self.caller_confirmed = true;
                self.flow.handle_input(now, FlowInput::CallerAnswered);
            }
            DialogState::Terminated(..) => {
                self.flow.handle_input(now, FlowInput::CallerHungUp);
            }
            DialogState::Info(_, req, handle) => self.on_info(now, &req, handle).await,
            DialogState::Updated(_, req, handle) => self.on_reinvite(&req, handle).await,
            DialogState::Options(_, _, handle) => {
                handle.reply(StatusCode::OK).await.ok();
            }
            DialogState::Notify(_, _, h)
            | DialogState::Refer(_, _, h)
            | DialogState::Message(_, _, h)
            | DialogState::Publish(_, _, h) => {
                h.reply(StatusCode::MethodNotAllowed).await.ok();
            }
            _ => {}
        }
    }

    /// SIP INFO with a DTMF body: 200 and a digit for the flow; other INFO bodies get 415.
    async fn on_info(&mut self, now: Instant, req: &Request, handle: TransactionHandle) {
        let ct = req.header_value("Content-Type").unwrap_or_default();
        match parse_info_digit(&ct, &req.body) {
            Some(d) => {
                handle.reply(StatusCode::OK).await.ok();
                self.flow
                    .handle_input(now, FlowInput::Digit(d, DigitSource::Info));
            }
            None if req.body.is_empty() => {
                handle.reply(StatusCode::OK).await.ok();
            }
            None => {
                handle.reply(StatusCode::UnsupportedMediaType).await.ok();
            }
        }
    }

    /// A re-INVITE from the caller: same codec, possibly a new address or hold. Answered with
    /// our current media; an offer without our codec gets 488 and changes nothing.
    async fn on_reinvite(&mut self, req: &Request, handle: TransactionHandle) {
        let codec = self.media.caller.codec();
        let offer = if req.body.is_empty() {
            None
        } else {
            match MediaOffer::parse(&req.body).and_then(|o| sdp::negotiate(&o, &[codec.law])) {
                Ok(n) if n.law == codec.law => Some(n),
                _ => {
                    handle.reply(StatusCode::NotAcceptableHere).await.ok();
                    return;
                }
            }
        };
        if let Some(n) = offer {
            // We may receive when the caller sends (sendrecv/sendonly) and send when it
            // receives (sendrecv/recvonly): hold (sendonly/inactive) stops our sending.
            let sending = matches!(n.direction, Direction::SendRecv | Direction::RecvOnly);
            self.media.caller.update(n.remote, sending);
            // Keep our codec and payload types; take the new offer's m-line layout.
            self.caller_sdp = Negotiated {
                law: codec.law,
                pt: codec.pt,
                telephone_event_pt: codec.telephone_event_pt,
                remote: self.media.caller.remote(),
                ..n
            };
        }
        let direction = self.caller_sdp.direction.answer_to();
        self.sdp_version += 1;
        let answer = sdp::build_answer(
            self.ctx.advertise,
            self.caller_socket
                .local_addr()
                .map(|a| a.port())
                .unwrap_or(0),
            &self.caller_sdp,
            self.session_id,
            self.sdp_version,
            direction,
        );
        handle
            .respond(
                StatusCode::OK,
                Some(vec![sdp_content_type()]),
                Some(answer.into_bytes()),
            )
            .await
            .ok();
    }

    async fn on_server_event(&mut self, now: Instant, ev: DialogState) {
        match ev {
            DialogState::Terminated(..) => {
                let answered = self.server.as_ref().is_some_and(|s| s.answered);
                if answered {
                    self.flow.handle_input(now, FlowInput::ServerHungUp);
                }
            }
            DialogState::Info(_, _, h) | DialogState::Options(_, _, h) => {
                h.reply(StatusCode::OK).await.ok();
            }
            DialogState::Updated(_, _, h) => {
                // FreeSWITCH may refresh the session; our media does not change.
                h.reply(StatusCode::NotAcceptableHere).await.ok();
            }
            DialogState::Notify(_, _, h)
            | DialogState::Refer(_, _, h)
            | DialogState::Message(_, _, h)
            | DialogState::Publish(_, _, h) => {
                h.reply(StatusCode::MethodNotAllowed).await.ok();
            }
            _ => {}
        }
    }

    /// The server leg's INVITE got its final response (or failed).
    fn on_invite_result(
        &mut self,
        now: Instant,
        r: Result<InviteAsyncResult, tokio::task::JoinError>,
    ) {
        let Some(server) = self.server.as_mut() else {
            return;
        };
        server.invite = None;
        let response = match r {
            Ok(Ok((_, Some(resp)))) => resp,
            _ => {
                info!(call = self.call_no, "server leg failed");
                self.flow.handle_input(now, FlowInput::ServerFailed);
                return;
            }
        };
        if response.status_code.kind() != StatusCodeKind::Successful {
            info!(call = self.call_no, status = %response.status_code, "server leg refused");
            self.flow.handle_input(now, FlowInput::ServerFailed);
            return;
        }
        let caller_codec = self.media.caller.codec();
        let negotiated =
            MediaOffer::parse(&response.body).and_then(|o| sdp::negotiate(&o, &[caller_codec.law]));
        match negotiated {
            Ok(n) if n.law == caller_codec.law => {
                server.answered = true;
                let codec = LegCodec {
                    law: n.law,
                    pt: n.pt,
                    telephone_event_pt: n.telephone_event_pt.or(Some(server.offered_te)),
                };
                self.pending_server_leg = Some(Leg::new(n.remote, codec, false));
                self.flow.handle_input(now, FlowInput::ServerAnswered);
            }
            _ => {
                info!(
                    call = self.call_no,
                    "server answered without a usable codec"
                );
                server.answered = true;
                let dialog = server.dialog.clone();
                tokio::spawn(async move { dialog.bye().await.ok() });
                self.flow.handle_input(now, FlowInput::ServerFailed);
            }
        }
    }

    /// Carries out the flow's actions; returns true when the call is over.
    fn apply_actions(&mut self) -> bool {
        let now = Instant::now();
        while let Some(action) = self.flow.poll_action() {
            match action {
                FlowAction::Play(id) => self.media.play(self.ctx.prompts.get(id), now),
                FlowAction::StopPrompt => self.media.stop_prompt(),
                FlowAction::Resolve(pin) => {
                    let decision = self.ctx.router.resolve(&pin);
                    self.flow.handle_input(now, FlowInput::Routed(decision));
                }
                FlowAction::DialServer(target) => {
                    if let Err(reason) = self.dial(&target) {
                        warn!(call = self.call_no, server = %target.server, %reason, "cannot dial server");
                        self.flow.handle_input(now, FlowInput::ServerFailed);
                    } else {
                        info!(call = self.call_no, server = %target.server, "dialling server");
                    }
                }
                FlowAction::CancelServer => {
                    if let Some(s) = self.server.as_mut() {
                        let dialog = s.dialog.clone();
                        let invite = s.invite.take();
                        tokio::spawn(async move {
                            dialog.cancel().await.ok();
                            if let Some(h) = invite {
                                // Give the CANCEL a moment to end the INVITE transaction.
                                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                                h.abort();
                            }
                        });
                    }
                }
                FlowAction::Bridge => {
                    if let Some(leg) = self.pending_server_leg.take() {
                        self.media.bridge(leg);
                        self.ctx.stats.bridged.fetch_add(1, Ordering::Relaxed);
                        info!(call = self.call_no, "bridged");
                    }
                }
                FlowAction::StartEcho => {
                    self.media.start_echo();
                    self.ctx.stats.bridged.fetch_add(1, Ordering::Relaxed);
                    info!(call = self.call_no, "echo test");
                }
                FlowAction::SendDigit(d) => self.media.send_digit(d),
                FlowAction::HangUpCaller => {
                    let dialog = self.trunk.clone();
                    tokio::spawn(async move { dialog.bye().await.ok() });
                }
                FlowAction::HangUpServer => {
                    if let Some(s) = self.server.as_ref() {
                        let dialog = s.dialog.clone();
                        tokio::spawn(async move { dialog.bye().await.ok() });
                    }
                }
                FlowAction::Finished(outcome) => {
                    info!(call = self.call_no, ?outcome, "call ended");
                    return true;
                }
            }
        }
        false
    }

    /// Starts the server leg: binds its RTP port and sends the INVITE.
    fn dial(&mut self, target: &ConferenceTarget) -> Result<(), String> {
        let (lease, std_socket) = self
            .ctx
            .ports
            .bind(self.ctx.rtp_bind)
            .map_err(|e| e.to_string())?;
        let socket = UdpSocket::from_std(std_socket).map_err(|e| e.to_string())?;
        let codec = self.media.caller.codec();
        let te = codec.telephone_event_pt.unwrap_or(101);
        let offer = sdp::build_offer(
            self.ctx.advertise,
            lease.port(),
            codec.law,
            te,
            rand::random::<u32>() as u64,
            1,
        );
        let masked = mask_caller(&self.caller, 2, self.call_no);
        let opt = server_invite(
            target,
            &masked,
            self.ctx.advertise,
            self.ctx.sip_port,
            self.ctx.contact.clone(),
            offer,
        )
        .map_err(|e| e.to_string())?;
        let (events_tx, events) = self.ctx.dialog_layer.new_dialog_state_channel();
        let (dialog, invite) = self
            .ctx
            .dialog_layer
            .do_invite_async(opt, events_tx)
            .map_err(|_| "the INVITE could not be built".to_string())?;
        self.server = Some(ServerLeg {
            dialog,
            events,
            socket,
            _port: lease,
            invite: Some(invite),
            offered_te: te,
            answered: false,
        });
        Ok(())
    }

    /// Removes both dialogs from the dialog layer; sockets and ports go with `self`.
    fn cleanup(&mut self) {
        self.ctx.dialog_layer.remove_dialog(&self.trunk.id());
        if let Some(s) = self.server.as_mut() {
            if let Some(h) = s.invite.take() {
                h.abort();
            }
            self.ctx.dialog_layer.remove_dialog(&s.dialog.id());
        }
        debug!(call = self.call_no, "call cleaned up");
    }
}

async fn recv_opt(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn recv_events(events: Option<&mut DialogStateReceiver>) -> Option<DialogState> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn join_opt(
    handle: Option<&mut JoinHandle<InviteAsyncResult>>,
) -> Result<InviteAsyncResult, tokio::task::JoinError> {
    match handle {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}
