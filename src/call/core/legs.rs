//! Both legs' SDP state in the core: our answers to re-INVITEs and UPDATEs (a new address,
//! hold, a new SRTP key, a session refresh), the server leg being dialled and answered, and
//! in-dialog requests of either leg.

use super::{Call, CallAction, InDialog, LocalSdp, ReplyStatus, RequestId, ServerEvent, Side};
use crate::call::flow::{DigitSource, FlowInput, FlowState};
use crate::media::call_media::{Leg, LegCodec};
use crate::routing::ConferenceTarget;
use crate::sip::sdes::{self, SdesAnswer};
use crate::sip::sdp::{self, Direction, MediaOffer, Negotiated, SdpError, SUPPORTED_LAWS};
use std::time::Instant;
use tracing::info;

/// Negotiates a caller's SDP (an offer, or the answer a late offer's ACK carries) against
/// the laws dialin speaks.
pub(super) fn negotiate_caller(body: &[u8]) -> Result<Negotiated, SdpError> {
    MediaOffer::parse(body).and_then(|o| sdp::negotiate(&o, &SUPPORTED_LAWS))
}

/// The server leg as the core sees it.
#[derive(Debug, Default)]
struct ServerSdp {
    /// The flow asked for the server (numbering, then dialling).
    wanted: bool,
    /// The INVITE went out from this RTP port.
    port: Option<u16>,
    /// The telephone-event payload type we offered (used if the answer lacks one).
    offered_te: u8,
    /// The server answered 2xx (its BYE then ends the call).
    answered: bool,
    /// Its SDP once answered, for answering its re-INVITEs.
    sdp: Option<Negotiated>,
    /// The answered leg's media, handed to the relay on `Bridge`.
    pending: Option<Leg>,
    /// Whether the server's Event Socket can mute (the mute key is then kept from it).
    can_mute: bool,
}

/// Both legs' SDP state.
#[derive(Debug)]
pub(super) struct Legs {
    /// Our address, caller port and session id.
    local: LocalSdp,
    /// SRTP on the caller leg: our crypto line and the caller's current key.
    srtp: Option<SdesAnswer>,
    /// The `o=` version of the next SDP we send (one counter for both legs).
    version: u64,
    /// The caller's negotiated SDP, once known (a late offer knows it at the ACK).
    caller: Option<Negotiated>,
    /// The server leg.
    server: ServerSdp,
}

impl Legs {
    pub(super) fn new(local: LocalSdp, srtp: Option<SdesAnswer>) -> Legs {
        Legs {
            local,
            srtp,
            version: 1,
            caller: None,
            server: ServerSdp::default(),
        }
    }

    /// The caller's SDP is negotiated: its leg for the media path.
    pub(super) fn set_caller(&mut self, n: Negotiated) -> Leg {
        let codec = LegCodec {
            law: n.law,
            pt: n.pt,
            telephone_event_pt: n.telephone_event_pt,
        };
        let leg = Leg::new(n.remote, codec, true);
        self.caller = Some(n);
        leg
    }

    /// The caller's negotiated SDP, once known.
    pub(super) fn caller(&self) -> Option<&Negotiated> {
        self.caller.as_ref()
    }

    /// Our current SDP toward the caller (a new version when `bump`: a refresh we send).
    pub(super) fn caller_body(&mut self, bump: bool) -> Option<Vec<u8>> {
        if bump {
            self.version += 1;
        }
        let n = self.caller.as_ref()?;
        let body = sdp::build_answer(
            self.local.advertise,
            self.local.caller_port,
            n,
            self.local.session_id,
            self.version,
            n.direction.answer_to(),
        );
        Some(self.secure(body).into_bytes())
    }

    /// Our current SDP toward the server (its bodiless re-INVITE wants our offer).
    fn server_body(&self) -> Option<Vec<u8>> {
        let n = self.server.sdp.as_ref()?;
        let port = self.server.port?;
        let body = sdp::build_answer(
            self.local.advertise,
            port,
            n,
            self.local.session_id,
            self.version,
            n.direction.answer_to(),
        );
        Some(body.into_bytes())
    }

    /// `body` with our crypto line where the caller leg uses SRTP.
    fn secure(&self, body: String) -> String {
        match &self.srtp {
            Some(s) => s.secure(&body),
            None => body,
        }
    }

    /// The flow asked to dial the server.
    pub(super) fn server_wanted(&mut self) {
        self.server.wanted = true;
    }

