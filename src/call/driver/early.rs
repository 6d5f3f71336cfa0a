//! Early media (`sip.early_media`): the voice menu plays in a `183 Session Progress` and the
//! call is answered (`200`) only once it is bridged, so callers whose PIN fails are never
//! billed for a connected call. A call that ends before that gets a final error response
//! instead of a BYE.

use super::CallDriver;
use crate::sip::capabilities::answer_headers;
use crate::sip::legs::sdp_content_type;
use crate::sip::session_timer::SessionTimer;
use rsipstack::sip::StatusCode;
use std::time::Instant;
use tracing::info;

/// The 200 an early-media call still owes the caller.
pub(super) struct EarlyAnswer {
    /// The SDP answer already sent in the 183 (the 200 repeats it).
    pub body: Vec<u8>,
    /// The session timer, started by the 200.
    pub timer: Option<SessionTimer>,
}

impl CallDriver {
    /// Sends the 200 of an early-media call (once), starting its session timer at `now`.
    pub(super) fn answer_if_early(&mut self, now: Instant) {
        let Some(early) = self.early.take() else {
            return;
        };
        let mut timer = early.timer;
        if let Some(t) = timer.as_mut() {
            t.handle_refresh(now);
        }
        let mut headers = vec![sdp_content_type()];
        headers.extend(answer_headers(timer.as_ref()));
        self.session = timer;
        if self.trunk.accept(Some(headers), Some(early.body)).is_err() {
            info!(call = self.call_no, "the caller left before the answer");
        }
    }

    /// Ends an early-media call that was never answered: `480 Temporarily Unavailable`.
    pub(super) fn reject_early(&mut self) {
        self.early = None;
        self.trunk
            .reject(Some(StatusCode::TemporarilyUnavailable), None)
            .ok();
    }
}
