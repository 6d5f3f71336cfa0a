//! Values that identify a caller or open a meeting, wrapped so they cannot reach a log.
//!
//! `Debug` and `Display` print a placeholder; the value is read only through an explicit
//! accessor at the few places that must use it (routing, the masked caller ID).

use std::fmt;

/// A conference PIN as typed by a caller: digits only. Never printed.
///
/// ```
/// use dialin::secret::Pin;
/// let pin = Pin::new("8675309").expect("digits only");
/// assert_eq!(format!("{pin:?} {pin}"), "Pin(<7 digits>) <pin>");
/// assert_eq!(pin.expose(), "8675309");
/// assert!(Pin::new("12a4").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pin(String);

impl Pin {
    /// Wraps typed digits; returns `None` unless every character is an ASCII digit and there is
    /// at least one.
    pub fn new(digits: impl Into<String>) -> Option<Pin> {
        let s = digits.into();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(Pin(s))
    }

    /// The digits, for routing lookups only. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// How many digits were typed; safe to log.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// A PIN is never empty; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin(<{} digits>)", self.0.len())
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<pin>")
    }
}

/// The caller's number (the user part of From / P-Asserted-Identity). Never printed; the
/// meeting sees only a masked form (see [`crate::privacy`]).
///
/// ```
/// use dialin::secret::CallerNumber;
/// let n = CallerNumber::new("+4930123456");
/// assert_eq!(format!("{n:?} {n}"), "CallerNumber(<hidden>) <caller>");
/// assert_eq!(CallerNumber::new("anonymous"), CallerNumber::withheld());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct CallerNumber(Option<String>);

impl CallerNumber {
    /// A caller who withheld the number, or whose From user part was empty or `anonymous`.
    pub fn withheld() -> CallerNumber {
        CallerNumber(None)
    }

    /// Wraps a user part; `anonymous`, empty or digit-less values count as withheld.
    pub fn new(user: &str) -> CallerNumber {
        let trimmed = user.trim();
        if trimmed.is_empty()
            || trimmed.eq_ignore_ascii_case("anonymous")
            || !trimmed.bytes().any(|b| b.is_ascii_digit())
        {
            CallerNumber(None)
        } else {
            CallerNumber(Some(trimmed.to_string()))
        }
    }

    /// The number, for masking only. Never log the result.
    pub fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Debug for CallerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("CallerNumber(<hidden>)"),
            None => f.write_str("CallerNumber(withheld)"),
        }
    }
}

impl fmt::Display for CallerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<caller>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_never_prints_digits() {
        let pin = Pin::new("8675309").unwrap();
        assert!(!format!("{pin:?} {pin}").contains("8675309"));
        assert_eq!(pin.expose(), "8675309");
        assert!(Pin::new("12a").is_none());
        assert!(Pin::new("").is_none());
    }

    #[test]
    fn a_password_loses_surrounding_whitespace_and_never_prints() {
        for text in ["hunter2", "hunter2\n", "hunter2\r\n", "  hunter2\t\n"] {
            assert_eq!(Password::new(text).expose(), "hunter2", "{text:?}");
        }
        assert_eq!(Password::new("hunt er2").expose(), "hunt er2");
        let p = Password::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn caller_number_never_prints() {
        let n = CallerNumber::new("+4930123456");
        assert!(!format!("{n:?} {n}").contains("123456"));
        assert_eq!(CallerNumber::new("anonymous"), CallerNumber::withheld());
        assert_eq!(CallerNumber::new(""), CallerNumber::withheld());
    }
}

/// A password dialin presents: the Event Socket's `auth`, a trunk registration's digest.
/// `Debug` never shows it and it has no `Display`, so it cannot reach a log line or
/// `dialin check` output by accident.
///
/// One rule for every password, whether read from a file or an environment variable:
/// surrounding whitespace (spaces, tabs, the file's line end) is not part of it, as for the
/// admin token.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password read from a file or the environment, with surrounding whitespace
    /// removed (see the type's rule).
    pub fn new(text: &str) -> Password {
        Password(text.trim().to_string())
    }

    /// The password, for the `auth` command only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}
