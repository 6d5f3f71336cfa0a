//! Carrying out the flow's actions: prompts, routing a PIN, waiting for a meeting, dialling
//! and cancelling the server leg, bridging, the echo test, digits, mute and hang-ups.

use super::{live, CallDriver, ServerLeg};
use crate::call::flow::{FlowAction, FlowInput};
use crate::ops::metrics;
use crate::routing::ConferenceTarget;
use crate::secret::Pin;
use crate::sip::legs::server_invite;
use crate::sip::sdp;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::{info, warn};

impl CallDriver {
    /// Carries out the flow's actions; returns true when the call is over.
    pub(super) fn apply_actions(&mut self) -> bool {
        // The clock is read only when there is something to do: this runs at every wake-up,
        // relayed packets included.
        while let Some(action) = self.flow.poll_action() {
            let now = Instant::now();
            match action {
                FlowAction::Play(id) => {
                    let prompt = self.settings.prompts.get(id);
                    self.path.with(|p| p.media.play(prompt, now))
                }
                FlowAction::StopPrompt => self.path.with(|p| p.media.stop_prompt()),
                FlowAction::Resolve(pin) => self.resolve(now, &pin),
                FlowAction::AwaitConference => self.await_conference(now),
                FlowAction::DialServer(target) => self.dial_server(now, target),
                FlowAction::CancelServer => self.cancel_server(),
                FlowAction::Bridge => self.bridge(now),
                FlowAction::StartEcho => self.start_echo(now),
                FlowAction::SendDigit(d) => self.path.with(|p| p.media.send_digit(d)),
                FlowAction::HangUpCaller if self.early.is_some() => self.reject_early(),
                FlowAction::ToggleMute(d) => self.toggle_mute(d),
                FlowAction::HangUpCaller => {
                    let dialog = self.trunk.clone();
                    tokio::spawn(async move { dialog.bye().await.ok() });
                }
                FlowAction::HangUpServer => {
                    if let Some(s) = self.server.as_ref() {
                        let dialog = s.dialog.clone();
                        tokio::spawn(async move { dialog.bye().await.ok() });
                    }
                }
                FlowAction::Finished(outcome) => {
                    info!(call = self.call_no, caller = %self.caller_key, ?outcome, "call ended");
                    self.record_call(outcome);
                    metrics::call_ended(metrics::outcome_label(outcome));
                    return true;
                }
            }
        }
        false
    }

    /// Asks routing where the PIN leads: an answer now, or a meeting ID to look up.
    fn resolve(&mut self, now: Instant, pin: &Pin) {
        self.resolved_at = Some(now);
        let unix = crate::store::model::unix_now();
        match self.settings.router.lookup_at(pin, now, unix) {
            crate::routing::Lookup::Ready(decision) => self.answer_route(now, decision),
            crate::routing::Lookup::Meeting(m) => self.begin_meeting(now, m),
        }
    }

    /// The meeting has not started: watch the directory for it.
    fn await_conference(&mut self, now: Instant) {
        info!(call = self.call_no, "meeting not started: caller waits");
        if self.waiting.is_none() {
            let directory = self.settings.router.directory();
            self.waiting = directory.map(|d| live::DirectoryWait::new(d.subscribe()));
        }
        // A conference created between the resolve and the subscription counts
        // (a meeting ID's lookups watched the directory all along).
        if !self.meeting_active() {
            self.recheck_waiting(now);
        }
    }

    /// Dials the server; a leg that cannot even be started fails at once.
    fn dial_server(&mut self, now: Instant, target: ConferenceTarget) {
        self.server_name = Some(target.server.clone());
        if let Some(store) = self.ctx.privacy.shared_sequences() {
            // The cluster numbers the caller first (bounded by SHARED_WAIT); the INVITE
            // follows in `on_numbered`.
            let conference = self.ctx.privacy.conference(now, &target.conference);
            let task = crate::privacy::cluster_sequence::reserve(store, conference);
            if let Some((_, old)) = self.numbering.replace((target, tokio::spawn(task))) {
                old.abort();
            }
            return;
        }
        let seq = self.ctx.privacy.next_local(now, &target.conference);
        self.dial_numbered(now, target, seq);
    }

