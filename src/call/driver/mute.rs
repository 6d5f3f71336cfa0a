//! The mute key over the server's Event Socket: `conference <name> tmute <member>`, or the
//! key forwarded where the server has none or our member is not known (better a key BBB's
//! caller controls may act on than a key that does nothing).

use super::CallDriver;
use crate::digit::Digit;
use tracing::{info, warn};

impl CallDriver {
    /// Toggles the caller's mute in the conference.
    pub(super) fn toggle_mute(&mut self, digit: Digit) {
        let server = self.server_name.as_deref().unwrap_or("");
        let (Some(esl), Some(dir)) = (self.ctx.esl.get(server), self.settings.router.directory())
        else {
            self.send_digit(digit);
            return;
        };
        match dir.member(server, &self.dialin_call) {
            Some((conference, member)) => {
                let sent = esl.api(format!("conference {} tmute {member}", conference.expose()));
                info!(call = self.call_no, server, sent, "mute key: toggling mute");
            }
            None => {
                warn!(
                    call = self.call_no,
                    server,
                    "mute key: our conference member is not known (no add-member event seen); forwarding the key instead"
                );
                self.send_digit(digit);
            }
        }
    }

    /// Sends `digit` to the server as RFC 4733.
    pub(super) fn send_digit(&self, digit: Digit) {
        if let Some(path) = &self.path {
            path.with(|p| p.media.send_digit(digit));
        }
    }
}
