//! A bridged server leg that is gone without a BYE, and dialling the meeting again.
//!
//! A BBB server's FreeSWITCH that crashes (or is killed, or loses its network) sends no BYE:
//! without this the caller would sit in dead air until it hangs up, and the provider bills it.
//! The leg counts as lost on the first of:
//! - **silence**: no RTP from the server for `media.server_silence` (default
//!   [`SERVER_SILENCE`]). A BBB conference sends to every member all the time, silence
//!   included (measured against FreeSWITCH 1.10.12 with BBB's `cdquality` profile: 50 packets
//!   a second to a lone, silent member, largest gap 59 ms in 15 s), so a second without a
//!   packet is far outside normal. Zero turns this off (a conference server that sends
//!   nothing while nobody speaks);
//! - **unreachable**: the server's RTP port answers ICMP port unreachable (the process or the
//!   channel is gone), and neither a BYE nor a packet follows within [`BYE_GRACE`] (a meeting
//!   that ends closes the port and sends a BYE at the same moment: that is an ordinary end,
//!   not a loss);
//! - **esl_down**: the directory says the server is down (its Event Socket refused or closed,
//!   its probes failing; the driver tells), and no packet follows within [`BYE_GRACE`]: a
//!   socket or probe problem alone does not tear down a call whose audio flows;
//! - **sip**: where silence does not count, an OPTIONS in the leg's dialog every
//!   [`super::server_probe::SERVER_PROBE`] gets no answer, 408 or 481 (`server_probe`).
//!
//! The caller then hears "the connection to the meeting was lost" and the hold loop, and the
//! core watches the directory for the conference: wherever it runs again (the same server
//! after a restart, another where Scalelite re-created the meeting), it is dialled again with
//! the caller's same number in the meeting (the same masked caller ID) and, where the mute key
//! goes through the Event Socket, the same mute state. Where no directory can tell, it is
//! tried again every [`REJOIN_RETRY`]. After `routing.rejoin_max`: "unavailable", goodbye.

use super::{Call, CallAction, Record, RxTimes, Timer};
use crate::call::flow::{FlowInput, FlowState};
use crate::routing::WaitingFor;
use crate::sip::sdp::Direction;
use std::time::{Duration, Instant};
use tracing::info;

/// How long a bridged server may send nothing before its leg counts as lost, by default.
pub const SERVER_SILENCE: Duration = Duration::from_secs(1);
/// How long after a sign of loss (ICMP errors on the server leg, its Event Socket down) a BYE
/// (an ordinary end) or a packet (the server is there after all) may still come.
pub const BYE_GRACE: Duration = Duration::from_millis(250);
/// How often a caller whose server was lost tries again where no directory change says when.
pub const REJOIN_RETRY: Duration = Duration::from_secs(2);

/// What the core keeps to dial a lost meeting again.
#[derive(Clone, Debug, Default)]
pub(super) struct LossState {
    /// The caller's number in the meeting, kept for every dial after the first.
    pub seq: Option<u64>,
    /// A sign the server may be gone (ICMP errors on its RTP port, its Event Socket down):
    /// when it came and what it was. It becomes a loss unless a packet or a BYE comes within
    /// [`BYE_GRACE`].
    suspect: Option<(Instant, &'static str)>,
    /// Whether the caller is muted in the conference, not counting a mute for its hold: its
    /// toggles of the mute key since it joined (odd: muted), corrected by what the conference
    /// says whenever the driver asks it ([`Call::handle_member_muted`]: a moderator's mute
    /// counts too). The rejoin restores it; the hold leaves a muted caller alone.
    pub muted: bool,
    /// The member is muted because the caller holds: unmuted on resume.
    pub hold_muted: bool,
    /// The next bridge is a rejoin.
    pub lost: bool,
}

impl Call {
    /// Whether the server leg is bridged and expected to send (it does not hold us).
    fn server_sends(&self) -> bool {
        self.flow.state() == FlowState::Bridged
            && self
                .legs
                .server_direction()
                .is_some_and(|d| matches!(d, Direction::SendRecv | Direction::SendOnly))
    }

    /// The bridge is up: watch the server's RTP from `now` on.
    pub(super) fn watch_server(&mut self, now: Instant) {
        self.loss.suspect = None;
        self.arm_server_check(now);
        self.arm_server_probe(now);
        if std::mem::take(&mut self.loss.lost) {
            info!(call = self.call_no, "bridged again after the loss");
            self.record(Record::Rejoined);
            // A new member starts unmuted: muted again if it was before the loss, or if the
            // caller still holds. (Without the Event Socket the mute key is not ours: it goes
            // to the server, and so does its state.)
            let esl = self.mute_key.is_some() && self.legs.server_can_mute();
            self.loss.hold_muted = esl && self.legs.caller_holds() && !self.loss.muted;
            if esl && (self.loss.muted || self.loss.hold_muted) {
                self.actions.push_back(CallAction::SetMute(true));
            }
        }
    }

    /// Looks at the server leg again a silence interval from `now` (when silence does not
    /// count, only signs of loss arm the check).
    fn arm_server_check(&mut self, now: Instant) {
        let at = (!self.server_silence.is_zero()).then(|| now + self.server_silence);
        self.timers.set(Timer::ServerCheck, at);
    }