    /// Whether a server leg was dialled (it may need a BYE).
    pub(super) fn server_dialled(&self) -> bool {
        self.server.port.is_some()
    }

    /// Whether the mute key goes to the Event Socket.
    pub(super) fn server_can_mute(&self) -> bool {
        self.server.can_mute
    }

    /// The answered server leg's media, once.
    pub(super) fn take_pending_server(&mut self) -> Option<Leg> {
        self.server.pending.take()
    }

    /// The server's SDP direction, once it answered.
    pub(super) fn server_direction(&self) -> Option<Direction> {
        self.server.sdp.as_ref().map(|n| n.direction)
    }

    /// Whether the caller holds the call (its SDP says `sendonly` or `inactive`).
    pub(super) fn caller_holds(&self) -> bool {
        self.caller
            .as_ref()
            .is_some_and(|n| matches!(n.direction, Direction::SendOnly | Direction::Inactive))
    }

    /// The server leg is lost: a new one starts from nothing.
    pub(super) fn server_gone(&mut self) {
        self.server = ServerSdp::default();
    }
}

impl Call {
    /// The caller has its number in the conference: dial the server, if the call still
    /// wants it (a caller who hung up meanwhile does not get a server leg). `can_mute`: the
    /// server's Event Socket can mute.
    pub fn handle_numbered(
        &mut self,
        now: Instant,
        target: ConferenceTarget,
        seq: u64,
        can_mute: bool,
    ) {
        let wanted = self.legs.server.wanted && self.legs.server.port.is_none();
        if self.flow.state() != FlowState::ConnectingServer || !wanted {
            return;
        }
        let Some(caller) = self.legs.caller() else {
            return;
        };
        // Dialled again after a loss: the same number in the meeting (the same masked caller
        // ID the participants saw).
        let seq = *self.loss.seq.get_or_insert(seq);
        self.joined = Some(target.clone());
        let law = caller.law;
        let te = caller
            .telephone_event_pt
            .unwrap_or(sdp::DEFAULT_TELEPHONE_EVENT_PT);
        self.legs.server.offered_te = te;
        self.legs.server.can_mute = can_mute;
        self.actions.push_back(CallAction::DialServer {
            target,
            seq,
            law,
            telephone_event_pt: te,
        });
        self.pump(now);
    }

    pub(super) fn on_server(&mut self, now: Instant, event: ServerEvent) {
        let server = &mut self.legs.server;
        match event {
            ServerEvent::Dialled { port } => server.port = Some(port),
            ServerEvent::Failed | ServerEvent::Refused if !server.answered => {
                info!(call = self.call_no, "server leg failed or refused");
                self.flow.handle_input(now, FlowInput::ServerFailed);
            }
            ServerEvent::Failed | ServerEvent::Refused => {}
            ServerEvent::Answered { body } => self.on_server_answer(now, &body),
            ServerEvent::HungUp => {
                if server.answered {
                    self.flow.handle_input(now, FlowInput::ServerHungUp);
                }
            }
            ServerEvent::Request(id, req) => self.on_request(now, Side::Server, id, req),
            ServerEvent::Reached { alive } => self.on_server_reached(now, alive),
        }
    }

    /// The server's 2xx: its codec must be the caller's (dialin does not transcode).
    fn on_server_answer(&mut self, now: Instant, body: &[u8]) {
        let Some(law) = self.legs.caller().map(|c| c.law) else {
            return;
        };
        let server = &mut self.legs.server;
        if server.answered || server.port.is_none() {
            return;
        }
        server.answered = true;
        let negotiated = MediaOffer::parse(body).and_then(|o| sdp::negotiate(&o, &[law]));
        match negotiated {
            Ok(n) if n.law == law => {
                let codec = LegCodec {
                    law: n.law,
                    pt: n.pt,
                    telephone_event_pt: n.telephone_event_pt.or(Some(server.offered_te)),
                };
                server.pending = Some(Leg::new(n.remote, codec, false));
                server.sdp = Some(n);
                self.flow.handle_input(now, FlowInput::ServerAnswered);
            }
            _ => {
                info!(
                    call = self.call_no,
                    "server answered without a usable codec"
                );
                self.actions.push_back(CallAction::HangUpServer);
                self.flow.handle_input(now, FlowInput::ServerFailed);
            }
        }
    }