    /// The cluster's numbering answered: dials the server if the call still wants it.
    pub(super) fn on_numbered(
        &mut self,
        now: Instant,
        target: ConferenceTarget,
        shared: Option<u64>,
    ) {
        if self.flow.state() != crate::call::flow::FlowState::ConnectingServer {
            return;
        }
        let seq = shared.unwrap_or_else(|| self.ctx.privacy.next_local(now, &target.conference));
        self.dial_numbered(now, target, seq);
    }

    /// Dials `target` with the caller numbered `seq` in its conference.
    fn dial_numbered(&mut self, now: Instant, target: ConferenceTarget, seq: u64) {
        if let Err(reason) = self.dial(&target, seq) {
            warn!(call = self.call_no, server = %target.server, %reason, "cannot dial server");
            self.flow.handle_input(now, FlowInput::ServerFailed);
        } else {
            let conf = self.ctx.privacy.conference(now, &target.conference);
            info!(call = self.call_no, server = %target.server, %conf, "dialling server");
        }
    }

    /// CANCELs the ringing server leg, then ends its INVITE transaction.
    fn cancel_server(&mut self) {
        if let Some((_, h)) = self.numbering.take() {
            h.abort();
        }
        if let Some(s) = self.server.as_mut() {
            let dialog = s.dialog.clone();
            let invite = s.invite.take();
            tokio::spawn(async move {
                dialog.cancel().await.ok();
                if let Some(h) = invite {
                    // Give the CANCEL a moment to end the INVITE transaction.
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    h.abort();
                }
            });
        }
    }

    /// Relays media between the caller and the answered server leg from now on.
    fn bridge(&mut self, now: Instant) {
        if let Some(leg) = self.pending_server_leg.take() {
            self.path.with(|p| p.media.bridge(leg));
            self.slot.leave_ivr();
            self.answer_if_early(now);
            // The mute key is kept from the server only where the Event Socket
            // can mute; elsewhere it is relayed like any key.
            let esl = self
                .server_name
                .as_ref()
                .is_some_and(|n| self.ctx.esl.contains_key(n));
            let key = self.settings.flow.mute_key.filter(|_| esl);
            self.path.with(|p| p.media.intercept(key));
            self.ctx.stats.bridged.fetch_add(1, Ordering::Relaxed);
            if let Some(at) = self.resolved_at {
                metrics::setup_latency("server_answer", now - at);
            }
            info!(call = self.call_no, "bridged");
        }
    }

    /// Connects the caller to the built-in echo.
    fn start_echo(&mut self, now: Instant) {
        self.path.with(|p| p.media.start_echo());
        self.slot.leave_ivr();
        self.answer_if_early(now);
        self.ctx.stats.echo_tests.fetch_add(1, Ordering::Relaxed);
        info!(call = self.call_no, "echo test");
    }

    /// Starts the server leg: binds its RTP port and sends the INVITE.
    fn dial(&mut self, target: &ConferenceTarget, seq: u64) -> Result<(), String> {
        let (lease, socket) = self.ctx.bind_rtp().map_err(|e| e.to_string())?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        self.path
            .add_server_socket(socket)
            .map_err(|e| e.to_string())?;
        let codec = self.path.with(|p| p.media.caller.codec());
        let te = codec
            .telephone_event_pt
            .unwrap_or(sdp::DEFAULT_TELEPHONE_EVENT_PT);
        let offer = sdp::build_offer(
            self.ctx.advertise,
            lease.port(),
            codec.law,
            te,
            rand::random::<u32>() as u64,
            1,
        );
        let masked = self.ctx.privacy.present_numbered(&self.caller, seq);
        let opt = server_invite(
            target,
            &masked,
            &self.dialin_call,
            self.ctx.advertise,
            self.ctx.sip_port,
            self.ctx.contact.clone(),
            offer,
        )
        .map_err(|e| e.to_string())?;
        // Our own Call-ID, so the leg's events are subscribed to before the INVITE goes out.
        let call_id = format!("{:032x}", rand::random::<u128>());
        let events = self.ctx.dialog_events.subscribe(&call_id, None);
        let opt = rsipstack::dialog::invitation::InviteOption {
            call_id: Some(call_id),
            ..opt
        };
        let (dialog, invite) = self
            .ctx
            .dialog_layer
            .do_invite_async(opt, self.ctx.dialog_events.sender())
            .map_err(|_| "the INVITE could not be built".to_string())?;
        self.server = Some(ServerLeg {
            dialog,
            events,
            port: lease,
            invite: Some(invite),
            offered_te: te,
            answered: false,
            sdp: None,
        });
        Ok(())
    }
}