    /// The caller put the call on hold or resumed it. Nothing of a holding caller reaches
    /// the meeting (the relay sees to that); where the mute key goes through the Event
    /// Socket, BBB's user list shows it too: the member is muted for the hold and unmuted
    /// on resume, unless it was muted already (by its key or a moderator; the driver asks
    /// the conference before it hands over the hold), which the hold leaves alone.
    pub(super) fn hold_changed(&mut self) {
        let esl_mute = self.mute_key.is_some() && self.legs.server_can_mute();
        if !esl_mute || self.flow.state() != FlowState::Bridged {
            return;
        }
        if self.legs.caller_holds() {
            if !self.loss.muted && !self.loss.hold_muted {
                self.loss.hold_muted = true;
                self.actions.push_back(CallAction::SetMute(true));
            }
        } else if std::mem::take(&mut self.loss.hold_muted) {
            self.actions.push_back(CallAction::SetMute(false));
        }
    }

    /// What the conference says about our member's mute (by its key or a moderator), asked
    /// by the driver before a caller's in-dialog request and when the leg is lost: the state
    /// the hold leaves alone and the rejoin restores. A mute for the hold is ours, not the
    /// caller's; a moderator who unmutes a holding member ends it.
    pub fn handle_member_muted(&mut self, muted: bool) {
        if self.loss.hold_muted {
            self.loss.hold_muted = muted;
        } else {
            self.loss.muted = muted;
        }
    }

    /// The media path saw ICMP errors on the server leg.
    pub(super) fn on_server_unreachable(&mut self, now: Instant) {
        self.suspect(now, "unreachable");
    }

    /// The server's Event Socket says the bridged server is gone (refused or closed, or its
    /// probes fail). Taken as a loss once the media agrees (no packet from the server within
    /// [`BYE_GRACE`]): a socket or probe problem alone must not tear down a call whose audio
    /// flows.
    pub fn handle_server_down(&mut self, now: Instant) {
        self.suspect(now, "esl_down");
        self.pump(now);
    }

    /// A sign the bridged server may be gone: look again at the media after [`BYE_GRACE`].
    fn suspect(&mut self, now: Instant, reason: &'static str) {
        if self.flow.state() != FlowState::Bridged || self.loss.suspect.is_some() {
            return;
        }
        self.loss.suspect = Some((now, reason));
        let check = now + BYE_GRACE;
        let armed = self.timers.get(Timer::ServerCheck);
        if armed.is_none_or(|t| t > check) {
            self.timers.set(Timer::ServerCheck, Some(check));
        }
    }

    /// The server-check timer: lost, or look again later.
    pub(super) fn check_server(&mut self, now: Instant, rx: Option<RxTimes>) {
        self.timers.set(Timer::ServerCheck, None);
        if self.flow.state() != FlowState::Bridged {
            return;
        }
        let last = rx.map(|r| r.server);
        if let (Some((at, _)), Some(last)) = (self.loss.suspect, last) {
            if last > at {
                // Packets came after the sign: a passing hiccup, or a problem of the socket
                // or probes only.
                self.loss.suspect = None;
            }
        }
        if let Some((at, reason)) = self.loss.suspect {
            if now >= at + BYE_GRACE {
                return self.server_lost(now, reason);
            }
        }
        let grace = self.loss.suspect.map(|(at, _)| at + BYE_GRACE);
        if !self.server_sends() || self.server_silence.is_zero() {
            // Held by the server, or silence means nothing here: look again later (signs
            // of loss still count).
            self.arm_server_check(now);
            if let Some(at) = grace {
                let next = self
                    .timers
                    .get(Timer::ServerCheck)
                    .map_or(at, |t| t.min(at));
                self.timers.set(Timer::ServerCheck, Some(next));
            }
            return;
        }
        let due = last.map_or(now, |t| t + self.server_silence);
        if now >= due {
            return self.server_lost(now, "silence");
        }
        let next = grace.map_or(due, |at| due.min(at));
        self.timers.set(Timer::ServerCheck, Some(next));
    }

    /// The bridged server leg is lost: the caller holds while the meeting is dialled again.
    pub(super) fn server_lost(&mut self, now: Instant, reason: &'static str) {
        info!(
            call = self.call_no,
            reason, "the server leg is lost: the caller holds while the meeting is dialled again"
        );
        self.record(Record::ServerLost(reason));
        self.timers.set(Timer::ServerCheck, None);
        self.timers.set(Timer::ServerProbe, None);
        self.loss.suspect = None;
        self.loss.lost = true;
        if let Some(target) = &self.joined {
            self.route.waiting_for = Some(WaitingFor::Conference {
                conference: target.conference.clone(),
                server: Some(target.server.clone()),
            });
        }
        self.flow.handle_input(now, FlowInput::ServerLost);
    }

    /// The flow stopped relaying to the lost leg: forget it, so it can be dialled anew.
    pub(super) fn unbridge(&mut self) {
        self.legs.server_gone();
        self.actions.push_back(CallAction::Unbridge);
    }

    /// A caller who lost its server waits for the meeting: watch the directory, and look
    /// again after [`REJOIN_RETRY`] (not at once: the directory may still list the meeting
    /// on the server that was just lost).
    pub(super) fn await_rejoin(&mut self, now: Instant) {
        self.watch();
        self.timers.set(Timer::Rejoin, Some(now + REJOIN_RETRY));
    }

    /// Time to look again whether the lost meeting runs.
    pub(super) fn retry_rejoin(&mut self, now: Instant) {
        self.timers.set(Timer::Rejoin, None);
        if self.flow.state() == FlowState::Rejoining {
            self.recheck_waiting(now);
        }
    }
}
