//! Answering a new call: 100 Trying, optional ringing, SDP negotiation, the caller leg's RTP
//! port, 200 OK; then the call's driver runs until the call ends. The SDP side of the answer
//! (ringing, offer/answer, late offer, SRTP choice) is in `negotiate`.

use super::early::EarlyAnswer;
use super::negotiate::{answer_caller, late_answer, media_security, ring, Answer};
use super::CallDriver;
use crate::call::admission::CallSlot;
use crate::call::context::CallContext;
use crate::call::flow::{CallFlow, FlowInput};
use crate::media::call_media::{CallMedia, Leg, LegCodec};
use crate::media::relay::{on_shard, MediaPath, PathHandle, SrtpLeg};
use crate::ops::metrics;
use crate::ops::rtp_quality::RtpQuality;
use crate::privacy::guard::{SourceNet, Standing};
use crate::sip::capabilities::answer_headers;
use crate::sip::invite_check::{check_invite, InviteExtensions};
use crate::sip::legs::{caller_number, source_ip};
use rsipstack::dialog::DialogId;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::key::TransactionRole;
use rsipstack::transaction::Transaction;
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// Starts a call for a new INVITE transaction, or refuses it with 503 and `Retry-After` when a
/// call limit is full (before anything is allocated for it). An admitted call gets 100 Trying at
/// once from the SIP runtime, then moves to one of the call shards (`media::relay::Shards`),
/// where its sockets will live.
pub fn spawn_call(ctx: Arc<CallContext>, mut tx: Transaction) {
    // Extensions first: a request dialin cannot honour is refused before it costs a slot.
    let extensions = match check_invite(&tx.original, ctx.session_min_se, Instant::now()) {
        Ok(ext) => ext,
        Err((status, headers)) => {
            info!(status = %status, "refusing call: unsupported SIP extension or session interval");
            tokio::spawn(async move { tx.reply_with(status, headers, None).await.ok() });
            return;
        }
    };
    let slot = match ctx.admit(&tx.original) {
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
        let shards = ctx.shards.clone();
        shards.spawn(async move {
            let _guard = guard;
            let answered = Box::pin(answer_call(ctx, tx, call_no, slot, extensions)).await;
            if let Some(mut driver) = answered {
                driver.run().await;
                driver.cleanup();
            }
        });
    });
}

/// The `Retry-After` header of every 503 dialin sends for lack of capacity.
fn retry_after(ctx: &CallContext) -> Header {
    Header::RetryAfter(ctx.retry_after.as_secs().to_string().into())
}

