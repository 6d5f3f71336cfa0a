//! The store as the cluster's meeting point for guessing protection: the
//! [`LedgerStore`] implementation behind [`crate::privacy::shared::SharedLedger`].
//!
//! Tables (`migrations/0002_abuse.sql`) hold only pseudonyms and times, and expire.

use super::Store;
use crate::privacy::shared::{
    caller_key_from_text, caller_key_to_text, FailedCall, LedgerStore, LedgerStoreError,
};
use sqlx::Row;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The most failed calls read in one pull (the rest come with the next).
const PULL_LIMIT: i64 = 10_000;

fn err(e: sqlx::Error) -> LedgerStoreError {
    LedgerStoreError(e.to_string())
}

fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[async_trait::async_trait]
impl LedgerStore for Store {
    async fn epoch_key(&self, epoch: u64) -> Result<[u8; 32], LedgerStoreError> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO abuse_keys (epoch, key) VALUES ($1, $2) ON CONFLICT (epoch) DO NOTHING",
        )
        .bind(epoch as i64)
        .bind(hex(&fresh))
        .execute(&self.pool)
        .await
        .map_err(err)?;
        let row = sqlx::query("SELECT key FROM abuse_keys WHERE epoch = $1")
            .bind(epoch as i64)
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        let text: String = row.try_get(0).map_err(err)?;
        unhex32(&text).ok_or_else(|| LedgerStoreError("a stored pseudonym key is malformed".into()))
    }

    async fn forget_keys_before(&self, epoch: u64) -> Result<(), LedgerStoreError> {
        sqlx::query("DELETE FROM abuse_keys WHERE epoch < $1")
            .bind(epoch as i64)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn push_failed_calls(&self, calls: &[FailedCall]) -> Result<(), LedgerStoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(err)?;
        let row = sqlx::query("UPDATE abuse_seq SET last = last + $1 WHERE id = 1 RETURNING last")
            .bind(calls.len() as i64)
            .fetch_one(&mut *tx)
            .await
            .map_err(err)?;
        let last: i64 = row.try_get(0).map_err(err)?;
        let first = last - calls.len() as i64 + 1;
        for (i, call) in calls.iter().enumerate() {
            sqlx::query(
                "INSERT INTO abuse_failed_calls (id, caller, at_ms, instance) VALUES ($1, $2, $3, $4)",
            )
            .bind(first + i as i64)
            .bind(caller_key_to_text(&call.caller))
            .bind(to_ms(call.at))
            .bind(call.instance as i64)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn failed_calls_since(
        &self,
        cursor: i64,
    ) -> Result<(Vec<FailedCall>, i64), LedgerStoreError> {
        let rows = sqlx::query(
            "SELECT id, caller, at_ms, instance FROM abuse_failed_calls WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(cursor)
        .bind(PULL_LIMIT)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        let mut next = cursor;
        let mut calls = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0).map_err(err)?;
            let caller: String = row.try_get(1).map_err(err)?;
            let at: i64 = row.try_get(2).map_err(err)?;
            let instance: i64 = row.try_get(3).map_err(err)?;
            next = next.max(id);
            // A row this version cannot read is skipped, not fatal.
            if let Some(caller) = caller_key_from_text(&caller) {
                calls.push(FailedCall {
                    caller,
                    at: from_ms(at),
                    instance: instance as u64,
                });
            }
        }
        Ok((calls, next))
    }

    async fn expire_failed_calls(&self, before: SystemTime) -> Result<(), LedgerStoreError> {
        sqlx::query("DELETE FROM abuse_failed_calls WHERE at_ms < $1")
            .bind(to_ms(before))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::guard::{GuardLimits, Standing};
    use crate::privacy::ledger::AttemptLedger;
    use crate::privacy::pseudonym::CallerKey;
    use crate::privacy::shared::SharedLedger;
    use crate::privacy::{CallerIdPolicy, Privacy};
    use crate::secret::CallerNumber;
    use crate::store::tests::db::TestDb;
    use std::time::Instant;

    const DAY: Duration = Duration::from_secs(86_400);

    /// Two instances (two pools on one database, each with its own ledger and random key).
    async fn cluster_on(db: &TestDb) {
        let url = db.url();
        let (sa, sb) = (
            Store::open(&url).await.expect("open a"),
            Store::open(&url).await.expect("open b"),
        );
        let limits = GuardLimits {
            failed_calls: 2,
            ..GuardLimits::default()
        };
        let (la, lb) = (SharedLedger::new(limits), SharedLedger::new(limits));
        let pa = Privacy::new(CallerIdPolicy::default(), DAY, Instant::now());
        let pb = Privacy::new(CallerIdPolicy::default(), DAY, Instant::now());
        let now = SystemTime::now();
        la.sync(&sa, &pa, DAY, now).await.expect("sync a");
        lb.sync(&sb, &pb, DAY, now).await.expect("sync b");
        let number = CallerNumber::new("+49301234567");
        let caller = pa.caller_key(Instant::now(), &number);
        assert_eq!(
            caller,
            pb.caller_key(Instant::now(), &number),
            "{}",
            db.url()
        );
        assert!(matches!(caller, CallerKey::Number(_)));

        // One failed call on each instance: the caller is blocked on both.
        la.record_call(now, &caller, true);
        lb.record_call(now, &caller, true);
        for _ in 0..2 {
            la.sync(&sa, &pa, DAY, now).await.expect("sync a");
            lb.sync(&sb, &pb, DAY, now).await.expect("sync b");
        }
        for ledger in [&la, &lb] {
            assert!(matches!(
                ledger.check_caller(now, &caller),
                Standing::Blocked { .. }
            ));
        }
        // Withheld callers are one key in the database too.
        lb.record_call(now, &CallerKey::Withheld, true);
        lb.record_call(now, &CallerKey::Withheld, true);
        lb.sync(&sb, &pb, DAY, now).await.expect("sync b");
        la.sync(&sa, &pa, DAY, now).await.expect("sync a");
        assert!(matches!(
            la.check_caller(now, &CallerKey::Withheld),
            Standing::Blocked { .. }
        ));

        // Ids come back in order, and old rows and keys are deleted.
        let (calls, cursor) = sa.failed_calls_since(0).await.expect("pull");
        assert_eq!(calls.len(), 4);
        assert_eq!(cursor, 4);
        let (none, same) = sa.failed_calls_since(cursor).await.expect("pull");
        assert!(none.is_empty() && same == cursor);
        sa.expire_failed_calls(now + Duration::from_secs(1))
            .await
            .expect("expire");
        assert!(sa.failed_calls_since(0).await.expect("pull").0.is_empty());
        let key = sa.epoch_key(7).await.expect("key");
        assert_eq!(sb.epoch_key(7).await.expect("key"), key);
        sb.forget_keys_before(8).await.expect("forget");
        assert_ne!(
            sa.epoch_key(7).await.expect("key"),
            key,
            "a deleted key is gone"
        );
        sa.close().await;
        sb.close().await;
    }

    #[tokio::test]
    async fn two_instances_share_blocks_and_keys_on_sqlite_and_postgresql() {
        for db in [TestDb::sqlite(), TestDb::postgres().await] {
            cluster_on(&db).await;
        }
    }
}
