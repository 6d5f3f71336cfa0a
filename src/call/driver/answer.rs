//! Answering a new call: 100 Trying, optional ringing, SDP negotiation, the caller leg's RTP
//! port, 200 OK; then the call's driver runs until the call ends.

use super::CallDriver;
use crate::call::context::CallContext;
use crate::call::flow::{CallFlow, FlowInput};
use crate::call::media::{CallMedia, Leg, LegCodec};
use crate::media::g711::Law;
use crate::ops::metrics::{self, RtpCounters};
use crate::ops::rtp_quality::RtpQuality;

use crate::sip::legs::{caller_number, sdp_content_type};
use crate::sip::sdp::{self, MediaOffer, Negotiated};
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver};
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::Transaction;
use std::sync::Arc;
use std::time::Instant;

use tokio::time::sleep_until;
use tracing::{info, warn};

/// Starts a call for a new INVITE transaction.
pub fn spawn_call(ctx: Arc<CallContext>, tx: Transaction) {
    let (guard, call_no) = ctx.call_started();
    tokio::spawn(async move {
        let _guard = guard;
        run_call(ctx, tx, call_no).await;
    });
}

/// Answers the INVITE (or refuses it) and, once answered, runs the call to its end.
async fn run_call(ctx: Arc<CallContext>, mut tx: Transaction, call_no: u64) {
    let invite_at = Instant::now();
    let tracked = ctx.calls.track(call_no, invite_at);
    // The settings in force now stay with this call to its end, whatever a reload does.
    let settings = ctx.settings();
    // 100 Trying first, before anything else can answer (180 when ringing, 488, 200).
    tx.send_trying().await.ok();
    // The caller leg's RTP port before anything else: without one, say so and when to retry.
    let (lease, socket) = match ctx.bind_rtp() {
        Ok(bound) => bound,
        Err(e) => {
            warn!(call = call_no, error = %e, "refusing call: no RTP port");
            let retry = Header::RetryAfter(RETRY_AFTER_SECS.to_string().into());
            tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                .await
                .ok();
            metrics::call_ended("unavailable");
            return;
        }
    };
    let (trunk_events_tx, mut trunk_events) = ctx.dialog_layer.new_dialog_state_channel();
    let dialog = match ctx.dialog_layer.get_or_create_server_invite(
        &tx,
        trunk_events_tx,
        None,
        Some(ctx.contact.clone()),
    ) {
        Ok(d) => d,
        Err(_) => {
            tx.reply(StatusCode::BadRequest).await.ok();
            metrics::call_ended("unavailable");
            return;
        }
    };
    let caller = caller_number(&tx.original);
    let offer_body = tx.original.body.clone();
    // The dialog drives the INVITE transaction: 100 Trying at once, then ACK or CANCEL.
    let mut inv_dialog = dialog.clone();
    tokio::spawn(async move {
        inv_dialog.handle(&mut tx).await.ok();
    });
    info!(call = call_no, "incoming call");
    if !settings.answer_delay.is_zero()
        && !ring(settings.answer_delay, &dialog, &mut trunk_events).await
    {
        info!(call = call_no, "caller gave up before the answer");
        ctx.dialog_layer.remove_dialog(&dialog.id());
        metrics::call_ended("caller_hangup");
        return;
    }

    let session_id = rand::random::<u32>() as u64;
    let Some(offer) = answer_caller(
        &ctx,
        &dialog,
        &offer_body,
        lease.port(),
        call_no,
        session_id,
    ) else {
        ctx.dialog_layer.remove_dialog(&dialog.id());
        metrics::call_ended("rejected_codec");
        return;
    };
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
                return;
            }
        },
    };
    let codec = LegCodec {
        law: negotiated.law,
        pt: negotiated.pt,
        telephone_event_pt: negotiated.telephone_event_pt,
    };
    let now = Instant::now();
    let mut driver = CallDriver {
        ctx: ctx.clone(),
        call_no,
        caller,
        flow: CallFlow::new(settings.flow),
        media: CallMedia::new(Leg::new(negotiated.remote, codec, true), now),
        caller_sdp: negotiated,
        trunk: dialog,
        trunk_events,
        caller_socket: socket,
        _caller_port: lease,
        server: None,
        pending_server_leg: None,
        caller_confirmed: late_offer,
        media_check_at: now + settings.media_timeout,
        sdp_version: 1,
        session_id,
        settings,
        tracked,
        rtp: RtpCounters::new(),
        quality: [RtpQuality::new(now, 8000), RtpQuality::new(now, 8000)],
        invite_at,
        resolved_at: None,
        shutdown_seen: false,
        pin: None,
        waiting: None,
        dialin_call: format!("{:016x}", rand::random::<u64>()),
        server_name: None,
    };
    if late_offer {
        // The ACK that carried the answer was the dialog's confirmation.
        metrics::setup_latency("caller_answer", now - invite_at);
        driver.flow.handle_input(now, FlowInput::CallerAnswered);
    }
    driver.run().await;
    driver.cleanup();
}

