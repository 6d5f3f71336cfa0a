//! Answering the caller's INVITE: ringing, the SDP answer (or our offer, for an INVITE
//! without one), early media's 183, and whether the call uses SRTP. The call's set-up
//! (`call::driver::start`) decides when; this file speaks SIP.

use crate::sip::dialog_events::DialogEventReceiver;
use crate::sip::incoming::Offer;
use crate::sip::legs::sdp_content_type;
use crate::sip::sdes::{self, SdesAnswer, SdesRefusal, SrtpPolicy};
use crate::sip::sdp::{self, Negotiated, SdpError, SUPPORTED_LAWS};
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode};
use std::net::IpAddr;
use tokio::time::sleep_until;

/// Rings for `answer_delay` (180 unless `send_180` is false, for a caller that requires
/// reliable provisionals); false when the caller cancelled meanwhile.
pub async fn ring(
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

/// Our side of the caller's SDP.
#[derive(Clone, Copy, Debug)]
pub struct LocalMedia {
    /// The address our SDP advertises.
    pub advertise: IpAddr,
    /// The caller leg's RTP port.
    pub rtp_port: u16,
    /// The `o=` session id.
    pub session_id: u64,
}

/// How [`answer_caller`] answers.
pub enum Answer {
    /// 200 OK now, with these extra headers (the session timer's).
    Now(Vec<Header>),
    /// 183 with SDP now (early media), 200 later.
    Early,
}

/// What was sent to the caller.
#[derive(Debug)]
pub struct Sent {
    /// The caller's negotiated offer; `None` for a late offer (the ACK answers ours).
    pub negotiated: Option<Negotiated>,
    /// For early media: the SDP of the 183, which the 200 repeats.
    pub early_body: Option<Vec<u8>>,
}

/// Why the caller's INVITE could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No audio offer dialin can use (488 sent).
    #[error("no usable audio offer: {0}")]
    Offer(#[from] SdpError),
    /// The dialog would not send the answer (the caller left meanwhile).
    #[error("the answer could not be sent: the dialog is gone")]
    Dialog,
}

/// Negotiates the caller's offer (or, for an INVITE without SDP, prepares ours) and sends
/// 200 OK (or, for early media, 183) with our SDP; an unusable offer gets 488.
pub fn answer_caller(
    dialog: &InviteDialog,
    offer: &Offer,
    local: LocalMedia,
    how: Answer,
    sdes: Option<&SdesAnswer>,
) -> Result<Sent, AnswerError> {
    let negotiated = match offer {
        Offer::None => None,
        Offer::Audio { media, .. } => match sdp::negotiate(media, &SUPPORTED_LAWS) {
            Ok(n) => Some(n),
            Err(e) => return Err(reject(dialog, e)),
        },
        Offer::Unusable(e) => return Err(reject(dialog, e.clone())),
    };
    let body = match &negotiated {
        Some(n) => sdp::build_answer(
            local.advertise,
            local.rtp_port,
            n,
            local.session_id,
            1,
            n.direction.answer_to(),
        ),
        None => sdp::build_offer_of(
            local.advertise,
            local.rtp_port,
            &SUPPORTED_LAWS,
            sdp::DEFAULT_TELEPHONE_EVENT_PT,
            local.session_id,
            1,
        ),
    };
    let body = match sdes {
        Some(a) => a.secure(&body),
        None => body,
    }
    .into_bytes();
    match how {
        Answer::Now(extra) => {
            let mut headers = vec![sdp_content_type()];
            headers.extend(extra);
            dialog
                .accept(Some(headers), Some(body))
                .map_err(|_| AnswerError::Dialog)?;
            Ok(Sent {
                negotiated,
                early_body: None,
            })
        }
        Answer::Early => {
            // 183 Session Progress with the SDP: prompts play as early media, and the 200
            // follows once the call is bridged.
            dialog
                .ringing(Some(vec![sdp_content_type()]), Some(body.clone()))
                .map_err(|_| AnswerError::Dialog)?;
            Ok(Sent {
                negotiated,
                early_body: Some(body),
            })
        }
    }
}

/// Why the caller's offer cannot be answered, checked before its dialog exists: such a call
/// is refused at once with 488 and [`offer_warning`]. (`None` for an INVITE without SDP:
/// dialin makes the offer then.)
pub fn unusable_offer(offer: &Offer) -> Option<SdpError> {
    match offer {
        Offer::None => None,
        Offer::Audio { media, .. } => sdp::negotiate(media, &SUPPORTED_LAWS).err(),
        Offer::Unusable(e) => Some(e.clone()),
    }
}

/// The `Warning` header (RFC 3261 §20.43) of a 488 for `e`: the warn-code says what did not
/// fit, the text what dialin takes, so a provider's or a phone's log tells the operator what to
/// change. `dialin` as warn-agent: no host name to give away.
pub fn offer_warning(e: &SdpError) -> Header {
    let (code, text) = match e {
        SdpError::NoCommonCodec => (
            305,
            "Incompatible media format: dialin takes PCMU, PCMA and telephone-event/8000",
        ),
        SdpError::NoAudio => (
            304,
            "Media type not available: dialin needs an audio stream",
        ),
        SdpError::BadPort | SdpError::BadConnection | SdpError::NoConnection => {
            (399, "Malformed SDP: no usable c= address or m=audio port")
        }
    };
    Header::Warning(format!("{code} dialin \"{text}\"").into())
}

/// 488 for an offer dialin cannot use.
fn reject(dialog: &InviteDialog, e: SdpError) -> AnswerError {
    dialog
        .reject(Some(StatusCode::NotAcceptableHere), None)
        .ok();
    AnswerError::Offer(e)
}

/// Whether the call uses SRTP: by the trunk's `srtp` setting and the offer's crypto lines. An
/// INVITE without SDP gets a plain offer, so it is refused where SRTP is required.
pub fn media_security(
    offer: &Offer,
    policy: SrtpPolicy,
) -> Result<Option<SdesAnswer>, SdesRefusal> {
    match offer {
        Offer::Audio { sdes, .. } => sdes::decide(sdes, policy),
        _ => match policy {
            SrtpPolicy::Required => Err(SdesRefusal::SrtpRequired),
            _ => Ok(None),
        },
    }
}
