//! DTMF carried in SIP INFO bodies (`application/dtmf-relay` and `application/dtmf`).
//!
//! Some providers send key presses as INFO requests instead of (or as well as) RFC 4733 events.
//! This turns such a body into a [`Digit`] at the edge.

use crate::digit::Digit;

/// Parses an INFO body by its content type. Returns `None` for other content types and for
/// bodies without a valid keypad signal.
pub fn parse_info_digit(content_type: &str, body: &[u8]) -> Option<Digit> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match ct.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            if !key.trim().eq_ignore_ascii_case("signal") {
                return None;
            }
            single_digit(value.trim())
        }),
        "application/dtmf" => single_digit(text.trim()),
        _ => None,
    }
}

/// A signal is one keypad character; some senders use the event code (`10` for `*`, `11` for
/// `#`) instead.
fn single_digit(value: &str) -> Option<Digit> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Digit::from_char(c),
        _ => value.parse::<u8>().ok().and_then(Digit::from_event),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_bodies() {
        let cases: &[(&str, &[u8], Option<Digit>)] = &[
            (
                "application/dtmf-relay",
                b"Signal=5\r\nDuration=160\r\n",
                Some(Digit::Num(5)),
            ),
            (
                "application/dtmf-relay",
                b"Signal= #\r\nDuration=160",
                Some(Digit::Hash),
            ),
            (
                "Application/DTMF-Relay; charset=x",
                b"signal=*\n",
                Some(Digit::Star),
            ),
            (
                "application/dtmf-relay",
                b"Signal=11\r\n",
                Some(Digit::Hash),
            ),
            ("application/dtmf-relay", b"Duration=160\r\n", None),
            ("application/dtmf-relay", b"Signal=x\r\n", None),
            ("application/dtmf", b"7", Some(Digit::Num(7))),
            ("application/dtmf", b"10\r\n", Some(Digit::Star)),
            ("application/dtmf", b"", None),
            ("text/plain", b"Signal=5", None),
            ("application/dtmf-relay", &[0xff, 0xfe], None),
        ];
        for (ct, body, want) in cases {
            assert_eq!(parse_info_digit(ct, body), *want, "{ct} {body:?}");
        }
    }
}
