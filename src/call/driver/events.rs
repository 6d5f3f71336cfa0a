//! The driver's answers to SIP events of both legs: ACK, BYE, INFO digits, re-INVITEs (hold),
//! and the server leg's final response.

use super::CallDriver;
use crate::call::flow::{DigitSource, FlowInput};
use crate::media::call_media::{Leg, LegCodec};
use crate::sip::dtmf_info::parse_info_digit;
use crate::sip::legs::sdp_content_type;
use crate::sip::sdp::{self, Direction, MediaOffer};
use rsipstack::dialog::dialog::{DialogState, TransactionHandle};
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, Request, StatusCode, StatusCodeKind};
use std::time::Instant;
use tracing::info;

impl CallDriver {
    pub(super) async fn on_trunk_event(&mut self, now: Instant, ev: DialogState) {
        match ev {
            // A re-INVITE's ACK confirms the dialog again: answer the flow once.
            DialogState::Confirmed(..) if !self.caller_confirmed => {
                self.caller_confirmed = true;
                crate::ops::metrics::setup_latency("caller_answer", now - self.invite_at);
                self.ack_due = None;
                self.flow.handle_input(now, FlowInput::CallerAnswered);
            }
            DialogState::Terminated(..) => {
                self.flow.handle_input(now, FlowInput::CallerHungUp);
            }
            DialogState::Info(_, req, handle) => self.on_info(now, &req, handle).await,
            DialogState::Updated(_, req, handle) => {
                self.on_reinvite(now, Side::Caller, &req, handle).await
            }
            DialogState::Options(_, _, handle) => {
                handle.reply(StatusCode::OK).await.ok();
            }
            other => refuse_other_request(other).await,
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

    /// A re-INVITE (or UPDATE) on either leg: same codec, possibly a new address or hold.
    /// Answered with our current media; an offer without our codec gets 488 and changes
    /// nothing. On the caller leg it is also a session refresh (RFC 4028): the 2xx carries the
    /// session headers, and one without SDP (a pure refresh) gets our current SDP (re-INVITE)
    /// or no body (UPDATE).
    // Over 80 lines: both legs share it, and each step (refresh without SDP, answer, hold
    // state, keep the new SDP) differs by leg in a line or two.
    async fn on_reinvite(
        &mut self,
        now: Instant,
        side: Side,
        req: &Request,
        handle: TransactionHandle,
    ) {
        if req.body.is_empty() {
            let (headers, body) = match side {
                Side::Caller => {
                    let mut headers = self.caller_refreshed(now);
                    if req.method == Method::Invite {
                        headers.push(sdp_content_type());
                        (headers, Some(self.caller_sdp_body()))
                    } else {
                        (headers, None)
                    }
                }
                Side::Server => (Vec::new(), None),
            };
            handle
                .respond(StatusCode::OK, Some(headers), body)
                .await
                .ok();
            return;
        }
        let (current, local_port) = match side {
            Side::Caller => (Some(&self.caller_sdp), self.caller_port.port()),
            Side::Server => match self.server.as_ref() {
                Some(s) => (s.sdp.as_ref(), s.port.port()),
                None => (None, 0),
            },
        };
        let renegotiated = current.map(|c| sdp::renegotiate(c, &req.body));
        let Some(Ok(new)) = renegotiated else {
            handle.reply(StatusCode::NotAcceptableHere).await.ok();
            return;
        };
        // We may receive when the peer sends (sendrecv/sendonly) and send when it receives
        // (sendrecv/recvonly): hold (sendonly/inactive) stops our sending.
        let sending = matches!(new.direction, Direction::SendRecv | Direction::RecvOnly);
        let pending = &mut self.pending_server_leg;
        self.path.with(|p| {
            let leg = match side {
                Side::Caller => Some(&mut p.media.caller),
                Side::Server => p.media.server.as_mut().or(pending.as_mut()),
            };
            if let Some(leg) = leg {
                leg.update(new.remote, sending);
            }
        });
        self.sdp_version += 1;
        let answer = sdp::build_answer(
            self.ctx.advertise,
            local_port,
            &new,
            self.session_id,
            self.sdp_version,
            new.direction.answer_to(),
        );
        match side {
            Side::Caller => self.caller_sdp = new,
            Side::Server => {
                if let Some(s) = self.server.as_mut() {
                    s.sdp = Some(new);
                }
            }
        }
        let mut headers = vec![sdp_content_type()];
        let mut answer = answer;
        if let Side::Caller = side {
            headers.extend(self.caller_refreshed(now));
            if let Some(secured) = self.path.with(|p| {
                let s = p.srtp.as_mut()?;
                s.handle_offer(&req.body);
                Some(s.secure(&answer))
            }) {
                answer = secured;
            }
        }
        handle
            .respond(StatusCode::OK, Some(headers), Some(answer.into_bytes()))
            .await
            .ok();
    }

    pub(super) async fn on_server_event(&mut self, now: Instant, ev: DialogState) {
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
            DialogState::Updated(_, req, handle) => {
                self.on_reinvite(now, Side::Server, &req, handle).await
            }
            other => refuse_other_request(other).await,
        }
    }

    /// The server leg's INVITE got its final response (or failed).
    pub(super) fn on_invite_result(
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
        let caller_codec = self.path.with(|p| p.media.caller.codec());
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
                server.sdp = Some(n);
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
}

/// Which leg an event belongs to.
#[derive(Clone, Copy)]
enum Side {
    Caller,
    Server,
}

/// In-dialog requests dialin has no use for (NOTIFY, REFER, MESSAGE, PUBLISH) get 405; other
/// dialog states need no answer.
async fn refuse_other_request(ev: DialogState) {
    if let DialogState::Notify(_, _, h)
    | DialogState::Refer(_, _, h)
    | DialogState::Message(_, _, h)
    | DialogState::Publish(_, _, h) = ev
    {
        h.reply(StatusCode::MethodNotAllowed).await.ok();
    }
}