/// Rings for `answer_delay`; false when the caller cancelled meanwhile.
async fn ring(
    answer_delay: std::time::Duration,
    dialog: &InviteDialog,
    events: &mut DialogStateReceiver,
) -> bool {
    dialog.ringing(None, None).ok();
    let deadline = tokio::time::Instant::now() + answer_delay;
    loop {
        tokio::select! {
            _ = sleep_until(deadline) => return true,
            ev = events.recv() => match ev {
                Some(DialogState::Terminated(..)) | None => return false,
                Some(_) => {}
            },
        }
    }
}

/// Waits for the caller's ACK and negotiates the SDP answer it carries (late offer); `None`
/// when the caller hangs up first or the answer is unusable.
async fn late_answer(
    dialog: &InviteDialog,
    events: &mut DialogStateReceiver,
) -> Option<Negotiated> {
    loop {
        match events.recv().await? {
            DialogState::Confirmed(..) => {
                let ack = dialog.last_remote_ack()?;
                return MediaOffer::parse(&ack.body)
                    .and_then(|a| sdp::negotiate(&a, &SUPPORTED_LAWS))
                    .ok();
            }
            DialogState::Terminated(..) => return None,
            _ => {}
        }
    }
}

/// What a 503 for lack of RTP ports asks the trunk to wait before retrying, in seconds.
const RETRY_AFTER_SECS: u32 = 5;

/// The laws dialin speaks, in the order it prefers them when it makes the offer.
const SUPPORTED_LAWS: [Law; 2] = [Law::Ulaw, Law::Alaw];

/// Negotiates the caller's offer (or, for an INVITE without SDP, prepares ours) and sends
/// 200 OK with `rtp_port` in the SDP; an unusable offer gets 488 and `None`. The returned
/// offer is `None` for a late offer.
fn answer_caller(
    ctx: &CallContext,
    dialog: &InviteDialog,
    offer_body: &[u8],
    rtp_port: u16,
    call_no: u64,
    session_id: u64,
) -> Option<Option<Negotiated>> {
    let negotiated = if offer_body.is_empty() {
        None
    } else {
        match MediaOffer::parse(offer_body).and_then(|o| sdp::negotiate(&o, &SUPPORTED_LAWS)) {
            Ok(n) => Some(n),
            Err(e) => {
                info!(call = call_no, reason = %e, "refusing call: no usable audio offer");
                dialog
                    .reject(Some(StatusCode::NotAcceptableHere), None)
                    .ok();
                return None;
            }
        }
    };
    let body = match &negotiated {
        Some(n) => sdp::build_answer(
            ctx.advertise,
            rtp_port,
            n,
            session_id,
            1,
            n.direction.answer_to(),
        ),
        None => sdp::build_offer_of(
            ctx.advertise,
            rtp_port,
            &SUPPORTED_LAWS,
            sdp::DEFAULT_TELEPHONE_EVENT_PT,
            session_id,
            1,
        ),
    };
    dialog
        .accept(Some(vec![sdp_content_type()]), Some(body.into_bytes()))
        .ok()?;
    Some(negotiated)
}
