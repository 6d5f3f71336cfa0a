//! `[probes]`: SIP OPTIONS probes to every `[[servers]]` entry, so a server known to be dead
//! gets no new calls (issue 22). Modelled on Kamailio's dispatcher (`ds_ping_interval`,
//! `ds_probing_threshold`, `ds_inactive_threshold`); off unless `interval` is set, as there.

use super::error::Problems;
use super::reader::Section;
use super::values::parse_duration;
use crate::routing::probe::ProbeSettings;
use std::time::Duration;

/// Why a `[probes]` duration is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeValueError {
    /// Not a duration.
    #[error(transparent)]
    Duration(#[from] super::values::DurationError),
    /// Outside the allowed range.
    #[error("{0}")]
    OutOfRange(&'static str),
}

/// `[probes]` as configured: `None` when probing is off (no `interval`).
pub(super) fn section(root: &Section<'_>, p: &mut Problems<'_>) -> Option<ProbeSettings> {
    let s = root.table(
        p,
        "probes",
        &["interval", "timeout", "failures", "recoveries"],
    );
    let ranged = |min: Duration, max: Duration, what: &'static str| {
        move |t: &str| -> Result<Duration, ProbeValueError> {
            let d = parse_duration(t)?;
            if d < min || d > max {
                return Err(ProbeValueError::OutOfRange(what));
            }
            Ok(d)
        }
    };
    let interval = s.parsed(
        p,
        "interval",
        ranged(
            Duration::from_millis(200),
            Duration::from_secs(3600),
            "must be from 200ms to 1h; 1s finds a dead server within about 2 s (with failures = 2)",
        ),
    );
    let timeout = s.parsed(
        p,
        "timeout",
        ranged(
            Duration::from_millis(100),
            Duration::from_secs(60),
            "must be from 100ms to 60s; a FreeSWITCH answers OPTIONS within milliseconds",
        ),
    );
    let failures = s.integer(p, "failures", 1..=100);
    let recoveries = s.integer(p, "recoveries", 1..=100);
    let Some(interval) = interval else {
        for key in ["timeout", "failures", "recoveries"] {
            if s.has(key) {
                p.push(
                    s.line,
                    s.path_of(key),
                    "set, but probes.interval is not (probes are off); add interval = \"1s\" or remove this key",
                );
            }
        }
        return None;
    };
    let mut settings = ProbeSettings::with_interval(interval.value);
    if let Some(t) = timeout {
        if t.value > interval.value {
            p.push(
                t.line,
                t.path,
                "longer than probes.interval; a probe must end before the next one is due",
            );
        } else {
            settings.timeout = t.value;
        }
    }
    if let Some(n) = failures {
        settings.failures = n.value as u32;
    }
    if let Some(n) = recoveries {
        settings.recoveries = n.value as u32;
    }
    Some(settings)
}
