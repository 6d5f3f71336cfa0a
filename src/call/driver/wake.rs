//! What wakes a call's task, and how each becomes an input of the core: SIP dialog events of
//! both legs (parsed here, once), the server INVITE's final response, the media path's news,
//! the answers of the call's tasks, the timer and the drain.

use super::{lookups, CallDriver};
use crate::call::core::{CallerEvent, InDialog, MediaEvent, MeetingAnswer, ServerEvent, Side};
use crate::media::relay::PathEvent;
use crate::ops::end_signal::CallsEnding;
use crate::routing::ConferenceTarget;
use crate::sip::dtmf_info::parse_info_digit;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Method, StatusCodeKind};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::task::JoinError;
use tracing::info;

/// What woke the driver up.
pub(super) enum Wake {
    /// The call's packets carried a digit, or moved the media's deadline.
    Path(PathEvent),
    /// A dialog event of one leg (`None`: its channel closed).
    Dialog(Side, Option<DialogState>),
    /// The server INVITE's final response.
    Invite(Result<InviteAsyncResult, JoinError>),
    /// The server's SIP port answered ICMP unreachable while its INVITE was out.
    ServerRefused,
    /// Our OPTIONS to the bridged server came back (`true`: it holds the leg).
    ServerReached(Result<bool, JoinError>),
    /// The directory changed while watched (`false`: it is gone).
    Directory(bool),
    /// The directory changed while bridged (`false`: it is gone): the server's health may have.
    Health(bool),
    /// A meeting lookup answered.
    Lookup(Result<lookups::Found, JoinError>),
    /// An OPTIONS probe or session refresh to the caller came back (`true`: still there).
    Reached(Result<bool, JoinError>),
    /// The shared numbering answered (a number, or `None`/an error: number locally).
    Numbered(ConferenceTarget, Result<Option<u64>, JoinError>),
    Timer,
    Shutdown,
}

