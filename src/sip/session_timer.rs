//! SIP session timers (RFC 4028) on the trunk leg, and the `Require` check of a new INVITE.
//!
//! Providers use session timers to find calls whose other end vanished: the INVITE carries
//! `Session-Expires` (and `Supported: timer` when the provider can refresh). dialin honours
//! them: the 200 OK says who refreshes, a refresh (re-INVITE or UPDATE) restarts the clock, and
//! a session nobody refreshed in time is ended. When the provider cannot refresh, dialin does
//! (a re-INVITE with its current SDP at half the interval).
//!
//! Pure: [`SessionTimer`] takes `now` and answers deadlines; the driver does the sending.

use std::time::{Duration, Instant};

/// The option tags dialin honours in `Require`: `timer` (RFC 4028) and `100rel` (RFC 3262,
/// honoured by never sending a provisional response other than 100 on such a call).
const UNDERSTOOD: [&str; 2] = ["timer", "100rel"];

/// The option tags of `Require` values that dialin does not understand, for a `420 Bad
/// Extension` with `Unsupported` (RFC 3261 §8.2.2.3); empty when all are understood.
pub fn unsupported_requirements<'a>(require: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    require
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !UNDERSTOOD.iter().any(|u| u.eq_ignore_ascii_case(t)))
        .map(str::to_string)
        .collect()
}

/// Whether `values` (of `Require` or `Supported`) contain `tag`.
pub fn has_tag<'a>(values: impl IntoIterator<Item = &'a str>, tag: &str) -> bool {
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// Who refreshes the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresher {
    /// The caller's side (`refresher=uac`): dialin only watches for the refresh.
    Caller,
    /// dialin (`refresher=uas`): it sends a re-INVITE at half the interval.
    Us,
}

/// What the INVITE asked for, parsed at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRequest {
    /// `Session-Expires` delta-seconds.
    pub interval: Duration,
    /// The `refresher` parameter, if given.
    pub refresher: Option<Refresher>,
    /// Whether the caller's side supports timers (`Supported: timer` or `Require: timer`).
    pub caller_supports: bool,
}

impl SessionRequest {
    /// Parses a `Session-Expires` value (`1800;refresher=uac`); `None` when absent or broken.
    pub fn parse(session_expires: Option<&str>, caller_supports: bool) -> Option<SessionRequest> {
        let mut parts = session_expires?.split(';');
        let secs: u64 = parts.next()?.trim().parse().ok()?;
        let refresher = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match v.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Caller),
                "uas" => Some(Refresher::Us),
                _ => None,
            }
        });
        Some(SessionRequest {
            interval: Duration::from_secs(secs),
            refresher,
            caller_supports,
        })
    }
}

/// Why a session-timer request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionTimerError {
    /// The interval is below our `Min-SE`: answer `422` with `Min-SE`.
    #[error("session interval below Min-SE")]
    TooSmall {
        /// Our minimum, for the `Min-SE` header.
        min_se: Duration,
    },
}

/// A running session timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimer {
    /// The negotiated interval.
    interval: Duration,
    /// Who refreshes.
    refresher: Refresher,
    /// Whether the caller's side supports timers (then our 2xx carries `Require: timer`).
    caller_supports: bool,
    /// When the session was last refreshed (or established).
    refreshed_at: Instant,
}

impl SessionTimer {
    /// Negotiates the INVITE's request at `now`. No `Session-Expires`: no timer. An interval
    /// below `min_se` is refused; the caller's choice of refresher is kept, and a caller that
    /// cannot refresh makes dialin the refresher.
    pub fn negotiate(
        request: Option<SessionRequest>,
        min_se: Duration,
        now: Instant,
    ) -> Result<Option<SessionTimer>, SessionTimerError> {
        let Some(r) = request else { return Ok(None) };
        if r.interval < min_se {
            return Err(SessionTimerError::TooSmall { min_se });
        }
        let refresher = match (r.caller_supports, r.refresher) {
            (false, _) => Refresher::Us,
            (true, Some(who)) => who,
            (true, None) => Refresher::Caller,
        };
        Ok(Some(SessionTimer {
            interval: r.interval,
            refresher,
            caller_supports: r.caller_supports,
            refreshed_at: now,
        }))
    }

    /// Who refreshes.
    pub fn refresher(&self) -> Refresher {
        self.refresher
    }

    /// The `Session-Expires` value for our 2xx (to the INVITE and to every refresh).
    pub fn session_expires(&self) -> String {
        let who = match self.refresher {
            Refresher::Caller => "uac",
            Refresher::Us => "uas",
        };
        format!("{};refresher={who}", self.interval.as_secs())
    }

    /// Whether our 2xx must carry `Require: timer` (only when the caller supports timers).
    pub fn require_timer(&self) -> bool {
        self.caller_supports
    }

