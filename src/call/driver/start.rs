//! Starting a call: the INVITE parsed once at the edge ([`IncomingCall`]), admission, the
//! caller leg's RTP port, its dialog, guessing protection's verdict, ringing, and the answer
//! (`sip::answer`); then the call's core is built and its driver runs until the call ends.

use super::{CallDriver, PendingMedia};
use crate::call::admission::CallSlot;
use crate::call::context::CallContext;
use crate::call::core::{Answered, Call, CallSetup, LocalSdp};
use crate::ops::metrics;
use crate::privacy::guard::{SourceNet, Standing};
use crate::sip::answer::{answer_caller, media_security, ring, Answer, LocalMedia};
use crate::sip::capabilities::answer_headers;
use crate::sip::incoming::{IncomingCall, Offer};
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::Transaction;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// Starts a call for a new INVITE transaction, or refuses it: with the status that names an
/// extension dialin cannot honour, or with 503 and `Retry-After` when a call limit is full
/// (before anything is allocated for it). An admitted call gets 100 Trying at once, then
/// moves to one of the call shards (`media::relay::Shards`), where its sockets will live.
pub fn spawn_call(ctx: Arc<CallContext>, mut tx: Transaction) {
    // Parsed once, here; a request dialin cannot honour is refused before it costs a slot.
    let incoming = match IncomingCall::parse(&tx.original, ctx.session_min_se, Instant::now()) {
        Ok(call) => call,
        Err((status, headers)) => {
            info!(status = %status, "refusing call: unsupported SIP extension or session interval");
            tokio::spawn(async move { tx.reply_with(status, headers, None).await.ok() });
            return;
        }
    };
    let slot = match ctx.admit(incoming.source) {
        Ok(slot) => slot,
        Err(limit) => {
            info!(limit = limit.as_str(), "refusing call: limit reached");
            let retry = retry_after(&ctx);
            tokio::spawn(async move {
                tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                    .await
                    .ok();
            });
            return;
        }
    };
    let (guard, call_no) = ctx.call_started();
    tokio::spawn(async move {
        // 100 Trying first, before anything else can answer (180 when ringing, 488, 200), and
        // before the hop to the shard so that hop never delays it.
        tx.send_trying().await.ok();
        // Boxed, like the answer steps and the driver below: the call's task then holds
        // only the driver's wake-up loop inline, not the answer's state (the INVITE
        // transaction, replies in flight) for as long as the call lasts.
        let tx = Box::new(tx);
        let incoming = Box::new(incoming);
        let shards = ctx.shards.clone();
        shards.spawn(async move {
            let _guard = guard;
            let answered = Box::pin(answer_call(ctx, tx, call_no, slot, incoming)).await;
            if let Some(mut driver) = answered {
                driver.run().await;
                driver.cleanup();
            }
        });
    });
}

/// How long the caller's INVITE transaction may outlive its call: 64 × T1, RFC 3261's
/// (and RFC 6026's Timer L) bound on a server INVITE transaction, so retransmitted INVITEs
/// and ACKs are still absorbed while it would be alive anyway.
const INVITE_TRANSACTION_LINGER: std::time::Duration = std::time::Duration::from_secs(32);

/// The task that drives the caller's INVITE transaction (`ServerInviteDialog::handle`),
/// ended at the latest [`INVITE_TRANSACTION_LINGER`] after its call.
///
/// Why: when rsipstack cannot send our final response (the caller closed its TCP connection
/// at once), the transaction never leaves `Proceeding`, so none of its timers runs, and the
/// task waits for an ACK or CANCEL for ever, holding the transaction, the dialog and the
/// connection's socket: one file descriptor and a few KB per such call, for good (issue 22,
/// item 7; `tests/it/stuck.rs`).
///
/// It holds the sending side of a oneshot the task waits on, not a handle to the task: a task
/// handle keeps the finished task's memory (its whole future, the transaction included, about
/// 8 KB) for as long as the call lasts (`bench/run`: 43 -> 51 KB per call).
pub(super) struct InviteTask(
    /// Dropped with the call: the task then lingers at most [`INVITE_TRANSACTION_LINGER`].
    #[allow(dead_code)]
    tokio::sync::oneshot::Sender<()>,
);