    /// An in-dialog request of either leg.
    pub(super) fn on_request(&mut self, now: Instant, side: Side, id: RequestId, req: InDialog) {
        let status = match (side, req) {
            (_, InDialog::Offer { update, body }) => {
                return self.on_offer(now, side, id, update, &body)
            }
            (Side::Caller, InDialog::Info { digit: Some(d), .. }) => {
                self.reply(id, ReplyStatus::Ok, None, None);
                self.flow
                    .handle_input(now, FlowInput::Digit(d, DigitSource::Info));
                return;
            }
            (Side::Caller, InDialog::Info { empty: false, .. }) => {
                ReplyStatus::UnsupportedMediaType
            }
            (_, InDialog::Info { .. } | InDialog::Options) => ReplyStatus::Ok,
            (_, InDialog::Unsupported) => ReplyStatus::MethodNotAllowed,
        };
        self.reply(id, status, None, None);
    }

    fn reply(
        &mut self,
        request: RequestId,
        status: ReplyStatus,
        session: Option<crate::sip::session_timer::SessionTimer>,
        sdp: Option<Vec<u8>>,
    ) {
        self.actions.push_back(CallAction::Reply {
            request,
            status,
            session,
            sdp,
        });
    }

    /// The caller refreshed the session (a re-INVITE or UPDATE we answer 2xx) at `now`.
    fn caller_refreshed(&mut self, now: Instant) {
        if let Some(mut t) = self.session {
            t.handle_refresh(now);
            self.set_session(Some(t));
        }
    }

    /// A re-INVITE (or UPDATE) on either leg: same codec, possibly a new address or hold.
    /// Answered with our current media; an offer without our codec gets 488 and changes
    /// nothing. On the caller leg it is also a session refresh (RFC 4028). One without SDP
    /// (a pure refresh) gets our current SDP (re-INVITE) or no body (UPDATE).
    fn on_offer(&mut self, now: Instant, side: Side, id: RequestId, update: bool, body: &[u8]) {
        if body.is_empty() {
            let (session, sdp) = match side {
                Side::Caller => {
                    self.caller_refreshed(now);
                    (
                        self.session,
                        (!update).then(|| self.legs.caller_body(false)).flatten(),
                    )
                }
                Side::Server => (None, (!update).then(|| self.legs.server_body()).flatten()),
            };
            self.reply(id, ReplyStatus::Ok, session, sdp);
            return;
        }
        let (current, port) = match side {
            Side::Caller => (self.legs.caller.as_ref(), Some(self.legs.local.caller_port)),
            Side::Server => (self.legs.server.sdp.as_ref(), self.legs.server.port),
        };
        let renegotiated = current
            .zip(port)
            .map(|(c, p)| (sdp::renegotiate(c, body), p));
        let Some((Ok(new), port)) = renegotiated else {
            self.reply(id, ReplyStatus::NotAcceptableHere, None, None);
            return;
        };
        // We may receive when the peer sends (sendrecv/sendonly) and send when it receives
        // (sendrecv/recvonly): hold (sendonly/inactive) stops our sending.
        let sending = matches!(new.direction, Direction::SendRecv | Direction::RecvOnly);
        match (side, self.legs.server.pending.as_mut()) {
            // Answered but not bridged yet: the leg is still ours to change.
            (Side::Server, Some(leg)) => leg.update(new.remote, sending),
            _ => self.actions.push_back(CallAction::UpdateLeg {
                side,
                remote: new.remote,
                sending,
            }),
        }
        self.legs.version += 1;
        let answer = sdp::build_answer(
            self.legs.local.advertise,
            port,
            &new,
            self.legs.local.session_id,
            self.legs.version,
            new.direction.answer_to(),
        );
        let (session, answer) = match side {
            Side::Caller => {
                let held = self.legs.caller_holds();
                self.legs.caller = Some(new);
                if held != self.legs.caller_holds() {
                    self.hold_changed();
                }
                self.caller_refreshed(now);
                self.rekey(body);
                (self.session, self.legs.secure(answer))
            }
            Side::Server => {
                self.legs.server.sdp = Some(new);
                (None, answer)
            }
        };
        self.reply(id, ReplyStatus::Ok, session, Some(answer.into_bytes()));
    }

    /// A caller's re-offer with a new SRTP key: decrypt with it from now on.
    fn rekey(&mut self, body: &[u8]) {
        let Some(srtp) = self.legs.srtp.as_mut() else {
            return;
        };
        if let Some((_, key)) = sdes::parse_offer(body).crypto {
            if key != srtp.remote_key {
                srtp.remote_key = key;
                self.actions.push_back(CallAction::Rekey(key));
            }
        }
    }
}
