//! The extension checks of a new INVITE, before any resource is spent on it: option tags in
//! `Require` dialin does not understand (`420` with `Unsupported`), and the session-timer
//! request (`422` with `Min-SE` when too short).

use crate::sip::session_timer::{
    has_tag, unsupported_requirements, SessionRequest, SessionTimer, SessionTimerError,
};
use rsipstack::sip::{Header, Request, StatusCode};
use std::time::{Duration, Instant};

/// What a new INVITE asked of dialin's SIP extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InviteExtensions {
    /// The negotiated session timer, if the INVITE asked for one.
    pub timer: Option<SessionTimer>,
    /// `Require: 100rel`: this call must get no provisional response other than 100 (dialin
    /// does not send reliable provisionals, so it sends none), i.e. no 180 while ringing.
    pub no_provisionals: bool,
}

/// A refusal: status code and the headers that explain it.
pub type Refusal = (StatusCode, Vec<Header>);

/// The values of every header named `name` (canonical name; compact forms are mapped by the
/// parser).
pub(super) fn values<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
}

/// Checks a new INVITE at `now` against dialin's extensions and `min_se`.
pub fn check_invite(
    req: &Request,
    min_se: Duration,
    now: Instant,
) -> Result<InviteExtensions, Refusal> {
    let unsupported = unsupported_requirements(values(req, "Require"));
    if !unsupported.is_empty() {
        let header = Header::Unsupported(unsupported.join(", ").into());
        return Err((StatusCode::BadExtension, vec![header]));
    }
    let caller_supports =
        has_tag(values(req, "Supported"), "timer") || has_tag(values(req, "Require"), "timer");
    let session_expires = values(req, "Session-Expires").next();
    let request = SessionRequest::parse(session_expires, caller_supports);
    let timer = SessionTimer::negotiate(request, min_se, now).map_err(|e| match e {
        SessionTimerError::TooSmall { min_se } => (
            StatusCode::SessionIntervalTooSmall,
            vec![Header::MinSE(min_se.as_secs().to_string().into())],
        ),
    })?;
    Ok(InviteExtensions {
        timer,
        no_provisionals: has_tag(values(req, "Require"), "100rel"),
    })
}

/// The session-timer headers of our 2xx (to the INVITE and to each refresh); none without a
/// timer.
pub fn timer_headers(timer: Option<&SessionTimer>) -> Vec<Header> {
    let Some(t) = timer else { return Vec::new() };
    // `Supported: timer` comes with every answer (`capabilities::answer_headers`).
    let mut headers = vec![Header::SessionExpires(t.session_expires().into())];
    if t.require_timer() {
        headers.push(Header::Require("timer".into()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n\
             f: <sip:2@127.0.0.1>;tag=1\r\nt: <sip:1@127.0.0.1>\r\ni: c1\r\nCSeq: 1 INVITE\r\n{extra}l: 0\r\n\r\n"
        );
        Request::try_from(text.as_bytes()).expect("a parseable INVITE")
    }

    #[test]
    fn table() {
        let now = Instant::now();
        let min = Duration::from_secs(90);
        // (extra headers, expected status or Ok(refresher header, no_provisionals))
        type Want = Result<(Option<&'static str>, bool), u16>;
        let cases: &[(&str, Want)] = &[
            ("", Ok((None, false))),
            ("Supported: 100rel, timer\r\n", Ok((None, false))),
            ("Require: 100rel\r\n", Ok((None, true))),
            ("Require: replaces\r\n", Err(420)),
            (
                "k: timer\r\nx: 1800\r\n",
                Ok((Some("1800;refresher=uac"), false)),
            ),
            (
                "Session-Expires: 1800;refresher=uac\r\n",
                Ok((Some("1800;refresher=uas"), false)),
            ),
            ("Supported: timer\r\nSession-Expires: 60\r\n", Err(422)),
        ];
        for (extra, want) in cases {
            let got = check_invite(&invite(extra), min, now);
            match (got, want) {
                (Ok(ext), Ok((se, no_prov))) => {
                    assert_eq!(
                        ext.timer.map(|t| t.session_expires()).as_deref(),
                        *se,
                        "{extra}"
                    );
                    assert_eq!(ext.no_provisionals, *no_prov, "{extra}");
                }
                (Err((code, headers)), Err(want)) => {
                    assert_eq!(u16::from(code), *want, "{extra}");
                    let names: Vec<_> = headers.iter().map(|h| h.name().to_string()).collect();
                    let expected = if *want == 420 {
                        "Unsupported"
                    } else {
                        "Min-SE"
                    };
                    assert_eq!(names, [expected], "{extra}");
                }
                (got, want) => panic!("{extra}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unsupported_lists_the_tags() {
        let (_, headers) = check_invite(
            &invite("Require: foo, 100rel\r\nRequire: bar\r\n"),
            Duration::from_secs(90),
            Instant::now(),
        )
        .unwrap_err();
        assert_eq!(headers[0].value(), "foo, bar");
    }
}
