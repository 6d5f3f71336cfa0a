//! The task that drives one call: it carries out its core's actions ([`crate::call::core`])
//! and turns what happens to the call into the core's inputs. It decides nothing.
//!
//! It owns what the core must not: the SIP dialogs of both legs (and the in-dialog requests
//! waiting for the core's answer), the call's media path in the shard's table ([`crate::media::relay`];
//! the shard's relay loop relays its packets without waking this task and tells it only what
//! they mean: a digit, a moved deadline), the tasks that answer the core's questions (meeting
//! lookups, the cluster's numbering) and the live directory's change notifications. It reads
//! the clock once per wake-up and hands `now` to the core.
//!
//! Files: `start` (answering a new INVITE and building the core), `wake` (what woke the task
//! and how it becomes an input), `actions` (carrying out the core's actions), `lookups`
//! (meeting lookups and the directory wait), `mute` (the mute key over the Event Socket). The
//! relay (hot path) is [`crate::media::relay`].

mod actions;
mod lookups;
mod mute;
mod port_check;
mod server_invite;
mod start;
mod wake;

pub use start::spawn_call;

use crate::call::admission::CallSlot;
use crate::call::context::{CallContext, CallSettings};
use crate::call::core::{Call, RequestId, RxTimes, Side};
use crate::media::ports::PortLease;
use crate::media::relay::{PathHandle, MAX_PACKET};
use crate::ops::calls::TrackedCall;
use crate::privacy::guard::SourceNet;
use crate::privacy::CallerKey;
use crate::routing::directory::ServerHealth;
use crate::routing::ConferenceTarget;
use crate::secret::CallerNumber;
use crate::sip::dialog_events::DialogEventReceiver;
use crate::sip::sdes::SdesAnswer;
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::debug;

/// The server leg while it is being dialled and once it is up.
struct ServerLeg {
    dialog: InviteDialog,
    events: DialogEventReceiver,
    /// The leg's RTP port, held until the call ends (its socket is in the media path).
    _port: PortLease,
    /// Resolves when the INVITE gets its final response; `None` once taken.
    invite: Option<JoinHandle<InviteAsyncResult>>,
    /// Whether the server's SIP port refused a datagram (ICMP), while the INVITE is out;
    /// `None` once answered or the INVITE was.
    port_check: Option<JoinHandle<bool>>,
    /// An OPTIONS in the leg's dialog in flight: whether the server still holds the leg.
    probe: Option<JoinHandle<bool>>,
}

/// The caller leg's media before the core starts it (a late offer waits for the ACK).
struct PendingMedia {
    /// The caller leg's RTP socket (non-blocking).
    socket: UdpSocket,
    /// SRTP, when the offer and the trunk's setting asked for it.
    sdes: Option<SdesAnswer>,
    /// Whether the call was answered with early media (183; the 200 is still owed).
    early: bool,
}

/// One call's I/O; see the module doc.
struct CallDriver {
    ctx: Arc<CallContext>,
    /// The settings in force when the call started (a reload does not change a running call).
    settings: Arc<CallSettings>,
    call_no: u64,
    /// The caller's number, for the masked caller ID the server leg presents.
    caller: CallerNumber,
    /// The caller's pseudonym: names the caller in logs and abuse counters.
    caller_key: CallerKey,
    /// The network the call came from, for failed-PIN rates (never logged).
    source_net: SourceNet,
    /// The call's decisions.
    core: Call,
    trunk: InviteDialog,
    trunk_events: DialogEventReceiver,
    /// The caller leg's RTP port, held until the call ends (its socket is in the media path).
    _caller_port: PortLease,
    /// The caller's INVITE transaction's task, ended at the latest a while after the call.
    _invite_task: start::InviteTask,
    /// The caller's socket until the media path starts.
    pending_media: Option<PendingMedia>,
    /// The call's media, in the shard's table, once started.
    path: Option<PathHandle>,
    server: Option<ServerLeg>,
    /// The call's admission slots; the IVR slot is given up once bridged.
    slot: CallSlot,
    /// In-dialog requests waiting for the core's answer (answered in the same wake-up, so
    /// at most one or two).
    requests: Vec<(RequestId, TransactionHandle)>,
    /// The next request's id.
    next_request: u64,
    /// The call's entry in the admin API's list and the per-state gauges.
    tracked: TrackedCall,
    /// Whether the drain deadline was passed to the core already.
    shutdown_seen: bool,
    /// While the core watches the live directory: its change notifications.
    directory: Option<lookups::DirectoryWait>,
    /// While bridged to a server the directory watches: its changes, and that server's
    /// health when the bridge began (only a change to `Down` means the leg was lost).
    health: Option<(lookups::DirectoryWait, ServerHealth)>,
    /// Our server leg's `X-Dialin-Call` token, to find our conference member (mute key).
    dialin_call: String,
    /// The last mute or unmute for hold or rejoin, while it may wait for our member.
    mute_task: Option<tokio::task::JoinHandle<()>>,
    /// The name of the server dialled (for the mute key's Event Socket).
    server_name: Option<crate::ids::ServerName>,
    /// A meeting-ID lookup in flight; at most one per call.
    lookup: Option<JoinHandle<lookups::Found>>,
    /// An OPTIONS probe or session refresh to the caller in flight: whether the caller's
    /// phone still holds the call (a newer one replaces an older one).
    caller_request: Option<JoinHandle<bool>>,
    /// The cluster's shared numbering in flight, and the server it numbers for.
    numbering: Option<(ConferenceTarget, JoinHandle<Option<u64>>)>,
}

