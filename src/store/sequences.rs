//! The store as the cluster's shared caller numbering: the [`SequenceStore`] implementation
//! behind [`crate::privacy::cluster_sequence`]. Additive to the store: one table
//! (`migrations/0003_caller_sequences.sql`) holding conference pseudonyms, counters and times.

use super::Store;
use crate::privacy::cluster_sequence::SequenceStore;
use crate::privacy::shared::LedgerStoreError;
use crate::privacy::Pseudonym;
use sqlx::Row;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn err(e: sqlx::Error) -> LedgerStoreError {
    LedgerStoreError(format!("cannot number a caller through the store: {e}"))
}

#[async_trait::async_trait]
impl SequenceStore for Store {
    async fn next_caller(
        &self,
        conference: &Pseudonym,
        now: SystemTime,
        idle: Duration,
    ) -> Result<u64, LedgerStoreError> {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let key: String = conference
            .bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Idle counters go first, so a conference idle that long starts again at 1.
        sqlx::query("DELETE FROM caller_sequences WHERE used_ms < $1")
            .bind(now_ms.saturating_sub(idle.as_millis() as i64))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        // One statement: concurrent callers of a conference on several instances each get
        // their own number.
        let row = sqlx::query(
            "INSERT INTO caller_sequences (conference, last, used_ms) VALUES ($1, 1, $2) \
             ON CONFLICT (conference) DO UPDATE SET last = caller_sequences.last + 1, used_ms = $2 \
             RETURNING last",
        )
        .bind(key)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(err)?;
        let last: i64 = row.try_get(0).map_err(err)?;
        Ok(last.max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On SQLite (the same SQL runs on PostgreSQL in `tests/it/cluster.rs`): counters per
    /// conference, shared by every handle on the store, restarting after `idle`.
    #[tokio::test]
    async fn counts_per_conference_and_forgets_idle_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let (a, b) = (
            Store::open(&url).await.unwrap(),
            Store::open(&url).await.unwrap(),
        );
        let (x, y) = (
            Pseudonym::from_bytes([7; 16]),
            Pseudonym::from_bytes([8; 16]),
        );
        let t0 = SystemTime::now();
        let idle = Duration::from_secs(3600);
        assert_eq!(a.next_caller(&x, t0, idle).await.unwrap(), 1);
        assert_eq!(b.next_caller(&x, t0, idle).await.unwrap(), 2);
        assert_eq!(b.next_caller(&y, t0, idle).await.unwrap(), 1);
        assert_eq!(a.next_caller(&x, t0, idle).await.unwrap(), 3);
        let later = t0 + idle + Duration::from_secs(1);
        assert_eq!(a.next_caller(&x, later, idle).await.unwrap(), 1);
    }
}
