//! Is a holding caller still there? A caller on hold (`sendonly`, `inactive`) may send no RTP
//! at all, so `media.timeout` cannot judge it; without a session timer nothing would ever end
//! the call of a phone that vanished while holding. Every `media.timeout` while the caller
//! holds, the core asks its phone with an in-dialog OPTIONS (as Kamailio's dialog keepalives
//! and Asterisk's qualify do): any answer but 408 and 481 means it is there; none, 408 or 481
//! end the call like a dead media path. A failed session refresh says the same.

use super::{Call, CallAction};
use crate::call::flow::FlowInput;
use std::time::Instant;
use tracing::info;

impl Call {
    /// Sends the holding caller an OPTIONS, unless one is out already or the session timer
    /// judges the call (its refreshes, or their absence, say whether the phone is there).
    pub(super) fn probe_holding_caller(&mut self) {
        if self.session.is_some() || self.caller_probe || !self.confirmed || self.finished {
            return;
        }
        self.caller_probe = true;
        self.actions.push_back(CallAction::ProbeCaller);
    }

    /// An in-dialog request to the caller (probe or refresh) came back: `alive` or not.
    pub(super) fn on_caller_reached(&mut self, now: Instant, alive: bool) {
        self.caller_probe = false;
        if alive || self.finished {
            return;
        }
        info!(
            call = self.call_no,
            "the caller's phone no longer answers in its dialog (no answer, 408 or 481): ending call"
        );
        self.flow.handle_input(now, FlowInput::MediaTimeout);
    }
}
