//! The DTMF digit, as typed on a phone keypad.
//!
//! Digits reach dialin as RFC 4733 events in the RTP stream and as SIP INFO bodies; both are
//! turned into this one type at the edge so the call flow never sees a raw event code.

use std::fmt;

/// One key of a DTMF keypad (RFC 4733 events 0–15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Digit {
    /// A numeric key 0–9; the value is always below 10.
    Num(u8),
    /// `*`: clears the PIN typed so far.
    Star,
    /// `#`: ends the PIN.
    Hash,
    /// The rare fourth-column keys A–D (events 12–15); ignored by the PIN collector.
    Letter(char),
}

impl Digit {
    /// Maps an RFC 4733 event code (0–15) to a digit; other codes are not DTMF.
    pub fn from_event(code: u8) -> Option<Digit> {
        match code {
            0..=9 => Some(Digit::Num(code)),
            10 => Some(Digit::Star),
            11 => Some(Digit::Hash),
            12..=15 => Some(Digit::Letter((b'A' + (code - 12)) as char)),
            _ => None,
        }
    }

    /// The RFC 4733 event code of this digit, for forwarding to the server leg.
    pub fn event_code(self) -> u8 {
        match self {
            Digit::Num(n) => n,
            Digit::Star => 10,
            Digit::Hash => 11,
            Digit::Letter(c) => 12 + (c as u8 - b'A'),
        }
    }

    /// Parses a keypad character (`0`–`9`, `*`, `#`, `A`–`D`), as found in SIP INFO bodies.
    pub fn from_char(c: char) -> Option<Digit> {
        match c {
            '0'..='9' => Some(Digit::Num(c as u8 - b'0')),
            '*' => Some(Digit::Star),
            '#' => Some(Digit::Hash),
            'A'..='D' | 'a'..='d' => Some(Digit::Letter(c.to_ascii_uppercase())),
            _ => None,
        }
    }

    /// The keypad character of this digit.
    pub fn as_char(self) -> char {
        match self {
            Digit::Num(n) => (b'0' + n) as char,
            Digit::Star => '*',
            Digit::Hash => '#',
            Digit::Letter(c) => c,
        }
    }
}

/// Shows `*`, `#`, letters, and numeric keys as `digit`: numeric keys are PIN material and are
/// never printed.
impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digit::Num(_) => f.write_str("digit"),
            other => write!(f, "{}", other.as_char()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_round_trip() {
        for code in 0..16 {
            let d = Digit::from_event(code).unwrap();
            assert_eq!(d.event_code(), code);
            assert_eq!(Digit::from_char(d.as_char()), Some(d));
        }
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(Digit::from_char('x'), None);
    }

    #[test]
    fn display_hides_numbers() {
        assert_eq!(Digit::Num(7).to_string(), "digit");
        assert_eq!(Digit::Hash.to_string(), "#");
    }
}
