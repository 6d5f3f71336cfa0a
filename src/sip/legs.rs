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
        headers: Some(
            [Header::Other(
                crate::esl::message::DIALIN_CALL_HEADER.into(),
                dialin_call.into(),
            )]
            .into_iter()
            .chain(crate::sip::capabilities::server_invite_headers())
            .collect(),
        ),
        ..Default::default()
    })
}

fn host_port(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// The address a request came from: the top Via's `received`, which the request gate
/// ([`crate::sip::source_filter`]) sets to the transport's remote address on every request it
/// lets through. The Via host the peer wrote is never used: `None` without `received`. Used to
/// find the trunk of a new call and its source network; never logged.
pub fn source_ip(req: &Request) -> Option<IpAddr> {
    use rsipstack::sip::Param;
    let via = req.via_header().ok()?.first_value().ok()?.typed().ok()?;
    via.params.iter().find_map(|p| match p {
        // Bare, as the gate writes it; bracketed IPv6 as some stacks write it.
        Param::Received(r) => r
            .to_string()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(via: &str, extra: &str) -> Request {
        let text = format!(
            "INVITE sip:4930555000@192.0.2.1 SIP/2.0\r\n\
             Via: {via}\r\n\
             From: \"+49 30 1234567\" <sip:+49301234567@192.0.2.9>;tag=a\r\n\
             To: <sip:4930555000@192.0.2.1>\r\n\
             Call-ID: x\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("test INVITE parses")
    }

    #[test]
    fn source_is_the_received_address_never_the_via_host() {
        let cases = [
            (
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=198.51.100.7",
                Some("198.51.100.7"),
            ),
            (
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=198.51.100.7;rport=5062",
                Some("198.51.100.7"),
            ),
            (
                "SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK1;received=[2001:db8::6]",
                Some("2001:db8::6"),
            ),
            // Not stamped by the gate: a Via host says nothing about the source.
            ("SIP/2.0/UDP 198.51.100.8:5060;branch=z9hG4bK1", None),
            ("SIP/2.0/UDP sbc.example.net;branch=z9hG4bK1", None),
        ];
        for (via, want) in cases {
            let got = source_ip(&invite(via, ""));
            assert_eq!(got, want.map(|w| w.parse().unwrap()), "{via}");
        }
    }

    #[test]
    fn privacy_id_or_anonymous_withholds_the_number() {
        let via = "SIP/2.0/UDP 198.51.100.8:5060;branch=z9hG4bK1";
        let cases = [
            ("", Some("+49301234567")),
            (
                "P-Asserted-Identity: <sip:+4940111@192.0.2.9>\r\n",
                Some("+4940111"),
            ),
            (
                "Privacy: id\r\nP-Asserted-Identity: <sip:+4940111@192.0.2.9>\r\n",
                None,
            ),
            ("Privacy: user;id\r\n", None),
        ];
        for (extra, want) in cases {
            assert_eq!(caller_number(&invite(via, extra)).expose(), want, "{extra}");
        }
    }
}
