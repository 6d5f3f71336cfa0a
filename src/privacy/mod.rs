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
}

impl Privacy {
    /// Fresh state with a random key that is replaced every `rotation`.
    pub fn new(policy: CallerIdPolicy, rotation: Duration, now: Instant) -> Privacy {
        Privacy {
            policy,
            pseudonyms: Mutex::new(Pseudonymizer::new(now, rotation, rand::random())),
            sequences: Mutex::new(ConferenceSequences::default()),
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
    /// conference's sequence and applies the policy.
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
        present_caller(&self.policy, number, seq)
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
        assert_eq!(hidden.user, "phone-2");
    }
}
