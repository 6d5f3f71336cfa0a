//! `[privacy]` (what the meeting and the logs see of a caller) and `[abuse]` (guessing
//! protection): their types and how they are read.

use super::error::Problems;
use super::reader::Section;
use super::values::parse_duration;
use super::values::DurationError;
use crate::privacy::guard::GuardLimits;
use crate::privacy::mask::{is_acceptable_name, CallerIdPolicy, MAX_KEEP_DIGITS};
use crate::privacy::pseudonym::DEFAULT_ROTATION;
use std::time::Duration;

/// `[privacy]`: the caller ID the meeting sees and how log pseudonyms are keyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    /// `caller_id` (+ `keep_digits`, `fixed_name`): default `mask` with 2 digits.
    pub caller_id: CallerIdPolicy,
    /// `pseudonym_rotation`: how long one pseudonym key lives (default 24 h, 1 min to 7 days).
    pub pseudonym_rotation: Duration,
}

impl Default for PrivacyConfig {
    fn default() -> PrivacyConfig {
        PrivacyConfig {
            caller_id: CallerIdPolicy::default(),
            pseudonym_rotation: DEFAULT_ROTATION,
        }
    }
}

/// `[privacy]`.
pub(super) fn privacy(root: &Section<'_>, p: &mut Problems<'_>) -> PrivacyConfig {
    let s = root.table(
        p,
        "privacy",
        &[
            "caller_id",
            "keep_digits",
            "fixed_name",
            "pseudonym_rotation",
        ],
    );
    let mut c = PrivacyConfig::default();
    let keep = s
        .integer(p, "keep_digits", 0..=MAX_KEEP_DIGITS as i64)
        .map(|v| v.value as usize);
    let fixed = s.parsed(p, "fixed_name", |t| {
        if is_acceptable_name(t) {
            Ok(t.to_string())
        } else {
            Err("must be 1 to 64 characters without quotes, backslashes or control characters, not \"anonymous\", without \"-bbbID-\" and not starting with \"GLOBAL_AUDIO_\" (BBB hides or rejects such callers)")
        }
    });
    let policy = s.parsed(p, "caller_id", |t| match t {
        "mask" | "sequence" | "fixed" => Ok(t.to_string()),
        _ => Err("must be \"mask\" (last digits), \"sequence\" (Phone 1, Phone 2, …) or \"fixed\" (fixed_name for everyone)"),
    });
    match policy.as_ref().map(|v| v.value.as_str()) {
        Some("sequence") => c.caller_id = CallerIdPolicy::Sequence,
        Some("fixed") => match fixed {
            Some(name) => c.caller_id = CallerIdPolicy::Fixed(name.value),
            None if !s.has("fixed_name") => {
                let v = policy.as_ref().expect("matched Some");
                p.push(
                    v.line,
                    v.path.clone(),
                    "\"fixed\" needs privacy.fixed_name, the name every caller is shown as, like fixed_name = \"Phone\"",
                );
            }
            None => {}
        },
        _ => {
            if let Some(keep_digits) = keep {
                c.caller_id = CallerIdPolicy::Mask { keep_digits };
            }
        }
    }
    if let Some(v) = s.parsed(p, "pseudonym_rotation", |t| {
        let d = parse_duration(t)?;
        if d < Duration::from_secs(60) || d > Duration::from_secs(7 * 24 * 3600) {
            return Err(DurationError::OutOfRange("must be from \"1m\" to \"168h\" (7 days); the default \"24h\" lets abuse be followed for a day"));
        }
        Ok(d)
    }) {
        c.pseudonym_rotation = v.value;
    }
    c
}