    /// A refresh arrived (or ours succeeded) at `now`: the clock starts again.
    pub fn handle_refresh(&mut self, now: Instant) {
        self.refreshed_at = now;
    }

    /// When dialin must send its refresh (`None` when the caller refreshes): half the interval.
    pub fn poll_refresh(&self) -> Option<Instant> {
        (self.refresher == Refresher::Us).then(|| self.refreshed_at + self.interval / 2)
    }

    /// When the session expires without a refresh: for a caller-refreshed session, the interval
    /// minus min(32 s, a third of it) (RFC 4028 §10), so our BYE goes out before the caller's
    /// side gives up; for our own refreshes, the full interval.
    pub fn poll_expiry(&self) -> Instant {
        let slack = match self.refresher {
            Refresher::Caller => (self.interval / 3).min(Duration::from_secs(32)),
            Refresher::Us => Duration::ZERO,
        };
        self.refreshed_at + self.interval - slack
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(90);

    fn req(se: &str, supports: bool) -> Option<SessionRequest> {
        SessionRequest::parse(Some(se), supports)
    }

    #[test]
    fn require_tags() {
        let table: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["100rel"], &[]),
            (&["timer, 100rel"], &[]),
            (&["TIMER"], &[]),
            (&["replaces", "100rel, foo"], &["replaces", "foo"]),
            (&[" , "], &[]),
        ];
        for (values, want) in table {
            assert_eq!(
                unsupported_requirements(values.iter().copied()),
                *want,
                "{values:?}"
            );
        }
        assert!(has_tag(["100rel, timer"], "timer"));
        assert!(!has_tag(["100rel"], "timer"));
    }

    #[test]
    fn parses_session_expires() {
        let r = req("1800;refresher=uac", true).unwrap();
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.refresher, Some(Refresher::Caller));
        assert_eq!(
            req("600 ; Refresher = UAS", true).unwrap().refresher,
            Some(Refresher::Us)
        );
        assert_eq!(req("600", false).unwrap().refresher, None);
        assert!(req("soon", true).is_none());
        assert!(SessionRequest::parse(None, true).is_none());
    }

    #[test]
    fn negotiation_table() {
        let t0 = Instant::now();
        // (Session-Expires, caller supports timer) → (refresher, our Session-Expires, Require)
        let table = [
            (
                "1800;refresher=uac",
                true,
                Refresher::Caller,
                "1800;refresher=uac",
                true,
            ),
            (
                "1800;refresher=uas",
                true,
                Refresher::Us,
                "1800;refresher=uas",
                true,
            ),
            ("1800", true, Refresher::Caller, "1800;refresher=uac", true),
            (
                "1800;refresher=uac",
                false,
                Refresher::Us,
                "1800;refresher=uas",
                false,
            ),
            ("90", false, Refresher::Us, "90;refresher=uas", false),
        ];
        for (se, supports, who, header, require) in table {
            let t = SessionTimer::negotiate(req(se, supports), MIN, t0)
                .unwrap()
                .unwrap();
            assert_eq!(t.refresher(), who, "{se}");
            assert_eq!(t.session_expires(), header, "{se}");
            assert_eq!(t.require_timer(), require, "{se}");
        }
        assert_eq!(SessionTimer::negotiate(None, MIN, t0), Ok(None));
        assert_eq!(
            SessionTimer::negotiate(req("89", true), MIN, t0),
            Err(SessionTimerError::TooSmall { min_se: MIN })
        );
    }

    #[test]
    fn deadlines_move_with_refreshes() {
        let t0 = Instant::now();
        let s = |n| Duration::from_secs(n);
        let mut caller = SessionTimer::negotiate(req("1800;refresher=uac", true), MIN, t0)
            .unwrap()
            .unwrap();
        assert_eq!(caller.poll_refresh(), None);
        assert_eq!(caller.poll_expiry(), t0 + s(1800 - 32));
        caller.handle_refresh(t0 + s(900));
        assert_eq!(caller.poll_expiry(), t0 + s(900 + 1800 - 32));
        // Short intervals keep a third as slack.
        let short = SessionTimer::negotiate(req("90;refresher=uac", true), MIN, t0)
            .unwrap()
            .unwrap();
        assert_eq!(short.poll_expiry(), t0 + s(60));

        let mut ours = SessionTimer::negotiate(req("120", false), MIN, t0)
            .unwrap()
            .unwrap();
        assert_eq!(ours.poll_refresh(), Some(t0 + s(60)));
        assert_eq!(ours.poll_expiry(), t0 + s(120));
        ours.handle_refresh(t0 + s(60));
        assert_eq!(ours.poll_refresh(), Some(t0 + s(120)));
    }
}
