//! What a request outside a dialog must say before dialin takes it, with the refusal RFC 3261
//! (§8.2) and RFC 4475's torture tests expect of a UAS, instead of a call or a silent `200`:
//! - a Request-URI scheme dialin does not serve (not `sip`, `sips` or `tel`): `416`;
//! - an INVITE body that is not `application/sdp`: `415` with `Accept: application/sdp`;
//! - an `Accept` that rules out `application/sdp` (dialin's answer is SDP): `406`;
//! - a method dialin does not take outside a call (REGISTER, MESSAGE, SUBSCRIBE, PUBLISH,
//!   REFER): `405` with `Allow`. In-dialog methods without a dialog keep `481`.

use crate::sip::capabilities::ALLOW;
use crate::sip::invite_check::{values, Refusal};
use rsipstack::sip::uri::Scheme;
use rsipstack::sip::{Header, Method, Request, StatusCode};

/// The refusal of a request whose Request-URI scheme dialin does not serve. rsipstack reads
/// a scheme of letters only; any other (`soap.beep:`) leaves none, which a Request-URI must
/// have, so that is refused too.
pub fn check_scheme(req: &Request) -> Result<(), Refusal> {
    match &req.uri.scheme {
        Some(Scheme::Sip | Scheme::Sips) => Ok(()),
        Some(Scheme::Other(s)) if s.eq_ignore_ascii_case("tel") => Ok(()),
        _ => Err((StatusCode::UnsupportedUriScheme, Vec::new())),
    }
}

/// The media type of a header value, without parameters, in lower case.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The values of every header named `name`, split at commas.
fn list<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    values(req, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The refusals of a new INVITE's body and `Accept` (checked before its SDP is read).
pub fn check_invite_content(req: &Request) -> Result<(), Refusal> {
    if !req.body.is_empty() {
        let content_type = list(req, "Content-Type").next().map(media_type);
        if content_type
            .as_deref()
            .is_some_and(|t| t != "application/sdp")
        {
            let accept = Header::Accept("application/sdp".into());
            return Err((StatusCode::UnsupportedMediaType, vec![accept]));
        }
    }
    let mut accepts = list(req, "Accept").map(media_type).peekable();
    if accepts.peek().is_some()
        && !accepts.any(|t| matches!(t.as_str(), "application/sdp" | "application/*" | "*/*"))
    {
        return Err((StatusCode::NotAcceptable, Vec::new()));
    }
    Ok(())
}

/// The answer to a request without a dialog that is neither INVITE nor OPTIONS (nor ACK,
/// which gets none): `405` with `Allow` for a method dialin never takes outside a call, `481`
/// for one that belongs in a dialog that does not exist.
pub fn outside_dialog(method: Method) -> Refusal {
    match method {
        Method::Register
        | Method::Message
        | Method::Subscribe
        | Method::Publish
        | Method::Refer => (
            StatusCode::MethodNotAllowed,
            vec![Header::Allow(ALLOW.into())],
        ),
        _ => (StatusCode::CallTransactionDoesNotExist, Vec::new()),
    }
}

#[cfg(test)]
#[path = "request_check_tests.rs"]
mod tests;
