//! A new INVITE, parsed once at the SIP edge into one typed [`IncomingCall`]: where it came
//! from, who calls which number, what it asked of dialin's extensions, and its SDP offer
//! (audio and SRTP crypto) parsed once. Nothing below the edge looks at the request's headers
//! or body again.

use crate::secret::CallerNumber;
use crate::sip::invite_check::{check_invite, InviteExtensions, Refusal};
use crate::sip::legs::{caller_number, source_ip};
use crate::sip::request_check::{check_invite_content, check_scheme};
use crate::sip::sdes::{self, SdesOffer};
use crate::sip::sdp::{MediaOffer, SdpError};
use rsipstack::dialog::DialogId;
use rsipstack::sip::{Request, StatusCode};
use rsipstack::transaction::key::TransactionRole;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The INVITE's SDP offer.
#[derive(Clone, Debug, PartialEq)]
pub enum Offer {
    /// No body: dialin makes the offer in its 200, the ACK answers (late offer).
    None,
    /// An audio offer, with its SRTP crypto lines.
    Audio {
        /// The audio m-line and its attributes.
        media: MediaOffer,
        /// The profile and crypto line, for deciding SRTP.
        sdes: SdesOffer,
    },
    /// A body dialin cannot use (no audio, broken SDP): the call gets 488.
    Unusable(SdpError),
}

/// A new call as the edge parsed it. `Debug` hides the caller's number and address.
pub struct IncomingCall {
    /// The address the INVITE came from (the gate's `received`), for the trunk and the
    /// source network; never logged.
    pub source: Option<IpAddr>,
    /// Who calls (P-Asserted-Identity, then From; withheld where asked).
    pub caller: CallerNumber,
    /// The number dialled (the Request-URI's user part), e.g. for per-number rules.
    pub called: String,
    /// Session timer and reliable-provisional requirements.
    pub extensions: InviteExtensions,
    /// The SDP offer, parsed once.
    pub offer: Offer,
    /// The dialog the INVITE starts (Call-ID and tags), to subscribe to its events first.
    pub dialog_id: DialogId,
}

impl fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingCall")
            .field("called", &self.called)
            .field("extensions", &self.extensions)
            .field("offer", &self.offer.kind())
            .finish_non_exhaustive()
    }
}

impl IncomingCall {
    /// Parses `req` at `now`; an INVITE dialin cannot take is refused with the status (and
    /// headers) that say why: 416 for a Request-URI scheme it does not serve, 415 for a body
    /// that is not SDP, 406 for an `Accept` without SDP (`request_check`), 420 for an unknown
    /// `Require`, 422 for a session interval below `min_se`, 400 without a usable Call-ID or
    /// From tag.
    pub fn parse(req: &Request, min_se: Duration, now: Instant) -> Result<IncomingCall, Refusal> {
        check_scheme(req)?;
        check_invite_content(req)?;
        let extensions = check_invite(req, min_se, now)?;
        let dialog_id = DialogId::try_from((req, TransactionRole::Server))
            .map_err(|_| (StatusCode::BadRequest, Vec::new()))?;
        Ok(IncomingCall {
            source: source_ip(req),
            caller: caller_number(req),
            called: req
                .uri
                .auth
                .as_ref()
                .map(|a| a.user.clone())
                .unwrap_or_default(),
            extensions,
            offer: Offer::parse(&req.body),
            dialog_id,
        })
    }
}

impl Offer {
    /// The offer's kind, for `Debug` (the crypto line holds a key, the SDP addresses).
    fn kind(&self) -> &'static str {
        match self {
            Offer::None => "none",
            Offer::Audio { .. } => "audio",
            Offer::Unusable(_) => "unusable",
        }
    }

    /// Parses an INVITE body (empty: a late offer).
    pub fn parse(body: &[u8]) -> Offer {
        if body.is_empty() {
            return Offer::None;
        }
        match MediaOffer::parse(body) {
            Ok(media) => Offer::Audio {
                media,
                sdes: sdes::parse_offer(body),
            },
            Err(e) => Offer::Unusable(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str, body: &str) -> Request {
        let text = format!(
            "INVITE sip:4930555000@192.0.2.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1;received=192.0.2.9\r\n\
             From: <sip:+49301234567@192.0.2.9>;tag=a\r\n\
             To: <sip:4930555000@192.0.2.1>\r\n\
             Call-ID: x\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Request::try_from(text.as_str()).expect("a request")
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
                       m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn an_invite_is_parsed_once_into_source_numbers_extensions_and_offer() {
        let call = IncomingCall::parse(
            &invite("Session-Expires: 1800\r\nSupported: timer\r\n", SDP),
            Duration::from_secs(90),
            Instant::now(),
        )
        .expect("taken");
        assert_eq!(call.source, Some("192.0.2.9".parse().expect("ip")));
        assert_eq!(call.caller.expose(), Some("+49301234567"));
        assert_eq!(call.called, "4930555000");
        assert!(call.extensions.timer.is_some());
        assert!(matches!(&call.offer, Offer::Audio { media, .. } if media.port == 4000));
        assert_eq!(call.dialog_id.call_id, "x");
        let shown = format!("{call:?}");
        assert!(
            !shown.contains("49301234567") && !shown.contains("192.0.2.9"),
            "{shown}"
        );
    }

    #[test]
    fn no_body_is_a_late_offer_and_a_broken_one_is_unusable() {
        let now = Instant::now();
        let min_se = Duration::from_secs(90);
        let late = IncomingCall::parse(&invite("", ""), min_se, now).expect("taken");
        assert_eq!(late.offer, Offer::None);
        let video = SDP.replace("m=audio", "m=video");
        let broken = IncomingCall::parse(&invite("", &video), min_se, now).expect("taken");
        assert!(matches!(broken.offer, Offer::Unusable(_)));
    }

    #[test]
    fn an_unknown_requirement_is_refused_before_anything_else() {
        let refused = IncomingCall::parse(
            &invite("Require: foo\r\n", SDP),
            Duration::from_secs(90),
            Instant::now(),
        )
        .expect_err("refused");
        assert_eq!(refused.0, StatusCode::BadExtension);
    }
}
