//! The task that drives one call: it owns the call's flow state machine and its SIP legs, and
//! turns SIP dialog events, digits and deadlines into inputs.
//!
//! The call's media (media state, RTP sockets, SRTP) is its `MediaPath`, kept in the table
//! of the shard the call runs on (`media::relay`): the shard's relay loop relays
//! the packets from there without waking this task, which hears only of what they mean to
//! it (`PathEvent`: a digit, or an echo frame its timer must play). Other parts talk to the task only through the dialog events each leg subscribes to
//! (`sip::dialog_events`). On every exit path the RTP ports are released (the path leaves the
//! table and the leases drop) and the dialogs are removed from the dialog layer.
//!
//! This file holds the call's state and its wait loop; `media::relay` is the packet hot path,
//! `actions` carries out the flow's actions, `events` answers SIP events, and the other
//! parts (answering, early media, session timers, meeting lookups) have a file each.

mod actions;
mod answer;
mod early;
mod events;
mod guarded;
mod live;
mod meeting;
mod negotiate;
mod session;

pub use answer::spawn_call;

use crate::call::admission::CallSlot;
use crate::call::context::{CallContext, CallSettings};
use crate::call::flow::{CallFlow, DigitSource, FlowInput};
use crate::media::call_media::Leg;
use crate::media::ports::PortLease;
use crate::media::relay::{PathEvent, PathHandle, MAX_PACKET};
use crate::ops::calls::TrackedCall;
use crate::ops::end_signal::CallsEnding;
use crate::ops::metrics;
use crate::privacy::guard::SourceNet;
use crate::privacy::CallerKey;
use crate::routing::RouteDecision;
use crate::secret::CallerNumber;
use crate::sip::dialog_events::DialogEventReceiver;
use crate::sip::sdp::Negotiated;
use crate::sip::session_timer::SessionTimer;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// How long the caller's ACK to our 200 may take. ACKs come within milliseconds; this covers
/// several lost 200s (retransmitted at 0.5, 1, 2, 4 s ...).
const ACK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server leg while it is being dialled and once it is up.
struct ServerLeg {
    dialog: InviteDialog,
    events: DialogEventReceiver,
    /// The leg's RTP port (its socket is in the call's media path).
    port: PortLease,
    /// Resolves when the INVITE gets its final response; `None` once taken.
    invite: Option<JoinHandle<InviteAsyncResult>>,
    /// The telephone-event PT we offered (used if the answer lacks one).
    offered_te: u8,
    /// Whether the server answered 2xx (its BYE then ends the call).
    answered: bool,
    /// The server leg's SDP state once answered, for answering its re-INVITEs.
    sdp: Option<Negotiated>,
}

struct CallDriver {
    ctx: Arc<CallContext>,
    call_no: u64,
    caller: CallerNumber,
    /// The caller's pseudonym: names the caller in logs and abuse counters.
    caller_key: CallerKey,
    /// The network the call came from, for failed-PIN rates (never logged).
    source_net: SourceNet,
    /// Wrong PINs typed in this call; any, without reaching a meeting, make a failed call.
    wrong_pins: u32,
    /// A routing answer held back by guessing protection, and when to give it.
    held_route: Option<(Instant, RouteDecision)>,
    flow: CallFlow,
    /// The call's media, in the shard's table.
    path: PathHandle,
    trunk: InviteDialog,
    trunk_events: DialogEventReceiver,
    /// The caller leg's RTP port (its socket is in the call's media path).
    caller_port: PortLease,
    /// The call's admission slots; the IVR slot is given up once bridged.
    slot: CallSlot,
    /// The trunk leg's session timer (RFC 4028), if the INVITE asked for one.
    session: Option<SessionTimer>,
    /// While the voice menu runs as early media (183): the 200 still to be sent.
    early: Option<early::EarlyAnswer>,
    server: Option<ServerLeg>,
    /// The answered server leg's media, handed to the media state on `Bridge`.
    pending_server_leg: Option<Leg>,
    /// The caller leg's SDP state, for answering re-INVITEs.
    caller_sdp: Negotiated,
    /// When to look at the media timeout next.
    media_check_at: Instant,
    /// Whether the caller's ACK has arrived (the flow hears `CallerAnswered` once).
    caller_confirmed: bool,
    /// Until when the caller's ACK to our 200 may take; `None` once it came (or when the
    /// answer needs none yet). A half-open call must not hold its ports and slots for the
    /// 32 s the INVITE transaction would wait.
    ack_due: Option<Instant>,
    sdp_version: u64,
    session_id: u64,
    /// The settings in force when the call started (a reload does not change a running call).
    settings: Arc<CallSettings>,
    /// The call's entry in the admin API's list and the per-state gauges.
    tracked: TrackedCall,
    /// When the INVITE arrived (set-up latency).
    invite_at: Instant,
    /// When the PIN was complete (set-up latency to the server's answer).
    resolved_at: Option<Instant>,
    /// Whether the drain deadline was passed to the flow already.
    shutdown_seen: bool,
    /// The meeting a waiting caller waits for, re-checked whenever the directory changes.
    waiting_for: Option<crate::routing::WaitingFor>,
    /// While waiting: changes whenever a conference may have started.
    waiting: Option<live::DirectoryWait>,
    /// Our server leg's `X-Dialin-Call` token, to find our conference member (mute key).
    dialin_call: String,
    /// The name of the server dialled (for the mute key's Event Socket).
    server_name: Option<String>,
    /// A meeting-ID lookup in flight (store mapping to a BBB meeting); at most one per call.
    lookup: Option<JoinHandle<meeting::MeetingAnswer>>,
    /// The server to dial once the cluster's shared numbering has given the caller its number
    /// (`None` from the task: the local counter numbers the caller).
    numbering: Option<(crate::routing::ConferenceTarget, JoinHandle<Option<u64>>)>,
    /// The meeting ID being resolved or waited for, and when to ask the BBB API again.
    meeting: Option<meeting::MeetingWait>,
}

