//! The caller's side of answering an INVITE: ringing, the SDP answer (including a late offer
//! in the ACK and early media) and whether the call uses SRTP.

use crate::call::context::CallContext;
use crate::media::g711::Law;
use crate::sip::dialog_events::DialogEventReceiver;
use crate::sip::legs::sdp_content_type;
use crate::sip::sdes::{self, SdesAnswer, SdesRefusal, SrtpPolicy};
use crate::sip::sdp::{self, MediaOffer, Negotiated};
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use tokio::time::sleep_until;
use tracing::info;

/// Rings for `answer_delay` (180 unless `send_180` is false, for a caller that requires
/// reliable provisionals); false when the caller cancelled meanwhile.
pub(super) async fn ring(
    answer_delay: std::time::Duration,
    dialog: &InviteDialog,
    events: &mut DialogEventReceiver,
    send_180: bool,
) -> bool {
    if send_180 {
        dialog.ringing(None, None).ok();
    }
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
pub(super) async fn late_answer(
    dialog: &InviteDialog,
    events: &mut DialogEventReceiver,
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

/// The laws dialin speaks, in the order it prefers them when it makes the offer.
const SUPPORTED_LAWS: [Law; 2] = [Law::Ulaw, Law::Alaw];

/// Negotiates the caller's offer (or, for an INVITE without SDP, prepares ours) and sends
/// 200 OK (or, for early media, 183) with `rtp_port` in the SDP; an unusable offer gets 488 and
/// `None`. The returned offer is `None` for a late offer; the returned body is the SDP still
/// to be sent in the 200 of an early-media answer.
pub(super) fn answer_caller(
    ctx: &CallContext,
    dialog: &InviteDialog,
    offer_body: &[u8],
    (rtp_port, call_no, session_id): (u16, u64, u64),
    extra_headers: Answer,
    sdes: Option<&SdesAnswer>,
) -> Option<(Option<Negotiated>, Option<Vec<u8>>)> {
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
    let body = match sdes {
        Some(a) => a.secure(&body),
        None => body,
    }
    .into_bytes();
    match extra_headers {
        Answer::Now(extra) => {
            let mut headers = vec![sdp_content_type()];
            headers.extend(extra);
            dialog.accept(Some(headers), Some(body)).ok()?;
            Some((negotiated, None))
        }
        Answer::Early => {
            // 183 Session Progress with the SDP: prompts play as early media, and the 200
            // follows once the call is bridged.
            dialog
                .ringing(Some(vec![sdp_content_type()]), Some(body.clone()))
                .ok()?;
            Some((negotiated, Some(body)))
        }
    }
}

/// Whether the call uses SRTP: by the trunk's `srtp` setting and the offer's crypto lines. An
/// INVITE without SDP gets a plain offer, so it is refused where SRTP is required.
pub(super) fn media_security(
    ctx: &CallContext,
    offer_body: &[u8],
    trunk: Option<usize>,
) -> Result<Option<SdesAnswer>, SdesRefusal> {
    let policy = ctx.srtp_policy(trunk);
    if offer_body.is_empty() {
        return match policy {
            SrtpPolicy::Required => Err(SdesRefusal::SrtpRequired),
            _ => Ok(None),
        };
    }
    sdes::decide(&sdes::parse_offer(offer_body), policy)
}

/// How [`answer_caller`] answers.
pub(super) enum Answer {
    /// 200 OK now, with these extra headers (the session timer's).
    Now(Vec<Header>),
    /// 183 with SDP now (early media), 200 later.
    Early,
}