impl CallDriver {
    /// Waits for the next wake-up.
    pub(super) async fn wait(
        &mut self,
        mut timer: Pin<&mut tokio::time::Sleep>,
        calls_ending: &mut CallsEnding,
    ) -> Wake {
        std::future::poll_fn(|cx| {
            if let Some(Poll::Ready(e)) = self.path.as_ref().map(|p| p.poll_event(cx)) {
                return Poll::Ready(Wake::Path(e));
            }
            match self.poll_sources(cx, timer.as_mut(), calls_ending) {
                Some(wake) => Poll::Ready(wake),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Polls every wake-up source but the media path; the first that is ready, if any.
    fn poll_sources(
        &mut self,
        cx: &mut Context<'_>,
        timer: Pin<&mut tokio::time::Sleep>,
        calls_ending: &mut CallsEnding,
    ) -> Option<Wake> {
        if let Poll::Ready(ev) = self.trunk_events.poll_recv(cx) {
            return Some(Wake::Dialog(Side::Caller, ev));
        }
        if let Some(s) = self.server.as_mut() {
            if let Poll::Ready(ev) = s.events.poll_recv(cx) {
                return Some(Wake::Dialog(Side::Server, ev));
            }
            if let Some(Poll::Ready(r)) = s.invite.as_mut().map(|h| Pin::new(h).poll(cx)) {
                s.invite = None;
                if let Some(check) = s.port_check.take() {
                    check.abort();
                }
                return Some(Wake::Invite(r));
            }
            if let Some(Poll::Ready(r)) = s.probe.as_mut().map(|h| Pin::new(h).poll(cx)) {
                s.probe = None;
                return Some(Wake::ServerReached(r));
            }
            if let Some(Poll::Ready(r)) = s.port_check.as_mut().map(|h| Pin::new(h).poll(cx)) {
                s.port_check = None;
                if matches!(r, Ok(true)) {
                    return Some(Wake::ServerRefused);
                }
            }
        }
        if let Some(Poll::Ready(open)) = self.directory.as_mut().map(|w| w.poll_changed(cx)) {
            return Some(Wake::Directory(open));
        }
        if let Some(Poll::Ready(open)) = self.health.as_mut().map(|(w, _)| w.poll_changed(cx)) {
            return Some(Wake::Health(open));
        }
        if let Some(Poll::Ready(r)) = self.lookup.as_mut().map(|h| Pin::new(h).poll(cx)) {
            self.lookup = None;
            return Some(Wake::Lookup(r));
        }
        if let Some(Poll::Ready(r)) = self.caller_request.as_mut().map(|h| Pin::new(h).poll(cx)) {
            self.caller_request = None;
            return Some(Wake::Reached(r));
        }
        if let Some(Poll::Ready(r)) = self.numbering.as_mut().map(|(_, h)| Pin::new(h).poll(cx)) {
            let (target, _) = self.numbering.take().expect("polled just now");
            return Some(Wake::Numbered(target, r));
        }
        if timer.poll(cx).is_ready() {
            return Some(Wake::Timer);
        }
        if !self.shutdown_seen && Pin::new(calls_ending).poll(cx).is_ready() {
            return Some(Wake::Shutdown);
        }
        None
    }

    /// Hands what woke the task to the core.
    pub(super) fn on_wake(&mut self, now: Instant, wake: Wake) {
        let core = &mut self.core;
        match wake {
            Wake::Path(PathEvent::Digit(d)) => core.handle_media(now, MediaEvent::Digit(d)),
            // The timer is re-armed at the top of the loop.
            Wake::Path(PathEvent::DeadlineMoved) => {}
            Wake::Path(PathEvent::Failed) => core.handle_media(now, MediaEvent::Failed),
            Wake::Path(PathEvent::ServerUnreachable) => {
                core.handle_media(now, MediaEvent::ServerUnreachable)
            }
            Wake::Dialog(side, Some(ev)) => self.on_dialog_event(now, side, ev),
            Wake::Dialog(Side::Caller, None) => core.handle_caller(now, CallerEvent::HungUp),
            Wake::Dialog(Side::Server, None) => {}
            Wake::Invite(r) => {
                let ev = self.invite_result(r);
                self.core.handle_server(now, ev);
            }
            // A task that failed says nothing about the server: still there.
            Wake::ServerReached(r) => self.core.handle_server(
                now,
                ServerEvent::Reached {
                    alive: r.unwrap_or(true),
                },
            ),
            Wake::ServerRefused => {
                info!(
                    call = self.call_no,
                    server = self.server_name.as_deref().unwrap_or(""),
                    "the server's SIP port is unreachable (ICMP): not waiting for its answer"
                );
                self.core.handle_server(now, ServerEvent::Failed);
            }
            Wake::Directory(true) => core.handle_directory_changed(now),
            Wake::Directory(false) => {
                self.directory = None;
                core.handle_directory_closed();
            }
            Wake::Health(true) => self.check_server_health(now),
            Wake::Health(false) => self.health = None,
            // A task that failed says nothing about the caller: still there.
            Wake::Reached(r) => core.handle_caller(
                now,
                CallerEvent::Reached {
                    alive: r.unwrap_or(true),
                },
            ),
            Wake::Lookup(r) => {
                let answer = match r {
                    Ok(found) => self.meeting_answer(now, found),
                    Err(_) => MeetingAnswer::Failed("the lookup task failed".into()),
                };
                self.core.handle_meeting_answer(now, answer);
            }
            Wake::Numbered(target, r) => {
                let shared = r.ok().flatten();
                self.numbered(now, target, shared);
            }
            Wake::Timer => self.on_timer(now),
            Wake::Shutdown => {
                self.shutdown_seen = true;
                core.handle_shutdown(now);
            }
        }
    }

    /// A dialog event of either leg, parsed into the core's terms. In-dialog requests are
    /// kept until the core answers them (in this same wake-up).
    fn on_dialog_event(&mut self, now: Instant, side: Side, ev: DialogState) {
        let request = match ev {
            DialogState::Confirmed(..) if side == Side::Caller => {
                // A late offer's answer is in the ACK; otherwise the body is empty.
                let body = self
                    .trunk
                    .last_remote_ack()
                    .map(|ack| ack.body)
                    .unwrap_or_default();
                self.core.handle_caller(now, CallerEvent::Acked { body });
                return;
            }
            DialogState::Terminated(..) => {
                match side {
                    Side::Caller => self.core.handle_caller(now, CallerEvent::HungUp),
                    Side::Server => self.core.handle_server(now, ServerEvent::HungUp),
                }
                return;
            }
            DialogState::Info(_, req, handle) => {
                let ct = req.header_value("Content-Type").unwrap_or_default();
                let info = InDialog::Info {
                    digit: parse_info_digit(&ct, &req.body),
                    empty: req.body.is_empty(),
                };
                (handle, info)
            }
            DialogState::Updated(_, req, handle) => {
                let offer = InDialog::Offer {
                    update: req.method == Method::Update,
                    body: req.body,
                };
                (handle, offer)
            }
            DialogState::Options(_, _, handle) => (handle, InDialog::Options),
            DialogState::Notify(_, _, handle)
            | DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle)
            | DialogState::Publish(_, _, handle) => (handle, InDialog::Unsupported),
            // Other dialog states need no answer.
            _ => return,
        };
        let (handle, req) = request;
        let id = self.hold_request(handle);
        match side {
            Side::Caller => {
                // A re-INVITE may put the call on hold: the core needs the member's mute.
                if matches!(req, InDialog::Offer { .. }) {
                    self.refresh_member_muted();
                }
                self.core.handle_caller(now, CallerEvent::Request(id, req))
            }
            Side::Server => self.core.handle_server(now, ServerEvent::Request(id, req)),
        }
    }

    /// The server INVITE's final response (or its failure) in the core's terms.
    fn invite_result(&self, r: Result<InviteAsyncResult, JoinError>) -> ServerEvent {
        match r {
            Ok(Ok((_, Some(resp)))) if resp.status_code.kind() == StatusCodeKind::Successful => {
                ServerEvent::Answered { body: resp.body }
            }
            Ok(Ok((_, Some(resp)))) => {
                info!(call = self.call_no, status = %resp.status_code, "server leg refused");
                ServerEvent::Refused
            }
            _ => ServerEvent::Failed,
        }
    }
}
