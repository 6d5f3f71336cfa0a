//! `[lifecycle]`: how a running instance drains (how long calls may go on, what a refused call
//! is told).

use std::time::Duration;

use super::error::Problems;
use super::reader::Section;
use super::values::parse_duration;
use super::values::DurationError;

/// `[lifecycle]`: graceful drain on SIGTERM or `dialin drain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// How long bridged calls may go on after a drain starts (default 1 h); at this deadline
    /// calls still in the voice menu hear a short goodbye and bridged calls are hung up.
    pub drain_max: Duration,
    /// The `Retry-After` of the 503 that new INVITEs get while draining (default 30 s).
    pub retry_after: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> LifecycleConfig {
        LifecycleConfig {
            drain_max: Duration::from_secs(3600),
            retry_after: Duration::from_secs(30),
        }
    }
}

/// `[lifecycle]`.
pub(super) fn lifecycle(root: &Section<'_>, p: &mut Problems<'_>) -> LifecycleConfig {
    let s = root.table(p, "lifecycle", &["drain_max", "retry_after"]);
    let mut c = LifecycleConfig::default();
    if let Some(v) = s.parsed(p, "drain_max", parse_duration) {
        c.drain_max = v.value;
    }
    if let Some(v) = s.parsed(p, "retry_after", |t| {
        let d = parse_duration(t)?;
        if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
            return Err(DurationError::OutOfRange(
                "must be from \"1s\" to \"1h\" (Retry-After counts whole seconds)",
            ));
        }
        Ok(d)
    }) {
        c.retry_after = v.value;
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn defaults_and_values() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.lifecycle.drain_max, Duration::from_secs(3600));
        let c = Config::from_toml(
            "[lifecycle]\ndrain_max = \"5m\"\nretry_after = \"10s\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.lifecycle.drain_max, Duration::from_secs(300));
        assert_eq!(c.lifecycle.retry_after, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let e = Config::from_toml(
            "[admin]\nlisten = \"localhost\"\n[lifecycle]\nretry_after = \"2h\"\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("f.toml:2: admin.listen: not an address"), "{e}");
        assert!(
            e.contains("f.toml:4: lifecycle.retry_after: must be from"),
            "{e}"
        );
    }
}
