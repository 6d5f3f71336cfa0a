//! The caller's mute over the server's Event Socket. The mute key toggles
//! (`conference <name> tmute <member>`), or is forwarded where the server has none or our
//! member is not known (better a key BBB's caller controls may act on than a key that does
//! nothing). Hold and rejoin set a state (`mute` / `unmute`), so a moderator's mute is never
//! toggled away.

use super::CallDriver;
use crate::digit::Digit;
use std::time::Duration;
use tracing::{info, warn};

/// How long a mute or unmute waits for our member to be known (its add-member event).
const MEMBER_WAIT: Duration = Duration::from_secs(2);
/// How often it looks meanwhile.
const MEMBER_LOOK: Duration = Duration::from_millis(20);

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

    /// Mutes or unmutes the caller's member (hold, rejoin); nothing without an Event Socket.
    /// A member just dialled (the rejoin) is known only once FreeSWITCH's add-member event
    /// came, a few milliseconds after the bridge: the command waits for it in a task of its
    /// own, up to [`MEMBER_WAIT`].
    pub(super) fn set_mute(&mut self, muted: bool) {
        let Some(server) = self.server_name.clone() else {
            return;
        };
        let (Some(esl), Some(dir)) = (
            self.ctx.esl.get(&*server).cloned(),
            self.settings.router.directory().cloned(),
        ) else {
            return;
        };
        let (call_no, call) = (self.call_no, self.dialin_call.clone());
        let verb = if muted { "mute" } else { "unmute" };
        // The newest state wins: a mute still waiting for the member is given up.
        if let Some(older) = self.mute_task.take() {
            older.abort();
        }
        self.mute_task = Some(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + MEMBER_WAIT;
            loop {
                if let Some((conference, member)) = dir.member(&server, &call) {
                    let sent = esl.api(format!(
                        "conference {} {verb} {member}",
                        conference.expose()
                    ));
                    info!(
                        call = call_no,
                        server = &*server,
                        sent,
                        "{verb} our conference member"
                    );
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    warn!(
                        call = call_no,
                        server = &*server,
                        "could not {verb} our conference member: not known (no add-member event seen)"
                    );
                    return;
                }
                tokio::time::sleep(MEMBER_LOOK).await;
            }
        }));
    }

    /// Tells the core what the conference says about our member's mute now (a moderator's
    /// included), where the server's Event Socket has told: before the core decides on a
    /// hold, and when the leg is lost (the rejoin restores it).
    pub(super) fn refresh_member_muted(&mut self) {
        let muted = self
            .settings
            .router
            .directory()
            .and_then(|dir| dir.member_muted(self.server_name.as_deref()?, &self.dialin_call));
        if let Some(muted) = muted {
            self.core.handle_member_muted(muted);
        }
    }

    /// Sends `digit` to the server as RFC 4733.
    pub(super) fn send_digit(&self, digit: Digit) {
        if let Some(path) = &self.path {
            path.with(|p| p.media.send_digit(digit));
        }
    }
}