thread_local! {
    /// The buffer for packets calls originate (prompts, digits), one per worker thread: they
    /// are built and sent without an `.await` in between, so no call needs its own.
    /// Received packets use the relay loop's batch (`recv_batch`).
    static ORIGINATED: std::cell::RefCell<[u8; MAX_PACKET]> =
        const { std::cell::RefCell::new([0; MAX_PACKET]) };
}

/// What woke the driver up.
enum Wake {
    /// The call's packets carried a digit, or moved the media's deadline.
    Path(PathEvent),
    Trunk(Option<DialogState>),
    ServerEvent(Option<DialogState>),
    Invite(Result<InviteAsyncResult, tokio::task::JoinError>),
    /// The directory changed while waiting (`false`: it is gone).
    Directory(bool),
    Lookup(Result<meeting::MeetingAnswer, tokio::task::JoinError>),
    /// The shared numbering answered (a number, or `None`/an error: number locally).
    Numbered(
        crate::routing::ConferenceTarget,
        Result<Option<u64>, tokio::task::JoinError>,
    ),
    Timer,
    Shutdown,
}

impl CallDriver {
    async fn run(&mut self) {
        // One timer for the whole call, moved only when the deadline changes.
        let mut armed = self.next_deadline();
        let timer = tokio::time::sleep_until(armed.into());
        tokio::pin!(timer);
        // Watched for the whole call, not re-created per wake-up.
        let mut calls_ending = self.ctx.lifecycle.calls_ending();
        loop {
            if self.apply_actions() {
                return;
            }
            self.tracked
                .set_state(metrics::state_label(self.flow.state()));
            let deadline = self.next_deadline();
            if deadline != armed {
                armed = deadline;
                timer.as_mut().reset(armed.into());
            }
            let wake = std::future::poll_fn(|cx| {
                if let Poll::Ready(e) = self.path.poll_event(cx) {
                    return Poll::Ready(Wake::Path(e));
                }
                match self.poll_sources(cx, timer.as_mut(), &mut calls_ending) {
                    Some(wake) => Poll::Ready(wake),
                    None => Poll::Pending,
                }
            })
            .await;
            let now = Instant::now();
            match wake {
                Wake::Path(PathEvent::Digit(d)) => self
                    .flow
                    .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp)),
                // The timer is re-armed at the top of the loop.
                Wake::Path(PathEvent::DeadlineMoved) => {}
                Wake::Path(PathEvent::Failed) => {
                    info!(
                        call = self.call_no,
                        "the call's media relay failed: ending call"
                    );
                    self.flow.handle_input(now, FlowInput::MediaTimeout);
                }
                Wake::Trunk(Some(ev)) => self.on_trunk_event(now, ev).await,
                Wake::Trunk(None) => self.flow.handle_input(now, FlowInput::CallerHungUp),
                Wake::ServerEvent(Some(ev)) => self.on_server_event(now, ev).await,
                Wake::ServerEvent(None) => {}
                Wake::Invite(r) => self.on_invite_result(now, r),
                Wake::Directory(true) => self.recheck_waiting(now),
                Wake::Directory(false) => self.waiting = None,
                Wake::Lookup(r) => {
                    let answer = r.unwrap_or_else(|_| {
                        meeting::MeetingAnswer::Failed("the lookup task failed".into())
                    });
                    self.on_meeting_answer(now, answer);
                }
                Wake::Numbered(target, r) => self.on_numbered(now, target, r.ok().flatten()),
                Wake::Timer => self.on_timer(now),
                Wake::Shutdown => {
                    self.shutdown_seen = true;
                    info!(call = self.call_no, "drain deadline: ending call");
                    self.flow.handle_input(now, FlowInput::Shutdown);
                }
            }
        }
    }

    /// Polls every wake-up source but the media path; the first that is ready, if any.
    fn poll_sources(
        &mut self,
        cx: &mut Context<'_>,
        timer: Pin<&mut tokio::time::Sleep>,
        calls_ending: &mut CallsEnding,
    ) -> Option<Wake> {
        if let Poll::Ready(ev) = self.trunk_events.poll_recv(cx) {
            return Some(Wake::Trunk(ev));
        }
        if let Some(s) = self.server.as_mut() {
            if let Poll::Ready(ev) = s.events.poll_recv(cx) {
                return Some(Wake::ServerEvent(ev));
            }
            if let Some(Poll::Ready(r)) = s.invite.as_mut().map(|h| Pin::new(h).poll(cx)) {
                s.invite = None;
                return Some(Wake::Invite(r));
            }
        }
        if let Some(Poll::Ready(open)) = self.waiting.as_mut().map(|w| w.poll_changed(cx)) {
            return Some(Wake::Directory(open));
        }
        if let Some(Poll::Ready(r)) = self.lookup.as_mut().map(|h| Pin::new(h).poll(cx)) {
            self.lookup = None;
            return Some(Wake::Lookup(r));
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

    /// The earliest of the flow's and the media's deadlines and the next media-timeout check.
    fn next_deadline(&self) -> Instant {
        let session = self.session.as_ref();
        [
            self.flow.poll_timeout(),
            self.path.with(|p| p.media.next_deadline()),
            session.map(SessionTimer::poll_expiry),
            self.ack_due,
            session.and_then(SessionTimer::poll_refresh),
            self.meeting_deadline(),
            self.held_route.as_ref().map(|(due, _)| *due),
        ]
        .into_iter()
        .flatten()
        .fold(self.media_check_at, Instant::min)
    }

    fn on_timer(&mut self, now: Instant) {
        if self.on_session_timer(now) || self.on_ack_timeout(now) {
            return;
        }
        if now >= self.media_check_at {
            // Checked lazily rather than re-armed per packet: at the check, the timeout runs
            // from the last packet seen.
            let due = self.path.with(|p| p.media.last_rx()) + self.settings.media_timeout;
            if now >= due {
                info!(call = self.call_no, "no RTP for media.timeout: ending call");
                self.flow.handle_input(now, FlowInput::MediaTimeout);
                return;
            }
            self.media_check_at = due;
        }
        if self.flow.poll_timeout().is_some_and(|t| t <= now) {
            let waited = self.flow.state() == crate::call::flow::FlowState::Waiting;
            self.flow.handle_timeout(now);
            if waited && self.flow.state() != crate::call::flow::FlowState::Waiting {
                info!(call = self.call_no, "ivr.max_wait is over: goodbye");
            }
        }
        self.start_meeting_lookup(now);
        if let Some((_, decision)) = self.held_route.take_if(|(due, _)| *due <= now) {
            self.routed(now, decision);
        }
        let flow = &mut self.flow;
        let finished = self.path.with(|p| {
            ORIGINATED.with_borrow_mut(|buf| {
                while let Some(r) = p.media.poll_transmit(now, buf) {
                    if let Some(d) = p.deliver(r, buf) {
                        flow.handle_input(now, FlowInput::Digit(d, DigitSource::Rtp));
                    }
                }
            });
            p.media.poll_prompt_finished()
        });
        if finished {
            self.flow.handle_input(now, FlowInput::PromptFinished);
        }
    }

    /// Removes both dialogs from the dialog layer; sockets and ports go with `self`.
    fn cleanup(&mut self) {
        if let Some(h) = self.lookup.take() {
            h.abort();
        }
        if let Some((_, h)) = self.numbering.take() {
            h.abort();
        }
        self.ctx.dialog_layer.remove_dialog(&self.trunk.id());
        if let Some(s) = self.server.as_mut() {
            if let Some(h) = s.invite.take() {
                h.abort();
            }
            self.ctx.dialog_layer.remove_dialog(&s.dialog.id());
        }
        self.path.with(|p| {
            p.quality[0].record("caller");
            p.quality[1].record("server");
        });
        debug!(call = self.call_no, "call cleaned up");
    }
}
