//! The caller ID the meeting sees, under the configured policy.
//!
//! Meeting participants see phone users in BBB's user list. They should recognise "their" caller
//! without learning the number. The policy (`privacy.caller_id`) decides the display name:
//! - [`CallerIdPolicy::Mask`] (default) keeps only the last few digits: `Phone …56`;
//! - [`CallerIdPolicy::Sequence`] numbers callers per conference: `Phone 1`, `Phone 2`, …;
//! - [`CallerIdPolicy::Fixed`] shows one configured name for everyone.
//!
//! A withheld number shows `Phone (hidden) N` under `mask` and `sequence`. The SIP user part
//! (which BBB and FreeSWITCH log) is `phone-N` here and `phone-<instance tag>-N` as sent
//! ([`user_part`], applied by [`crate::privacy::Privacy::present`]), N being the caller's
//! number in the conference's sequence, never derived from the phone number. Every result respects BBB's
//! rules for caller IDs: never empty, never `anonymous`, no `-bbbID-`, not starting with
//! `GLOBAL_AUDIO_` (see [`is_acceptable_name`]).

use crate::secret::CallerNumber;

/// How many trailing digits of the number the meeting sees by default.
pub const DEFAULT_KEEP_DIGITS: usize = 2;

/// The most trailing digits the `mask` policy may show: more would identify the caller.
pub const MAX_KEEP_DIGITS: usize = 4;

/// How the meeting sees a phone caller (`privacy.caller_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerIdPolicy {
    /// `Phone …56`: the last `keep_digits` digits of the number.
    Mask {
        /// How many trailing digits to show (0..=[`MAX_KEEP_DIGITS`]).
        keep_digits: usize,
    },
    /// `Phone 3`: the caller's place in the conference's sequence of phone callers.
    Sequence,
    /// One configured name for every caller (checked with [`is_acceptable_name`]).
    Fixed(String),
}

impl Default for CallerIdPolicy {
    fn default() -> CallerIdPolicy {
        CallerIdPolicy::Mask {
            keep_digits: DEFAULT_KEEP_DIGITS,
        }
    }
}

/// The caller ID dialin presents to the BBB server for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedCaller {
    /// The From display name, shown in BBB's user list (`Phone …56`, `Phone (hidden) 2`).
    pub display: String,
    /// The From user part: `phone-<seq>`, only `[a-z0-9-]`.
    pub user: String,
}

/// The SIP user part sent to the server: `phone-<instance>-<seq>`. `instance` is the random tag
/// of this dialin instance, so two instances of a cluster (each numbering callers on its own)
/// never put the same user part into one conference. Only `[a-z0-9-]`.
pub fn user_part(instance: &str, seq: u64) -> String {
    format!("phone-{instance}-{seq}")
}

/// Whether BBB accepts `name` as a phone caller's display name, and it is safe inside a SIP
/// quoted string: 1 to 64 printable characters without `"` or `\\`, not `anonymous`, no
/// `-bbbID-`, not starting with `GLOBAL_AUDIO_`. Used to validate `privacy.fixed_name`.
pub fn is_acceptable_name(name: &str) -> bool {
    let trimmed = name.trim();
    !trimmed.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| !c.is_control() && c != '"' && c != '\\')
        && !trimmed.eq_ignore_ascii_case("anonymous")
        && !name.contains("-bbbID-")
        && !name.starts_with("GLOBAL_AUDIO_")
}

/// The caller ID for the caller whose place in the conference's sequence is `seq` (1, 2, …).
pub fn present_caller(policy: &CallerIdPolicy, number: &CallerNumber, seq: u64) -> MaskedCaller {
    match policy {
        CallerIdPolicy::Mask { keep_digits } => mask_caller(number, *keep_digits, seq),
        CallerIdPolicy::Sequence => MaskedCaller {
            display: match number.expose() {
                None => format!("Phone (hidden) {seq}"),
                Some(_) => format!("Phone {seq}"),
            },
            user: format!("phone-{seq}"),
        },
        CallerIdPolicy::Fixed(name) => MaskedCaller {
            display: if is_acceptable_name(name) {
                name.clone()
            } else {
                "Phone".to_string()
            },
            user: format!("phone-{seq}"),
        },
    }
}