thread_local! {
    /// The buffer for packets calls originate (prompts, digits), one per worker thread: they
    /// are built and sent without an `.await` in between, so no call needs its own.
    /// Received packets use the relay loop's batch (`recv_batch`).
    static ORIGINATED: std::cell::RefCell<[u8; MAX_PACKET]> =
        const { std::cell::RefCell::new([0; MAX_PACKET]) };
}

/// How long the driver sleeps when nothing at all is timed (never, in practice: the core
/// always has its media check armed while the call lives).
const IDLE: Duration = Duration::from_secs(3600);

impl CallDriver {
    /// Runs the call until the core says it is finished.
    async fn run(&mut self) {
        let now = Instant::now();
        // One timer for the whole call, moved only when the deadline changes.
        let mut armed = self.next_deadline(now);
        let timer = tokio::time::sleep_until(armed.into());
        tokio::pin!(timer);
        // Watched for the whole call, not re-created per wake-up.
        let mut calls_ending = self.ctx.lifecycle.calls_ending();
        let mut now = now;
        loop {
            if self.carry_out(now) {
                return;
            }
            self.tracked.set_state(self.core.state().label());
            let deadline = self.next_deadline(now);
            if deadline != armed {
                armed = deadline;
                timer.as_mut().reset(armed.into());
            }
            let wake = self.wait(timer.as_mut(), &mut calls_ending).await;
            now = Instant::now();
            self.on_wake(now, wake);
        }
    }

    /// The earliest of the core's deadlines and the media path's packet clock.
    fn next_deadline(&self, now: Instant) -> Instant {
        let media = self
            .path
            .as_ref()
            .and_then(|p| p.with(|p| p.media.next_deadline()));
        [self.core.poll_timeout(), media]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + IDLE)
    }

    /// The deadline came: the core's timers, then the media's packets (prompts, silence,
    /// echo, injected digits), whose digits and prompt ends go to the core.
    fn on_timer(&mut self, now: Instant) {
        let rx = self.path.as_ref().map(|p| {
            p.with(|p| RxTimes {
                caller: p.media.last_rx(Side::Caller),
                server: p.media.last_rx(Side::Server),
            })
        });
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now, rx);
        }
        let Some(path) = self.path.as_ref() else {
            return;
        };
        let mut digits = [None; 4];
        let finished = path.with(|p| {
            ORIGINATED.with_borrow_mut(|buf| {
                while let Some(r) = p.media.poll_transmit(now, buf) {
                    if let Some(d) = p.deliver(r, buf) {
                        if let Some(slot) = digits.iter_mut().find(|s| s.is_none()) {
                            *slot = Some(d);
                        }
                    }
                }
            });
            p.media.poll_prompt_finished()
        });
        for d in digits.into_iter().flatten() {
            self.core
                .handle_media(now, crate::call::core::MediaEvent::Digit(d));
        }
        if finished {
            self.core
                .handle_media(now, crate::call::core::MediaEvent::PromptFinished);
        }
    }

    /// Keeps an in-dialog request's transaction until the core answers it.
    fn hold_request(&mut self, handle: TransactionHandle) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.requests.push((id, handle));
        id
    }

    /// Removes both dialogs from the dialog layer and stops the call's tasks; sockets and
    /// ports go with `self`.
    fn cleanup(&mut self) {
        if let Some(h) = self.lookup.take() {
            h.abort();
        }
        if let Some((_, h)) = self.numbering.take() {
            h.abort();
        }
        if let Some(h) = self.caller_request.take() {
            h.abort();
        }
        if let Some(h) = self.mute_task.take() {
            h.abort();
        }
        self.ctx.dialog_layer.remove_dialog(&self.trunk.id());
        self.forget_server();
        if let Some(path) = &self.path {
            path.with(|p| {
                p.quality[0].record("caller");
                p.quality[1].record("server");
            });
        }
        debug!(call = self.call_no, "call cleaned up");
    }
}