impl InviteTask {
    /// Drives the caller's INVITE transaction with `dialog` until it ends, or until
    /// [`INVITE_TRANSACTION_LINGER`] after the returned value (the call) is dropped.
    pub(super) fn spawn(
        mut dialog: rsipstack::dialog::invite_dialog::InviteDialog,
        mut tx: Transaction,
    ) -> InviteTask {
        let (call_alive, call_over) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let handle = dialog.handle(&mut tx);
            tokio::pin!(handle);
            tokio::select! {
                _ = &mut handle => return,
                // The call is over (the sender dropped): the transaction may linger a while.
                _ = call_over => {}
            }
            tokio::time::timeout(INVITE_TRANSACTION_LINGER, handle)
                .await
                .ok();
        });
        InviteTask(call_alive)
    }
}

/// Why a new call gets no caller RTP port (it is refused with 503).
#[derive(Debug, thiserror::Error)]
enum NoPort {
    /// The pool has none free.
    #[error(transparent)]
    Port(#[from] crate::media::ports::PortError),
    /// The socket cannot be made non-blocking.
    #[error("the RTP socket cannot be used: {0}")]
    Socket(std::io::Error),
    /// No relay shard runs on this thread (the shards could not start).
    #[error("no media shard runs on this thread")]
    NoShard,
}

/// The `Retry-After` header of every 503 dialin sends for lack of capacity.
fn retry_after(ctx: &CallContext) -> Header {
    Header::RetryAfter(ctx.retry_after.as_secs().to_string().into())
}

/// Answers the INVITE, or refuses it (`None`); the answered call's driver is returned to run.
// Over 80 lines: the answer steps in order (port, dialog, guard check, ring, SRTP, SDP), each
// able to refuse the call and undo what the steps before it made.
async fn answer_call(
    ctx: Arc<CallContext>,
    tx: Box<Transaction>,
    call_no: u64,
    slot: CallSlot,
    incoming: Box<IncomingCall>,
) -> Option<Box<CallDriver>> {
    let mut tx = *tx;
    let invite_at = Instant::now();
    let tracked = ctx.calls.track(call_no, invite_at);
    // The settings in force now stay with this call to its end, whatever a reload does.
    let settings = ctx.settings();
    // An offer dialin cannot answer: 488 with a Warning that says why, before anything else
    // (no port, no dialog).
    if let Some(e) = crate::sip::answer::unusable_offer(&incoming.offer) {
        info!(call = call_no, reason = %e, "refusing call: no usable audio offer");
        let warning = crate::sip::answer::offer_warning(&e);
        tx.reply_with(StatusCode::NotAcceptableHere, vec![warning], None)
            .await
            .ok();
        metrics::call_ended("rejected_codec");
        return None;
    }
    // The caller leg's RTP port before the rest: without one, say so and when to retry.
    let bound = ctx
        .bind_rtp()
        .map_err(NoPort::Port)
        .and_then(|(lease, socket)| {
            // The shard's relay loop reads it when the epoll set says it has packets.
            socket.set_nonblocking(true).map_err(NoPort::Socket)?;
            if !crate::media::relay::on_shard() {
                return Err(NoPort::NoShard);
            }
            Ok((lease, socket))
        });
    let (lease, socket) = match bound {
        Ok(bound) => bound,
        Err(e) => {
            warn!(call = call_no, error = %e, "refusing call: no RTP port");
            ctx.stats
                .refused_no_port
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let retry = retry_after(&ctx);
            tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                .await
                .ok();
            metrics::call_ended("unavailable");
            return None;
        }
    };
    // Subscribed before the dialog exists, so none of its events can come first.
    let id = &incoming.dialog_id;
    let mut trunk_events = ctx
        .dialog_events
        .subscribe(&id.call_id, Some(&id.remote_tag));
    // Over TLS our Contact says so, so that in-dialog requests come back over TLS.
    let contact = match (&tx.connection, &ctx.tls_contact) {
        (Some(rsipstack::transport::SipConnection::Tls(_)), Some(tls)) => tls.clone(),
        _ => ctx.contact.clone(),
    };
    let dialog = match ctx.dialog_layer.get_or_create_server_invite(
        &tx,
        ctx.dialog_events.sender(),
        None,
        Some(contact),
    ) {
        Ok(d) => d,
        Err(_) => {
            tx.reply(StatusCode::BadRequest).await.ok();
            metrics::call_ended("unavailable");
            return None;
        }
    };
    let caller_key = ctx.privacy.caller_key(Instant::now(), &incoming.caller);
    let source_net = SourceNet::of(incoming.source, &ctx.ledger.limits());
    let standing = ctx
        .ledger
        .check_caller(std::time::SystemTime::now(), &caller_key);
    // The dialog drives the INVITE transaction: 100 Trying at once, then ACK or CANCEL.
    let invite_task = InviteTask::spawn(dialog.clone(), tx);
    info!(call = call_no, caller = %caller_key, "incoming call");
    tracked.set_caller(caller_key.to_string());
    if let Standing::Blocked { .. } = standing {
        info!(
            call = call_no,
            caller = %caller_key,
            "caller blocked after repeated failed PINs: goodbye at once"
        );
    }
    let no_provisionals = incoming.extensions.no_provisionals;
    if !settings.answer_delay.is_zero()
        && !ring(
            settings.answer_delay,
            &dialog,
            &mut trunk_events,
            !no_provisionals,
        )
        .await
    {
        info!(call = call_no, "caller gave up before the answer");
        ctx.dialog_layer.remove_dialog(&dialog.id());
        metrics::call_ended("caller_hangup");
        return None;
    }

    let session_id = rand::random::<u32>() as u64;
    // SRTP by the trunk's setting and the offer's crypto lines.
    let sdes = match media_security(&incoming.offer, ctx.srtp_policy(slot.trunk())) {
        Ok(sdes) => sdes,
        Err(e) => {
            info!(call = call_no, reason = %e, "refusing call: media security");
            dialog
                .reject(Some(StatusCode::NotAcceptableHere), None)
                .ok();
            ctx.dialog_layer.remove_dialog(&dialog.id());
            return None;
        }
    };
    // Early media needs the caller's offer and unreliable provisionals.
    let has_offer = !matches!(incoming.offer, Offer::None);
    let early = ctx.early_media && !no_provisionals && has_offer;
    let session = incoming.extensions.timer;
    let how = if early {
        Answer::Early
    } else {
        Answer::Now(answer_headers(session.as_ref()))
    };
    let local = LocalMedia {
        advertise: ctx.advertise,
        rtp_port: lease.port(),
        session_id,
    };
    let sent = match answer_caller(&dialog, &incoming.offer, local, how, sdes.as_ref()) {
        Ok(sent) => sent,
        Err(e) => {
            info!(call = call_no, reason = %e, "refusing call: no usable audio offer");
            ctx.dialog_layer.remove_dialog(&dialog.id());
            metrics::call_ended("rejected_codec");
            return None;
        }
    };
    let answered = match (sent.negotiated, sent.early_body) {
        (Some(negotiated), Some(body)) => Answered::Early { negotiated, body },
        (Some(negotiated), None) => Answered::Offer(negotiated),
        (None, _) => Answered::LateOffer,
    };
    let setup = CallSetup {
        call_no,
        caller_key,
        flow: settings.flow,
        media_timeout: settings.media_timeout,
        server_silence: settings.server_silence,
        server_probe: settings.server_probe,
        local: LocalSdp {
            advertise: ctx.advertise,
            caller_port: lease.port(),
            session_id,
        },
        answered,
        srtp: sdes.clone(),
        session,
        blocked: standing != Standing::Allowed,
        invite_at,
    };
    let core = Call::new(Instant::now(), setup);
    Some(Box::new(CallDriver {
        ctx: ctx.clone(),
        settings,
        call_no,
        caller: incoming.caller,
        caller_key,
        source_net,
        core,
        trunk: dialog,
        trunk_events,
        _caller_port: lease,
        _invite_task: invite_task,
        pending_media: Some(PendingMedia {
            socket,
            sdes,
            early,
        }),
        path: None,
        server: None,
        slot,
        requests: Vec::with_capacity(2),
        next_request: 0,
        tracked,
        shutdown_seen: false,
        directory: None,
        health: None,
        dialin_call: format!("{:016x}", rand::random::<u64>()),
        mute_task: None,
        server_name: None,
        lookup: None,
        caller_request: None,
        numbering: None,
    }))
}
