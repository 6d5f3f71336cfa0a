//! Privacy by design: what the meeting sees of a caller, what logs see, and guessing protection.
//!
//! | file | job |
//! |---|---|
//! | [`mask`] | the caller-ID policy: `Phone …56`, `Phone 3`, a fixed name; `Phone (hidden) N` |
//! | [`sequence`] | per-conference caller numbers for `Phone N` and the `phone-N` user part |
//! | [`pseudonym`] | keyed hashes (HMAC-SHA256, in-memory key rotated daily) naming callers and conferences in logs |
//! | [`guard`] | the pure limiter: per-caller blocks with back-off, failed-PIN rates that slow answers |
//! | [`ledger`] | the [`ledger::AttemptLedger`] seam and its in-memory implementation |
//! | [`shared`] | the cluster ledger: local guard as cache, failed calls and the pseudonym key shared through a [`shared::LedgerStore`] |
//!
//! [`Privacy`] bundles what a call needs at run time: the policy, the pseudonym key and the
//! sequences. Everything here is pure but for the key's randomness and the locks around
//! shared state.

pub mod guard;
pub mod ledger;
pub mod mask;
pub mod pseudonym;
pub mod sequence;
pub mod shared;

pub use mask::{
    caller_number_from_headers, mask_caller, present_caller, CallerIdPolicy, MaskedCaller,
    DEFAULT_KEEP_DIGITS,
};
pub use pseudonym::{CallerKey, Pseudonym};

use crate::routing::ConferenceId;
use crate::secret::CallerNumber;
use pseudonym::Pseudonymizer;
use sequence::ConferenceSequences;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The run-time privacy state shared by all calls.
#[derive(Debug)]
pub struct Privacy {
    /// `privacy.caller_id`.
    policy: CallerIdPolicy,
    /// The current pseudonym key (random, in memory, rotated).
    pseudonyms: Mutex<Pseudonymizer>,
    /// Per-conference caller numbers.
    sequences: Mutex<ConferenceSequences>,
    /// This instance's random tag (8 hex digits, chosen at start, never derived from a caller):
    /// part of every SIP user part, so instances of a cluster never send the same
    /// `phone-…-N` into one conference.
    instance: String,
}

impl Privacy {
    /// Fresh state with a random key that is replaced every `rotation`.
    pub fn new(policy: CallerIdPolicy, rotation: Duration, now: Instant) -> Privacy {
        Privacy {
            policy,
            pseudonyms: Mutex::new(Pseudonymizer::new(now, rotation, rand::random())),
            sequences: Mutex::new(ConferenceSequences::default()),
            instance: format!("{:08x}", rand::random::<u32>()),
        }
    }

    fn pseudonymizer(&self, now: Instant) -> std::sync::MutexGuard<'_, Pseudonymizer> {
        let mut p = self.pseudonyms.lock().unwrap_or_else(|e| e.into_inner());
        p.rotate_if_due(now, rand::random);
        p
    }

    /// Uses `key` for pseudonyms until `valid_until`: the cluster's shared key for the period
    /// (see [`shared`]). Without a next one by then, a random key takes over.
    pub fn install_key(&self, key: [u8; 32], valid_until: Instant) {
        self.pseudonyms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .install(key, valid_until);
    }

    /// The caller's pseudonym for logs and abuse counters.
    pub fn caller_key(&self, now: Instant, number: &CallerNumber) -> CallerKey {
        self.pseudonymizer(now).caller(number)
    }

    /// The conference's pseudonym for logs.
    pub fn conference(&self, now: Instant, conference: &ConferenceId) -> Pseudonym {
        self.pseudonymizer(now).conference(conference)
    }

    /// The caller ID for a caller joining `conference` now: takes the caller's number in the
    /// conference's sequence (per instance) and applies the policy; the user part is
    /// `phone-<instance tag>-<N>` ([`mask::user_part`]).
    pub fn present(
        &self,
        now: Instant,
        number: &CallerNumber,
        conference: &ConferenceId,
    ) -> MaskedCaller {
        let key = self.conference(now, conference);
        let seq = self
            .sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(now, key);
        let mut masked = present_caller(&self.policy, number, seq);
        masked.user = mask::user_part(&self.instance, seq);
        masked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_policy_numbers_each_conference_from_one() {
        let now = Instant::now();
        let p = Privacy::new(CallerIdPolicy::Sequence, Duration::from_secs(86_400), now);
        let (a, b) = (ConferenceId("71234".into()), ConferenceId("71235".into()));
        let n = CallerNumber::new("+49301234567");
        let names: Vec<String> = [&a, &a, &b, &a]
            .iter()
            .map(|c| p.present(now, &n, c).display)
            .collect();
        assert_eq!(names, ["Phone 1", "Phone 2", "Phone 1", "Phone 3"]);
        let hidden = p.present(now, &CallerNumber::withheld(), &b);
        assert_eq!(hidden.display, "Phone (hidden) 2");
        assert_eq!(hidden.user, format!("phone-{}-2", p.instance));
    }

    #[test]
    fn two_instances_never_send_the_same_user_part() {
        let now = Instant::now();
        let rotation = Duration::from_secs(86_400);
        let a = Privacy::new(CallerIdPolicy::Sequence, rotation, now);
        let b = Privacy::new(CallerIdPolicy::Sequence, rotation, now);
        let conf = ConferenceId("71234".into());
        let n = CallerNumber::new("+49301234567");
        let (ua, ub) = (
            a.present(now, &n, &conf).user,
            b.present(now, &n, &conf).user,
        );
        assert_ne!(ua, ub, "the random instance tags differ");
        for u in [&ua, &ub] {
            let tag = u.strip_prefix("phone-").and_then(|r| r.strip_suffix("-1"));
            let tag = tag.unwrap_or_else(|| panic!("{u}"));
            assert_eq!(tag.len(), 8, "{u}");
            assert!(tag
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(!u.contains("1234567"), "{u}");
        }
    }
}
