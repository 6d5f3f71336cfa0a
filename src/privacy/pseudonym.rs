//! Pseudonyms for logs and abuse counters: a keyed hash (HMAC-SHA256) of a caller's number or
//! a conference number, with a random key that lives only in memory and is replaced every
//! rotation period (`privacy.pseudonym_rotation`, one day by default).
//!
//! Within one period the same caller always gets the same pseudonym, so an operator can follow
//! abuse across calls and log lines. Once the key is replaced nothing links old pseudonyms to
//! numbers any more: the key was never written anywhere, and a phone number space is far too
//! small for an unkeyed hash (anyone could hash every number). Pure: the clock and the key
//! source are inputs.

use crate::ids::ConferenceId;
use crate::secret::CallerNumber;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, Instant};

/// How long a pseudonym key lives by default.
pub const DEFAULT_ROTATION: Duration = Duration::from_secs(24 * 60 * 60);

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts` under a key of at most 64 bytes.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    debug_assert!(
        key.len() <= 64,
        "keys longer than the block are not used here"
    );
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new().chain_update(ipad);
    for part in parts {
        inner.update(part);
    }
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner.finalize())
        .finalize();
    outer.into()
}

/// A keyed hash of a number: 16 bytes, of which logs show the first 6 as 12 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pseudonym([u8; 16]);

impl Pseudonym {
    /// A pseudonym read back from shared abuse counters (another instance made it).
    pub fn from_bytes(bytes: [u8; 16]) -> Pseudonym {
        Pseudonym(bytes)
    }

    /// The full 16 bytes, as a key for abuse counters.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({self})")
    }
}

/// Who is calling, as logs and abuse counters know it. Every caller who withholds the number
/// is the same `Withheld` caller, so hiding the number does not reset a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// The pseudonym of a presented number.
    Number(Pseudonym),
    /// The number was withheld (or not a number).
    Withheld,
}

impl fmt::Display for CallerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallerKey::Number(p) => p.fmt(f),
            CallerKey::Withheld => f.write_str("withheld"),
        }
    }
}

/// The current key and when it is replaced.
pub struct Pseudonymizer {
    /// The HMAC key; only ever in memory.
    key: [u8; 32],
    /// When the key is replaced by a fresh one.
    rotate_at: Instant,
    /// How long each key lives.
    period: Duration,
}

impl Pseudonymizer {
    /// A pseudonymizer with `key` (random in production), replaced every `period` from `now`.
    pub fn new(now: Instant, period: Duration, key: [u8; 32]) -> Pseudonymizer {
        Pseudonymizer {
            key,
            rotate_at: now + period,
            period,
        }
    }

    /// Replaces the key with `fresh()` if its period is over at `now`; true if it did.
    pub fn rotate_if_due(&mut self, now: Instant, fresh: impl FnOnce() -> [u8; 32]) -> bool {
        if now < self.rotate_at {
            return false;
        }
        self.key = fresh();
        // Periods stay aligned to the start even after a long quiet time.
        while self.rotate_at <= now {
            self.rotate_at += self.period.max(Duration::from_secs(1));
        }
        true
    }

    /// Uses `key` until `valid_until` (then [`Pseudonymizer::rotate_if_due`] replaces it as
    /// usual): how a cluster makes every instance use the same key for the same period.
    pub fn install(&mut self, key: [u8; 32], valid_until: Instant) {
        self.key = key;
        self.rotate_at = valid_until;
    }

    /// The caller's pseudonym. The number is reduced to its digits first, so `+49 30 1234`
    /// and `+49301234` are the same caller.
    pub fn caller(&self, number: &CallerNumber) -> CallerKey {
        match number.expose() {
            None => CallerKey::Withheld,
            Some(raw) => {
                let digits: Vec<u8> = raw.bytes().filter(u8::is_ascii_digit).collect();
                CallerKey::Number(self.hash(b"caller\0", &digits))
            }
        }
    }

    /// The conference's pseudonym, for log lines (a voiceBridge number is PIN material).
    pub fn conference(&self, conference: &ConferenceId) -> Pseudonym {
        self.hash(b"conference\0", conference.expose().as_bytes())
    }

    /// A pseudonym for any other value that must not be logged, in its own domain.
    pub fn other(&self, domain: &[u8], value: &[u8]) -> Pseudonym {
        self.hash(domain, value)
    }

    fn hash(&self, domain: &[u8], value: &[u8]) -> Pseudonym {
        let mac = hmac_sha256(&self.key, &[domain, value]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        Pseudonym(out)
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 1.
        let mac = hmac_sha256(&[0x0b; 20], &[b"Hi There"]);
        assert_eq!(
            hex(&mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn same_caller_same_pseudonym_within_a_period_only() {
        let t0 = Instant::now();
        let day = Duration::from_secs(86_400);
        let mut p = Pseudonymizer::new(t0, day, [1; 32]);
        let a = p.caller(&CallerNumber::new("+49 30 1234567"));
        assert_eq!(a, p.caller(&CallerNumber::new("+49301234567")));
        assert_ne!(a, p.caller(&CallerNumber::new("+49301234568")));
        assert_eq!(p.caller(&CallerNumber::withheld()), CallerKey::Withheld);
        assert!(!p.rotate_if_due(t0 + day - Duration::from_secs(1), || [2; 32]));
        assert_eq!(a, p.caller(&CallerNumber::new("+49301234567")));
        assert!(p.rotate_if_due(t0 + day, || [2; 32]));
        assert_ne!(a, p.caller(&CallerNumber::new("+49301234567")));
        // After a long pause the next rotation is still on the period grid.
        assert!(p.rotate_if_due(t0 + day * 5 + Duration::from_secs(7), || [3; 32]));
        assert!(!p.rotate_if_due(t0 + day * 6 - Duration::from_secs(1), || [4; 32]));
        assert!(p.rotate_if_due(t0 + day * 6, || [4; 32]));
    }

    #[test]
    fn an_installed_key_is_used_until_its_end_then_a_fresh_one() {
        let t0 = Instant::now();
        let n = CallerNumber::new("+4930777");
        let mut a = Pseudonymizer::new(t0, DEFAULT_ROTATION, [1; 32]);
        let mut b = Pseudonymizer::new(t0, DEFAULT_ROTATION, [2; 32]);
        assert_ne!(a.caller(&n), b.caller(&n));
        let end = t0 + Duration::from_secs(60);
        a.install([9; 32], end);
        b.install([9; 32], end);
        assert_eq!(a.caller(&n), b.caller(&n));
        assert!(!a.rotate_if_due(end - Duration::from_millis(1), || [3; 32]));
        assert!(a.rotate_if_due(end, || [3; 32]));
        assert_ne!(a.caller(&n), b.caller(&n));
    }

    #[test]
    fn domains_and_keys_separate_pseudonyms() {
        let t0 = Instant::now();
        let p = Pseudonymizer::new(t0, DEFAULT_ROTATION, [7; 32]);
        let q = Pseudonymizer::new(t0, DEFAULT_ROTATION, [8; 32]);
        let conf = ConferenceId("71234".into());
        let caller = p.caller(&CallerNumber::new("71234"));
        assert_ne!(caller, CallerKey::Number(p.conference(&conf)));
        assert_ne!(p.conference(&conf), q.conference(&conf));
    }

    #[test]
    fn display_shows_no_digits_of_the_input_beyond_chance() {
        let p = Pseudonymizer::new(Instant::now(), DEFAULT_ROTATION, [9; 32]);
        let shown = p.caller(&CallerNumber::new("+49301234567")).to_string();
        assert_eq!(shown.len(), 12);
        assert!(shown.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{:?}", p).contains("key"));
        assert_eq!(CallerKey::Withheld.to_string(), "withheld");
    }
}