/// Answers the INVITE, or refuses it (`None`); the answered call's driver is returned to run.
// Over 80 lines: the answer steps in order (port, dialog, guard check, ring, SRTP, SDP, late
// offer), each able to refuse the call and undo what the steps before it made.
async fn answer_call(
    ctx: Arc<CallContext>,
    tx: Box<Transaction>,
    call_no: u64,
    slot: CallSlot,
    extensions: InviteExtensions,
) -> Option<Box<CallDriver>> {
    let mut tx = *tx;
    let invite_at = Instant::now();
    let tracked = ctx.calls.track(call_no, invite_at);
    // The settings in force now stay with this call to its end, whatever a reload does.
    let settings = ctx.settings();
    // The caller leg's RTP port before anything else: without one, say so and when to retry.
    let bound = ctx.bind_rtp().map_err(|e| e.to_string());
    let bound = bound.and_then(|(lease, socket)| {
        // The shard's relay loop reads it when the epoll set says it has packets.
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        if !on_shard() {
            return Err("no media shard runs on this thread".to_string());
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
    let id = match DialogId::try_from((&tx.original, TransactionRole::Server)) {
        Ok(id) => id,
        Err(_) => {
            tx.reply(StatusCode::BadRequest).await.ok();
            metrics::call_ended("unavailable");
            return None;
        }
    };
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
    let caller = caller_number(&tx.original);
    let caller_key = ctx.privacy.caller_key(Instant::now(), &caller);
    let source_net = SourceNet::of(source_ip(&tx.original), &ctx.ledger.limits());
    let standing = ctx
        .ledger
        .check_caller(std::time::SystemTime::now(), &caller_key);
    let offer_body = tx.original.body.clone();
    // The dialog drives the INVITE transaction: 100 Trying at once, then ACK or CANCEL.
    let mut inv_dialog = dialog.clone();
    tokio::spawn(async move {
        inv_dialog.handle(&mut tx).await.ok();
    });
    info!(call = call_no, caller = %caller_key, "incoming call");
    tracked.set_caller(caller_key.to_string());
    if let Standing::Blocked { .. } = standing {
        info!(
            call = call_no,
            caller = %caller_key,
            "caller blocked after repeated failed PINs: goodbye at once"
        );
    }
    let ringing = !extensions.no_provisionals;
    if !settings.answer_delay.is_zero()
        && !ring(settings.answer_delay, &dialog, &mut trunk_events, ringing).await
    {
        info!(call = call_no, "caller gave up before the answer");
        ctx.dialog_layer.remove_dialog(&dialog.id());
        metrics::call_ended("caller_hangup");
        return None;
    }

    let session_id = rand::random::<u32>() as u64;
    // SRTP by the trunk's setting and the offer's crypto lines.
    let sdes = match media_security(&ctx, &offer_body, slot.trunk()) {
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
    let early = ctx.early_media && !extensions.no_provisionals && !offer_body.is_empty();
    // The session timer runs from the 200.
    let mut session = extensions.timer;
    if let Some(t) = session.as_mut() {
        t.handle_refresh(Instant::now());
    }
    let how = if early {
        Answer::Early
    } else {
        Answer::Now(answer_headers(session.as_ref()))
    };
    let Some((offer, early_body)) = answer_caller(
        &ctx,
        &dialog,
        &offer_body,
        (lease.port(), call_no, session_id),
        how,
        sdes.as_ref(),
    ) else {
        ctx.dialog_layer.remove_dialog(&dialog.id());
        metrics::call_ended("rejected_codec");
        return None;
    };
    let early = early_body.map(|body| EarlyAnswer {
        body,
        timer: session.take(),
    });
    let early_media = early.is_some();
    // Late offer: the caller's answer comes in its ACK.
    let late_offer = offer.is_none();
    let negotiated = match offer {
        Some(n) => n,
        None => match late_answer(&dialog, &mut trunk_events).await {
            Some(n) => n,
            None => {
                info!(
                    call = call_no,
                    "ending call: no usable answer to our offer in the ACK"
                );
                let bye = dialog.clone();
                tokio::spawn(async move { bye.bye().await.ok() });
                ctx.dialog_layer.remove_dialog(&dialog.id());
                metrics::call_ended("rejected_codec");
                return None;
            }
        },
    };
    let codec = LegCodec {
        law: negotiated.law,
        pt: negotiated.pt,
        telephone_event_pt: negotiated.telephone_event_pt,
    };
    let now = Instant::now();
    let path = MediaPath::new(
        CallMedia::new(Leg::new(negotiated.remote, codec, true), now),
        socket,
        // Boxed: most calls have none, and the context is larger than the rest of the path.
        sdes.map(|a| Box::new(SrtpLeg::new(a, super::MAX_PACKET))),
        [RtpQuality::new(now, 8000), RtpQuality::new(now, 8000)],
    );
    let path = match PathHandle::insert(path) {
        Ok(path) => path,
        Err(e) => {
            // Answered (or ringing with early media) already: the caller hears the end of
            // the call rather than silence.
            warn!(call = call_no, error = %e, "ending call: its RTP socket cannot be watched");
            if early.is_some() {
                dialog
                    .reject(Some(StatusCode::ServiceUnavailable), None)
                    .ok();
            } else {
                let bye = dialog.clone();
                tokio::spawn(async move { bye.bye().await.ok() });
            }
            ctx.dialog_layer.remove_dialog(&dialog.id());
            metrics::call_ended("unavailable");
            return None;
        }
    };
    let mut driver = Box::new(CallDriver {
        ctx: ctx.clone(),
        call_no,
        caller,
        caller_key,
        source_net,
        wrong_pins: 0,
        held_route: None,
        flow: CallFlow::new(settings.flow),
        path,
        caller_sdp: negotiated,
        trunk: dialog,
        trunk_events,
        caller_port: lease,
        slot,
        session,
        early,
        server: None,
        pending_server_leg: None,
        caller_confirmed: late_offer || early_media,
        ack_due: (!late_offer && !early_media).then(|| now + super::ACK_WAIT),
        media_check_at: now + settings.media_timeout,
        sdp_version: 1,
        session_id,
        settings,
        tracked,
        invite_at,
        resolved_at: None,
        shutdown_seen: false,
        waiting: None,
        waiting_for: None,
        dialin_call: format!("{:016x}", rand::random::<u64>()),
        server_name: None,
        lookup: None,
        numbering: None,
        meeting: None,
    });
    if standing != Standing::Allowed {
        driver.flow.handle_input(now, FlowInput::Blocked);
    }
    if late_offer || early_media {
        // Late offer: the ACK that carried the answer was the dialog's confirmation. Early
        // media: the voice menu starts with the 183.
        metrics::setup_latency("caller_answer", now - invite_at);
        driver.flow.handle_input(now, FlowInput::CallerAnswered);
    }
    Some(driver)
}
