//! The trunk leg's timers in the driver: the session timer (dialin's own refreshes, the end of
//! a session nobody refreshed, the session headers of answers to the caller's refreshes) and
//! the wait for the caller's ACK.

use super::CallDriver;
use crate::call::flow::FlowInput;
use crate::sip::legs::sdp_content_type;
use crate::sip::sdp;
use rsipstack::sip::Header;
use std::time::Instant;
use tracing::{debug, info};

impl CallDriver {
    /// Acts on the session timer's deadlines at `now`; true when the session expired (the
    /// call is then ending).
    pub(super) fn on_session_timer(&mut self, now: Instant) -> bool {
        let Some(timer) = self.session.as_mut() else {
            return false;
        };
        if timer.poll_expiry() <= now {
            info!(
                call = self.call_no,
                "session timer expired without a refresh: ending call"
            );
            self.session = None;
            // The same ending as a dead media path: both legs get BYE.
            self.flow.handle_input(now, FlowInput::MediaTimeout);
            return true;
        }
        if timer.poll_refresh().is_some_and(|t| t <= now) {
            // Counted as refreshed when sent; a refresh that fails leaves the caller's side
            // to end the call (its own timer runs on the same interval).
            timer.handle_refresh(now);
            let headers = vec![
                sdp_content_type(),
                Header::SessionExpires(timer.session_expires().into()),
                Header::Supported("timer".into()),
            ];
            self.sdp_version += 1;
            let body = self.caller_sdp_body();
            let dialog = self.trunk.clone();
            let call_no = self.call_no;
            tokio::spawn(async move {
                let ok = matches!(dialog.reinvite(Some(headers), Some(body)).await, Ok(Some(r)) if r.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful);
                debug!(call = call_no, ok, "session refreshed by re-INVITE");
            });
        }
        false
    }

    /// Ends a call whose caller never acknowledged our 200 within [`super::ACK_WAIT`]; true
    /// when it did so.
    pub(super) fn on_ack_timeout(&mut self, now: Instant) -> bool {
        if self.ack_due.is_none_or(|due| now < due) {
            return false;
        }
        self.ack_due = None;
        info!(call = self.call_no, "no ACK for the answer: ending call");
        let dialog = self.trunk.clone();
        tokio::spawn(async move { dialog.bye().await.ok() });
        self.flow.handle_input(now, FlowInput::CallerHungUp);
        true
    }

    /// Our current SDP toward the caller (for a refresh re-INVITE or a re-INVITE without SDP).
    pub(super) fn caller_sdp_body(&self) -> Vec<u8> {
        let port = self.caller_port.port();
        let sdp = sdp::build_answer(
            self.ctx.advertise,
            port,
            &self.caller_sdp,
            self.session_id,
            self.sdp_version,
            self.caller_sdp.direction.answer_to(),
        );
        self.path
            .with(|p| p.srtp.as_ref().map(|s| s.secure(&sdp)))
            .unwrap_or(sdp)
            .into_bytes()
    }

    /// The caller refreshed the session (a re-INVITE or UPDATE we answer 2xx) at `now`:
    /// restarts the timer and returns the session headers for the 2xx.
    pub(super) fn caller_refreshed(&mut self, now: Instant) -> Vec<Header> {
        match self.session.as_mut() {
            Some(t) => {
                t.handle_refresh(now);
                crate::sip::capabilities::answer_headers(Some(t))
            }
            None => Vec::new(),
        }
    }
}
