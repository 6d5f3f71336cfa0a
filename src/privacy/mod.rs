//! Privacy by design: what the meeting sees of a caller, what logs see, and guessing protection.
//!
//! | file | job |
//! |---|---|
//! | [`mask`] | the caller-ID policy: `Phone …56`, `Phone 3`, a fixed name; `Phone (hidden) N` |
//! | [`sequence`] | per-conference caller numbers for `Phone N` and the `phone-N` user part |
//! | [`cluster_sequence`] | the same numbers shared by a cluster's instances through a [`cluster_sequence::SequenceStore`] |
//! | [`pseudonym`] | keyed hashes (HMAC-SHA256, in-memory key rotated daily) naming callers and conferences in logs |
//! | [`guard`] | the pure limiter: per-caller blocks with back-off, failed-PIN rates that slow answers |
//! | [`ledger`] | the [`ledger::AttemptLedger`] seam and its in-memory implementation |
//! | [`shared`] | the cluster ledger: local guard as cache, failed calls and the pseudonym key shared through a [`shared::LedgerStore`] |
//!
//! [`Privacy`] bundles what a call needs at run time: the policy, the pseudonym key and the
//! sequences. Everything here is pure but for the key's randomness and the locks around
//! shared state.

pub mod cluster_sequence;
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

use crate::ids::ConferenceId;
use crate::secret::CallerNumber;
use cluster_sequence::SequenceStore;
use pseudonym::Pseudonymizer;
use sequence::ConferenceSequences;
use std::sync::{Arc, Mutex, OnceLock};
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
    /// The cluster's shared caller numbering, when the store is shared (PostgreSQL).
    shared: OnceLock<Arc<dyn SequenceStore>>,
}

impl std::fmt::Debug for dyn SequenceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SequenceStore")
    }
}

impl Privacy {
    /// Fresh state with a random key that is replaced every `rotation`.
    pub fn new(policy: CallerIdPolicy, rotation: Duration, now: Instant) -> Privacy {
        Privacy {
            policy,
            pseudonyms: Mutex::new(Pseudonymizer::new(now, rotation, rand::random())),
            sequences: Mutex::new(ConferenceSequences::default()),
            instance: format!("{:08x}", rand::random::<u32>()),
            shared: OnceLock::new(),
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

    /// Numbers callers together with the other instances through `store` from now on (set
    /// once, at start-up, when the store is shared).
    pub fn share_sequences(&self, store: Arc<dyn SequenceStore>) {
        self.shared.set(store).ok();
    }

    /// The shared numbering to ask before dialling, if the store is shared and the policy
    /// shows the number (`fixed` uses it only in the user part, which the instance tag keeps
    /// unique anyway).
    pub fn shared_sequences(&self) -> Option<Arc<dyn SequenceStore>> {
        if matches!(self.policy, CallerIdPolicy::Fixed(_)) {
            return None;
        }
        self.shared.get().cloned()
    }

    /// This instance's next number for a caller joining `conference` now.
    pub fn next_local(&self, now: Instant, conference: &ConferenceId) -> u64 {
        let key = self.conference(now, conference);
        self.sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next(now, key)
    }

    /// The caller ID for the caller numbered `seq` (from [`Privacy::next_local`] or the
    /// cluster's shared numbering).
    pub fn present_numbered(&self, number: &CallerNumber, seq: u64) -> MaskedCaller {
        let mut masked = present_caller(&self.policy, number, seq);
        masked.user = mask::user_part(&self.instance, seq);
        masked
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
        let seq = self.next_local(now, conference);
        self.present_numbered(number, seq)
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
