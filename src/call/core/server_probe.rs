//! A bridged server whose silence does not count (`media.server_silence = "off"`, for
//! conference servers that send nothing while nobody speaks) is asked with an in-dialog
//! OPTIONS every `media.server_probe` (default [`SERVER_PROBE`]; `off`: never): any answer but 408 and 481 says it holds the leg; none
//! (the transaction's 32 s), 408 or 481 are the SIP failure that makes the leg lost, like its
//! silence would (issue 22, item 1). A BBB server's leg is judged by its silence, which tells
//! within a second: no OPTIONS go to it.

use super::{Call, CallAction, Timer};
use crate::call::flow::FlowState;
use std::time::{Duration, Instant};

/// How often a bridged server whose silence does not count is asked, by default
/// (`media.server_probe`).
pub const SERVER_PROBE: Duration = Duration::from_secs(5);

impl Call {
    /// The bridge is up: where silence does not count, the first OPTIONS is due.
    pub(super) fn arm_server_probe(&mut self, now: Instant) {
        let asked = self.server_silence.is_zero() && !self.server_probe.is_zero();
        let at = asked.then(|| now + self.server_probe);
        self.timers.set(Timer::ServerProbe, at);
    }

    /// Sends the bridged server an OPTIONS, unless one is out already.
    pub(super) fn probe_server(&mut self, now: Instant) {
        if self.flow.state() != FlowState::Bridged || self.finished {
            self.timers.set(Timer::ServerProbe, None);
            return;
        }
        if !self.server_probe_out {
            self.server_probe_out = true;
            self.actions.push_back(CallAction::ProbeServer);
        }
        self.timers
            .set(Timer::ServerProbe, Some(now + self.server_probe));
    }

    /// Our OPTIONS to the server came back: `alive` or not.
    pub(super) fn on_server_reached(&mut self, now: Instant, alive: bool) {
        self.server_probe_out = false;
        if !alive && self.flow.state() == FlowState::Bridged && !self.finished {
            self.server_lost(now, "sip");
        }
    }
}