/// Masks a caller's number for the meeting: the display name keeps at most `keep_digits` of
/// the number's last ASCII digits after `Phone …`; a withheld number shows `Phone (hidden) N`.
/// The user part is `phone-<seq>`, independent of the number.
pub fn mask_caller(number: &CallerNumber, keep_digits: usize, seq: u64) -> MaskedCaller {
    let user = format!("phone-{seq}");
    let display = match number.expose() {
        None => format!("Phone (hidden) {seq}"),
        Some(raw) => {
            let digits: Vec<char> = raw.chars().filter(char::is_ascii_digit).collect();
            let kept: String = digits[digits.len().saturating_sub(keep_digits)..]
                .iter()
                .collect();
            if kept.is_empty() {
                "Phone".to_string()
            } else {
                format!("Phone \u{2026}{kept}")
            }
        }
    };
    MaskedCaller { display, user }
}

/// Whether `text` looks like a phone number someone typed as a display name: digits plus the
/// usual separators, and at least one digit.
fn looks_like_number(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b" +-()./".contains(&b))
}

/// Extracts the caller's number from the trunk's From header: the user part if it holds a
/// number, else a display name that is a number, else withheld. `privacy_id` (a `Privacy: id`
/// header, RFC 3323) means the caller asked to withhold the number, so nothing is taken.
pub fn caller_number_from_headers(
    from_user: Option<&str>,
    from_display: Option<&str>,
    privacy_id: bool,
) -> CallerNumber {
    if privacy_id {
        return CallerNumber::withheld();
    }
    let user = from_user
        .map(CallerNumber::new)
        .filter(|n| n.expose().is_some());
    let display = || {
        from_display
            .map(str::trim)
            .filter(|d| looks_like_number(d))
            .map(CallerNumber::new)
    };
    user.or_else(display).unwrap_or_else(CallerNumber::withheld)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules BBB imposes on caller IDs, and a user part of `[a-z0-9-]` only.
    fn assert_bbb_safe(m: &MaskedCaller, number: &str) {
        assert!(is_acceptable_name(&m.display), "{number:?}: {}", m.display);
        for field in [&m.display, &m.user] {
            assert!(!field.is_empty(), "{number:?}: empty");
            assert!(!field.eq_ignore_ascii_case("anonymous"), "{number:?}");
            assert!(!field.contains("-bbbID-"), "{number:?}");
            assert!(!field.starts_with("GLOBAL_AUDIO_"), "{number:?}");
        }
        assert!(m
            .user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    /// BBB's rules, plus: the display shows at most `keep` digits, all from the number's end.
    fn assert_safe(m: &MaskedCaller, number: &str, keep: usize) {
        assert_bbb_safe(m, number);
        let shown: String = m
            .display
            .strip_prefix("Phone (hidden) ")
            .map(|_| String::new())
            .unwrap_or_else(|| m.display.chars().filter(char::is_ascii_digit).collect());
        let all: String = number.chars().filter(char::is_ascii_digit).collect();
        assert!(shown.len() <= keep, "{number:?}: shows {shown}");
        assert!(
            all.ends_with(&shown),
            "{number:?}: shows digits not at the end of the number"
        );
    }

    #[test]
    fn masks() {
        let cases = [
            ("+49 (30) 1234-56", 2, "Phone \u{2026}56"),
            ("+4930123456", 3, "Phone \u{2026}456"),
            ("7", 2, "Phone \u{2026}7"),
            ("+4930123456", 0, "Phone"),
            ("anonymous", 2, "Phone (hidden) 17"),
            ("", 2, "Phone (hidden) 17"),
            ("-bbbID-123", 2, "Phone \u{2026}23"),
            ("GLOBAL_AUDIO_1", 2, "Phone \u{2026}1"),
            ("GLOBAL_AUDIO_", 2, "Phone (hidden) 17"),
            ("\u{0663}\u{0664}5", 2, "Phone \u{2026}5"),
            ("Ünïcödé 0049 30 99", 2, "Phone \u{2026}99"),
        ];
        for (number, keep, display) in cases {
            let m = mask_caller(&CallerNumber::new(number), keep, 17);
            assert_eq!(m.display, display, "{number:?}");
            assert_eq!(m.user, "phone-17");
            assert_safe(&m, number, keep);
        }
    }

    #[test]
    fn user_part_never_derives_from_number() {
        let a = mask_caller(&CallerNumber::new("+4930123456"), 2, 1);
        let b = mask_caller(&CallerNumber::new("+4930999999"), 2, 1);
        assert_eq!(a.user, b.user);
        assert_eq!(
            mask_caller(&CallerNumber::withheld(), 2, u64::MAX).user,
            format!("phone-{}", u64::MAX)
        );
    }

    #[test]
    fn adversarial_inputs_stay_safe() {
        let nasty = [
            "anonymous",
            "",
            "-bbbID-123",
            "GLOBAL_AUDIO_1",
            "+49 (30) 1234-56",
            "日本 123",
            "\u{0}\r\n9",
            "1-bbbID-2",
        ];
        for number in nasty {
            for keep in [0, 1, 2, 5, 100] {
                assert_safe(
                    &mask_caller(&CallerNumber::new(number), keep, 3),
                    number,
                    keep,
                );
            }
        }
    }

    #[test]
    fn every_policy_gives_a_safe_caller_id() {
        let policies = [
            CallerIdPolicy::default(),
            CallerIdPolicy::Mask { keep_digits: 0 },
            CallerIdPolicy::Sequence,
            CallerIdPolicy::Fixed("Telefon".into()),
        ];
        let numbers = [
            "+49 30 1234567",
            "anonymous",
            "",
            "-bbbID-1",
            "GLOBAL_AUDIO_9",
        ];
        for policy in &policies {
            for number in numbers {
                let m = present_caller(policy, &CallerNumber::new(number), 4);
                assert_bbb_safe(&m, number);
                assert!(!m.display.contains("1234567"), "{policy:?}: {}", m.display);
                assert_eq!(m.user, "phone-4");
            }
        }
    }

    #[test]
    fn policies_name_callers_as_documented() {
        let known = CallerNumber::new("+49 30 1234567");
        let hidden = CallerNumber::withheld();
        let fixed = CallerIdPolicy::Fixed("Telefon".into());
        let cases = [
            (CallerIdPolicy::default(), &known, "Phone \u{2026}67"),
            (CallerIdPolicy::default(), &hidden, "Phone (hidden) 3"),
            (CallerIdPolicy::Sequence, &known, "Phone 3"),
            (CallerIdPolicy::Sequence, &hidden, "Phone (hidden) 3"),
            (fixed.clone(), &known, "Telefon"),
            (fixed, &hidden, "Telefon"),
            // An unacceptable fixed name (config validation prevents it) falls back.
            (CallerIdPolicy::Fixed("anonymous".into()), &known, "Phone"),
        ];
        for (policy, number, want) in cases {
            assert_eq!(
                present_caller(&policy, number, 3).display,
                want,
                "{policy:?}"
            );
        }
    }

    #[test]
    fn acceptable_names() {
        for ok in ["Phone", "Telefon", "Dial-in caller", "Téléphone"] {
            assert!(is_acceptable_name(ok), "{ok:?}");
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            " ",
            "anonymous",
            "Anonymous ",
            "a-bbbID-b",
            "GLOBAL_AUDIO_x",
            "say \"hi\"",
            "back\\slash",
            "line\nbreak",
            &long,
        ] {
            assert!(!is_acceptable_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn number_from_headers() {
        let cases = [
            (Some("+4930123456"), None, false, Some("+4930123456")),
            (Some("+4930123456"), Some("Alice"), true, None),
            (
                Some("anonymous"),
                Some("+49 30 123456"),
                false,
                Some("+49 30 123456"),
            ),
            (Some("anonymous"), Some("Alice"), false, None),
            (None, Some("Alice 2"), false, None),
            (None, None, false, None),
            (Some(""), Some(""), false, None),
        ];
        for (user, display, privacy, want) in cases {
            let got = caller_number_from_headers(user, display, privacy);
            assert_eq!(got.expose(), want, "{user:?} {display:?} {privacy}");
        }
    }
}
