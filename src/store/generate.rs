//! Suggesting a new PIN: random from the OS CSPRNG, no leading 0 and no digit repeated next to
//! itself (some providers' DTMF handling drops or doubles repeated keys), not already taken.

use super::model::{FieldError, Rules};
use super::{Store, StoreError};
use rand::rngs::OsRng;
use rand::TryRngCore;

/// How many candidates to try before giving up (the space is nearly empty or too small).
const TRIES: usize = 1_000;

/// A random PIN of `len` digits (1..=20) for which `taken` is false; `None` when `TRIES`
/// candidates were all taken (widen the length) or the OS RNG failed.
pub fn suggest(len: usize, mut taken: impl FnMut(&str) -> bool) -> Option<String> {
    if !(1..=20).contains(&len) {
        return None;
    }
    for _ in 0..TRIES {
        let pin = candidate(len)?;
        if !taken(&pin) {
            return Some(pin);
        }
    }
    None
}

/// Why [`unused_pin`] suggested nothing.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    /// The length is outside the configured PIN lengths.
    #[error("{0}")]
    Length(FieldError),
    /// Every candidate tried was taken.
    #[error("no unused PIN of this length found; ask for a longer one")]
    Exhausted,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A PIN of `length` digits (default: the shortest configured length, at least 6 where allowed)
/// that no mapping uses and that [`Rules::check_writable_pin`] accepts. Not reserved: the caller
/// maps it next.
pub async fn unused_pin(
    store: &Store,
    rules: &Rules,
    length: Option<usize>,
) -> Result<String, SuggestError> {
    let range = &rules.pin_digits;
    let len = length.unwrap_or((*range.start()).max(6).min(*range.end()));
    if !range.contains(&len) {
        return Err(SuggestError::Length(FieldError::new(
            "length",
            format!(
                "must be within ivr.pin_min_digits..pin_max_digits ({}..{})",
                range.start(),
                range.end()
            ),
        )));
    }
    let taken: std::collections::HashSet<String> = store
        .all()
        .await?
        .into_iter()
        .map(|m| m.pin.expose().to_string())
        .collect();
    suggest(len, |p| {
        taken.contains(p) || rules.check_writable_pin(p).is_err()
    })
    .ok_or(SuggestError::Exhausted)
}

/// One candidate: the first digit 1-9, each next digit one of the nine that differ from the
/// previous, so every allowed PIN is equally likely.
fn candidate(len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    let mut prev: Option<u8> = None;
    for _ in 0..len {
        let pick = uniform(9)?;
        let d = match prev {
            None => pick + 1,
            Some(p) if pick >= p => pick + 1,
            Some(_) => pick,
        };
        out.push(char::from(b'0' + d));
        prev = Some(d);
    }
    Some(out)
}

/// A uniform number below `n` (n <= 256) from the OS, by rejection sampling.
fn uniform(n: u8) -> Option<u8> {
    let limit = 256 - (256 % u16::from(n));
    loop {
        let mut b = [0u8; 1];
        OsRng.try_fill_bytes(&mut b).ok()?;
        if u16::from(b[0]) < limit {
            return Some(b[0] % n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn shape() {
        let mut seen = HashSet::new();
        for len in [1, 5, 7, 11, 20] {
            for _ in 0..200 {
                let pin = suggest(len, |_| false).unwrap();
                assert_eq!(pin.len(), len);
                assert!(!pin.starts_with('0'), "{pin}");
                let b = pin.as_bytes();
                assert!(b.windows(2).all(|w| w[0] != w[1]), "{pin}");
                assert!(b.iter().all(u8::is_ascii_digit));
                seen.insert(pin);
            }
        }
        // Random, not constant: 800 PINs of length >= 5 are (overwhelmingly likely) distinct.
        assert!(seen.len() > 790, "{}", seen.len());
        assert_eq!(suggest(0, |_| false), None);
        assert_eq!(suggest(21, |_| false), None);
    }

    #[test]
    fn avoids_taken_and_gives_up() {
        let taken: HashSet<String> = (1..=9).map(|d| d.to_string()).collect();
        assert_eq!(suggest(1, |p| taken.contains(p)), None);
        let taken: HashSet<String> = (2..=9).map(|d| d.to_string()).collect();
        assert_eq!(suggest(1, |p| taken.contains(p)), Some("1".into()));
    }
}
