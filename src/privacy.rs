//! The masked caller ID the meeting sees.
//!
//! Meeting participants see phone users in BBB's user list. They should recognise "their" caller
//! without learning the number, so the display name keeps only the last few digits
//! (`Phone …56`), and the SIP user part (which BBB and FreeSWITCH log) is a per-call sequence
//! name never derived from the number. Both also respect BBB's rules for caller IDs: never
//! empty, never `anonymous`, no `-bbbID-`, not starting with `GLOBAL_AUDIO_`.

use crate::secret::CallerNumber;

/// How many trailing digits of the number the meeting sees by default.
pub const DEFAULT_KEEP_DIGITS: usize = 2;

/// The caller ID dialin presents to the BBB server for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedCaller {
    /// The From display name, shown in BBB's user list (`Phone …56`, `Phone (hidden)`).
    pub display: String,
    /// The From user part: `phone-<call_seq>`, only `[a-z0-9-]`.
    pub user: String,
}

/// Masks a caller's number for the meeting: the display name keeps at most `keep_digits` of
/// the number's last ASCII digits after `Phone …`; a withheld number shows `Phone (hidden)`.
/// The user part is `phone-<call_seq>`, independent of the number.
pub fn mask_caller(number: &CallerNumber, keep_digits: usize, call_seq: u64) -> MaskedCaller {
    let user = format!("phone-{call_seq}");
    let display = match number.expose() {
        None => "Phone (hidden)".to_string(),
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

    /// The rules BBB imposes on caller IDs, plus ours.
    fn assert_safe(m: &MaskedCaller, number: &str, keep: usize) {
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
        let shown: String = m.display.chars().filter(char::is_ascii_digit).collect();
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
            ("anonymous", 2, "Phone (hidden)"),
            ("", 2, "Phone (hidden)"),
            ("-bbbID-123", 2, "Phone \u{2026}23"),
            ("GLOBAL_AUDIO_1", 2, "Phone \u{2026}1"),
            ("GLOBAL_AUDIO_", 2, "Phone (hidden)"),
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
