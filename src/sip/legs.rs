//! SIP details of the two legs that the call driver should not have to know: who is calling
//! (for the masked caller ID only), and the INVITE toward a BBB server.

use crate::privacy::MaskedCaller;
use crate::routing::ConferenceTarget;
use crate::secret::CallerNumber;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Request, Transport};
use rsipstack::transport::SipAddr;
use std::net::{IpAddr, SocketAddr};

/// The caller's number as the trunk presents it: P-Asserted-Identity first, then From.
/// `Privacy: id` (RFC 3325) or an anonymous URI means withheld.
pub fn caller_number(req: &Request) -> CallerNumber {
    let privacy_id = req
        .header_value("Privacy")
        .map(|v| {
            v.split(';')
                .any(|t| t.trim().eq_ignore_ascii_case("id") || t.trim() == "user")
        })
        .unwrap_or(false);
    if privacy_id {
        return CallerNumber::withheld();
    }
    let pai_user = req.header_value("P-Asserted-Identity").and_then(|v| {
        rsipstack::sip::typed::From::parse(&v)
            .ok()
            .and_then(|f| f.uri.auth.map(|a| a.user))
    });
    let from_user = || {
        req.from_header()
            .ok()
            .and_then(|f| f.typed().ok())
            .and_then(|f| f.uri.auth.map(|a| a.user))
    };
    match pai_user.or_else(from_user) {
        Some(user) => CallerNumber::new(&user),
        None => CallerNumber::withheld(),
    }
}

/// The `Content-Type` header for SDP bodies.
pub fn sdp_content_type() -> Header {
    Header::ContentType("application/sdp".into())
}

/// The server leg's INVITE could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the server's SIP address or the masked caller does not form a valid SIP URI; check servers.sip")]
pub struct InvalidUri;

/// Builds the INVITE toward `sip:<conference>@<server>`: the From carries only the masked
/// caller ID; no header carries the caller's number. `dialin_call` (a random per-call token)
/// goes into the `X-Dialin-Call` header, which FreeSWITCH exposes as a channel variable: the
/// Event Socket client matches our leg to its conference member id by it (for the mute key).
pub fn server_invite(
    target: &ConferenceTarget,
    masked: &MaskedCaller,
    dialin_call: &str,
    advertise: IpAddr,
    sip_port: u16,
    contact: rsipstack::sip::Uri,
    sdp_offer: String,
) -> Result<InviteOption, InvalidUri> {
    let addr = target.server_addr;
    let callee = rsipstack::sip::Uri::try_from(
        format!("sip:{}@{}", target.conference.expose(), host_port(addr)).as_str(),
    )
    .map_err(|_| InvalidUri)?;
    let caller = rsipstack::sip::Uri::try_from(
        format!(
            "sip:{}@{}",
            masked.user,
            host_port(SocketAddr::new(advertise, sip_port))
        )
        .as_str(),
    )
    .map_err(|_| InvalidUri)?;
    Ok(InviteOption {
        caller_display_name: Some(masked.display.clone()),
        caller,
        callee,
        destination: Some(SipAddr {
            r#type: Some(Transport::Udp),
            addr: addr.into(),
        }),
        content_type: Some("application/sdp".into()),
        offer: Some(sdp_offer.into_bytes()),
        contact,
        headers: Some(vec![Header::Other(
            crate::esl::message::DIALIN_CALL_HEADER.into(),
            dialin_call.into(),
        )]),
        ..Default::default()
    })
}

fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The address a request came from, as the transport recorded it in the top Via (`received`,
/// or the Via host when it matched). Used to find the trunk of a new call; never logged.
pub fn source_ip(req: &Request) -> Option<IpAddr> {
    let via = req.via_header().ok()?;
    let (_, host) = rsipstack::transport::SipConnection::parse_target_from_via(via).ok()?;
    match host.host {
        rsipstack::sip::Host::IpAddr(ip) => Some(ip),
        rsipstack::sip::Host::Domain(_) => None,
    }
}