/// `[abuse]`.
pub(super) fn abuse(root: &Section<'_>, p: &mut Problems<'_>) -> GuardLimits {
    let s = root.table(
        p,
        "abuse",
        &[
            "failed_calls",
            "failed_calls_window",
            "block",
            "block_max",
            "failed_pins_per_network",
            "failed_pins_global",
            "rate_window",
            "slow_answer",
            "slow_answer_max",
            "network_prefix_v4",
            "network_prefix_v6",
        ],
    );
    let mut c = GuardLimits::default();
    let count = |p: &mut Problems<'_>, key: &str, out: &mut u32| {
        if let Some(v) = s.integer(p, key, 0..=1_000_000) {
            *out = v.value as u32;
        }
    };
    count(p, "failed_calls", &mut c.failed_calls);
    count(p, "failed_pins_per_network", &mut c.failed_pins_per_network);
    count(p, "failed_pins_global", &mut c.failed_pins_global);
    let mut lines = std::collections::HashMap::new();
    for (key, out) in [
        ("failed_calls_window", &mut c.failed_calls_window),
        ("block", &mut c.block),
        ("block_max", &mut c.block_max),
        ("rate_window", &mut c.rate_window),
        ("slow_answer", &mut c.slow_answer),
        ("slow_answer_max", &mut c.slow_answer_max),
    ] {
        if let Some(v) = s.parsed(p, key, parse_duration) {
            *out = v.value;
            lines.insert(key, v.line);
        }
    }
    let line_of = |key: &str| lines.get(key).copied().flatten().or(s.line);
    if c.block > c.block_max {
        p.push(
            line_of("block"),
            s.path_of("block"),
            "longer than abuse.block_max; make block <= block_max",
        );
    }
    if c.slow_answer > c.slow_answer_max {
        p.push(
            line_of("slow_answer"),
            s.path_of("slow_answer"),
            "longer than abuse.slow_answer_max; make slow_answer <= slow_answer_max",
        );
    }
    if c.slow_answer_max > Duration::from_secs(60) {
        p.push(
            line_of("slow_answer_max"),
            s.path_of("slow_answer_max"),
            "longer than 60s; a caller would think the line is dead: use at most \"60s\"",
        );
    }
    if let Some(v) = s.integer(p, "network_prefix_v4", 0..=32) {
        c.network_prefix_v4 = v.value as u8;
    }
    if let Some(v) = s.integer(p, "network_prefix_v6", 0..=128) {
        c.network_prefix_v6 = v.value as u8;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn ok(text: &str) -> Config {
        Config::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn keys_with_problems(text: &str) -> Vec<(String, Option<usize>)> {
        match Config::from_toml(text, "t.toml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.errors.into_iter().map(|e| (e.key, e.line)).collect(),
        }
    }

    #[test]
    fn defaults_and_each_policy() {
        let c = ok("");
        assert_eq!(c.privacy, PrivacyConfig::default());
        assert_eq!(c.abuse, GuardLimits::default());
        let cases = [
            (
                "[privacy]\nkeep_digits = 3",
                CallerIdPolicy::Mask { keep_digits: 3 },
            ),
            (
                "[privacy]\ncaller_id = \"sequence\"",
                CallerIdPolicy::Sequence,
            ),
            (
                "[privacy]\ncaller_id = \"fixed\"\nfixed_name = \"Telefon\"",
                CallerIdPolicy::Fixed("Telefon".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ok(text).privacy.caller_id, want, "{text}");
        }
        let c = ok("[privacy]\npseudonym_rotation = \"1h\"\n[abuse]\nfailed_calls = 5\nblock = \"1m\"\nslow_answer_max = \"20s\"\nnetwork_prefix_v4 = 16");
        assert_eq!(c.privacy.pseudonym_rotation, Duration::from_secs(3600));
        assert_eq!(c.abuse.failed_calls, 5);
        assert_eq!(c.abuse.block, Duration::from_secs(60));
        assert_eq!(c.abuse.slow_answer_max, Duration::from_secs(20));
        assert_eq!(c.abuse.network_prefix_v4, 16);
    }

    #[test]
    fn bad_values_name_key_and_line() {
        let cases = [
            ("[privacy]\ncaller_id = \"show\"", "privacy.caller_id", 2),
            ("[privacy]\ncaller_id = \"fixed\"", "privacy.caller_id", 2),
            ("[privacy]\nkeep_digits = 7", "privacy.keep_digits", 2),
            (
                "[privacy]\nfixed_name = \"anonymous\"",
                "privacy.fixed_name",
                2,
            ),
            (
                "[privacy]\nfixed_name = \"x-bbbID-y\"",
                "privacy.fixed_name",
                2,
            ),
            (
                "[privacy]\nfixed_name = \"GLOBAL_AUDIO_1\"",
                "privacy.fixed_name",
                2,
            ),
            (
                "[privacy]\npseudonym_rotation = \"30s\"",
                "privacy.pseudonym_rotation",
                2,
            ),
            ("[privacy]\nnope = 1", "privacy.nope", 2),
            ("[abuse]\nfailed_calls = -1", "abuse.failed_calls", 2),
            (
                "[abuse]\nblock = \"10h\"\nblock_max = \"1h\"",
                "abuse.block",
                2,
            ),
            (
                "[abuse]\nslow_answer_max = \"2m\"",
                "abuse.slow_answer_max",
                2,
            ),
            (
                "[abuse]\nnetwork_prefix_v6 = 129",
                "abuse.network_prefix_v6",
                2,
            ),
            ("[abuse]\nrate_window = \"soon\"", "abuse.rate_window", 2),
        ];
        for (text, key, line) in cases {
            let got = keys_with_problems(text);
            assert!(
                got.contains(&(key.to_string(), Some(line))),
                "{text}: {got:?}"
            );
        }
    }
}
