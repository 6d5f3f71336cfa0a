//! `Phone N` numbering shared by a cluster: with the store on PostgreSQL, the instances number
//! the callers of one conference together, so two instances never both show `Phone 2`.
//!
//! The store keeps one counter per conference, keyed by the conference's pseudonym (a keyed
//! hash under the rotation period's shared key, see [`super::shared`]), never its number; a
//! counter idle for [`super::sequence::IDLE_FORGET`] is deleted. The call waits at most
//! [`SHARED_WAIT`] for its number; when the store does not answer in time, the instance's own
//! counter ([`super::sequence`]) numbers the caller, as on a single instance.

use super::pseudonym::Pseudonym;
use super::shared::LedgerStoreError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The longest a call waits for its shared number before the local counter is used.
pub const SHARED_WAIT: Duration = Duration::from_millis(500);

/// Where the instances of a cluster count their callers: implemented on the store.
#[async_trait::async_trait]
pub trait SequenceStore: Send + Sync + 'static {
    /// The next caller number (1, 2, …) of `conference` at `now`; counters idle longer than
    /// `idle` start again at 1.
    async fn next_caller(
        &self,
        conference: &Pseudonym,
        now: SystemTime,
        idle: Duration,
    ) -> Result<u64, LedgerStoreError>;
}

/// Takes `conference`'s next shared number; `None` (counted as a store error, logged without
/// anything about the conference) when the store fails or takes longer than [`SHARED_WAIT`].
pub async fn reserve(store: Arc<dyn SequenceStore>, conference: Pseudonym) -> Option<u64> {
    let asked = store.next_caller(&conference, SystemTime::now(), super::sequence::IDLE_FORGET);
    match tokio::time::timeout(SHARED_WAIT, asked).await {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            crate::store_errors::store_error("sequence");
            tracing::warn!("{e}; this caller is numbered by this instance alone");
            None
        }
        Err(_) => {
            crate::store_errors::store_error("sequence");
            tracing::warn!(
                "the store took too long to number a caller; numbered by this instance alone"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A store shared by "instances" in one process, or one that fails.
    #[derive(Default)]
    struct Counters {
        counts: Mutex<HashMap<Pseudonym, u64>>,
        broken: bool,
    }

    #[async_trait::async_trait]
    impl SequenceStore for Counters {
        async fn next_caller(
            &self,
            conference: &Pseudonym,
            _now: SystemTime,
            _idle: Duration,
        ) -> Result<u64, LedgerStoreError> {
            if self.broken {
                return Err(LedgerStoreError("connection refused".into()));
            }
            let mut counts = self.counts.lock().unwrap();
            let n = counts.entry(*conference).or_default();
            *n += 1;
            Ok(*n)
        }
    }

    #[tokio::test]
    async fn instances_sharing_a_store_number_one_conference_together() {
        let store: Arc<dyn SequenceStore> = Arc::new(Counters::default());
        let (a, b) = (
            Pseudonym::from_bytes([1; 16]),
            Pseudonym::from_bytes([2; 16]),
        );
        let mut got = Vec::new();
        for conf in [a, a, b, a] {
            got.push(reserve(store.clone(), conf).await);
        }
        assert_eq!(got, [Some(1), Some(2), Some(1), Some(3)]);
        let broken = Arc::new(Counters {
            broken: true,
            ..Counters::default()
        });
        assert_eq!(reserve(broken, a).await, None, "the caller falls back");
    }
}
