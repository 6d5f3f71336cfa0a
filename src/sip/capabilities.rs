//! What dialin tells its peers it can do: the `Allow` and `Supported` headers.
//!
//! Providers and FreeSWITCH decide from these whether to send UPDATE or INFO, and whether to
//! run session timers (RFC 4028) with dialin; a header that claims more than dialin does breaks
//! calls later (a session timer nobody refreshes ends the call), so each claim here is backed by
//! code: re-INVITE and UPDATE on both legs (`call::core::legs`), INFO digits, in-dialog
//! OPTIONS, and session timers answered and refreshed on the caller leg only (`call::core`).

use crate::sip::session_timer::SessionTimer;
use rsipstack::sip::Header;

/// The methods dialin handles in a call (on either leg) and out of one (OPTIONS).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE";

/// The extensions dialin supports toward a caller: session timers.
pub const SUPPORTED: &str = "timer";

/// The headers of dialin's 2xx to a caller's INVITE or re-INVITE (and to OPTIONS): `Allow`,
/// `Supported`, and the session timer's own headers where one runs.
pub fn answer_headers(timer: Option<&SessionTimer>) -> Vec<Header> {
    let mut headers = vec![
        Header::Allow(ALLOW.into()),
        Header::Supported(SUPPORTED.into()),
    ];
    headers.extend(crate::sip::invite_check::timer_headers(timer));
    headers
}

/// The headers of dialin's INVITE to a BBB server: `Allow`, and an empty `Supported` (RFC 3261
/// allows no option tag): no `timer`, because dialin does not refresh the server leg's session;
/// without it FreeSWITCH either runs no session timer or refreshes it itself (RFC 4028 §7.1),
/// which dialin answers.
pub fn server_invite_headers() -> Vec<Header> {
    vec![
        Header::Allow(ALLOW.into()),
        Header::Supported(String::new().into()),
    ]
}

/// Removes `User-Agent` and `Server` from everything dialin sends, for `sip.user_agent = ""`.
/// rsipstack puts its endpoint's user agent into every request and response it builds (an
/// empty one as an empty header); its message inspector sees each message last before the
/// wire, so this is the one place that catches them all.
pub struct NoUserAgent;

impl rsipstack::transaction::endpoint::MessageInspector for NoUserAgent {
    fn before_send(
        &self,
        mut msg: rsipstack::sip::SipMessage,
        _dest: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        use rsipstack::sip::HasHeaders;
        msg.headers_mut()
            .retain(|h| !matches!(h, Header::UserAgent(_) | Header::Server(_)));
        msg
    }

    fn after_received(
        &self,
        msg: rsipstack::sip::SipMessage,
        _from: Option<&rsipstack::transport::SipAddr>,
    ) -> rsipstack::sip::SipMessage {
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(headers: &[Header]) -> Vec<String> {
        headers.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn the_answer_claims_timers_and_the_server_invite_does_not() {
        let answer = render(&answer_headers(None));
        assert_eq!(
            answer,
            [format!("Allow: {ALLOW}"), "Supported: timer".into()]
        );
        let invite = render(&server_invite_headers());
        assert_eq!(invite, [format!("Allow: {ALLOW}"), "Supported: ".into()]);
        for method in [
            "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE",
        ] {
            assert!(ALLOW.split(", ").any(|m| m == method), "{method}");
        }
    }
}
