//! Guessing protection across a cluster: a ledger that keeps the pure
//! [`Guard`](super::guard::Guard) as a local cache and shares failed calls and the pseudonym
//! key with the other instances through a [`LedgerStore`] (PostgreSQL in production:
//! `crate::store::abuse`).
//!
//! Calls never wait for the database: [`SharedLedger`] answers from its local guard at once and
//! queues its own failed calls; [`SharedLedger::sync`] (run every second by
//! [`SharedLedger::spawn_sync`]) pushes the queue, pulls the other instances' failed calls and
//! replays them into the local guard, so a caller blocked on one instance is blocked on all
//! within a second or two. Failed-PIN rates stay per instance (each sees the same trunk).
//!
//! Per-caller counters only add up across instances if every instance computes the same
//! pseudonym, so the pseudonym key is shared too: one random key per rotation period
//! (`epoch = unix time / rotation`), created by the first instance that asks and deleted
//! once its period is over. The database thus never holds a key older than one period.

use super::guard::{GuardCounts, GuardLimits, SourceNet, Standing};
use super::ledger::{AttemptLedger, MemoryLedger};
use super::pseudonym::{CallerKey, Pseudonym};
use super::Privacy;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most failed calls queued while the store is unreachable (the oldest are dropped).
pub const MAX_OUTBOX: usize = 10_000;

/// A failed call as the instances exchange it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedCall {
    /// Who failed (pseudonym under the shared key, or withheld).
    pub caller: CallerKey,
    /// When the call ended.
    pub at: SystemTime,
    /// The instance that saw it (instances skip their own when pulling).
    pub instance: u64,
}

/// A shared-state operation failed (database unreachable, …): the ledger keeps working
/// locally and retries on the next sync.
#[derive(Debug, thiserror::Error)]
#[error("cannot share abuse counters with the cluster: {0}")]
pub struct LedgerStoreError(pub String);

/// Where the instances of a cluster meet: implemented on the PostgreSQL store.
#[async_trait::async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// The pseudonym key of `epoch`, created at random by whoever asks first.
    async fn epoch_key(&self, epoch: u64) -> Result<[u8; 32], LedgerStoreError>;
    /// Deletes the keys of epochs before `epoch`.
    async fn forget_keys_before(&self, epoch: u64) -> Result<(), LedgerStoreError>;
    /// Appends failed calls.
    async fn push_failed_calls(&self, calls: &[FailedCall]) -> Result<(), LedgerStoreError>;
    /// The failed calls stored after `cursor` (0 at first) and the cursor after them.
    async fn failed_calls_since(
        &self,
        cursor: i64,
    ) -> Result<(Vec<FailedCall>, i64), LedgerStoreError>;
    /// Deletes failed calls from before `before`.
    async fn expire_failed_calls(&self, before: SystemTime) -> Result<(), LedgerStoreError>;
}

/// Text form of a caller key for a database column: 32 hex digits, or `withheld`.
pub fn caller_key_to_text(key: &CallerKey) -> String {
    match key {
        CallerKey::Withheld => "withheld".to_string(),
        CallerKey::Number(p) => p.bytes().iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Reads [`caller_key_to_text`]'s form back; `None` for anything else.
pub fn caller_key_from_text(text: &str) -> Option<CallerKey> {
    if text == "withheld" {
        return Some(CallerKey::Withheld);
    }
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(CallerKey::Number(Pseudonym::from_bytes(bytes)))
}

/// The rotation period `now` falls in, and how long it still lasts.
pub fn epoch_of(now: SystemTime, rotation: Duration) -> (u64, Duration) {
    let secs = rotation.as_secs().max(1);
    let unix = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch = unix.as_secs() / secs;
    let end = Duration::from_secs((epoch + 1) * secs);
    (epoch, end.saturating_sub(unix))
}

/// A ledger shared by the instances of a cluster; see the module doc.
pub struct SharedLedger {
    /// The local cache and decision maker.
    local: MemoryLedger,
    /// This instance's failed calls not yet pushed.
    outbox: Mutex<Vec<FailedCall>>,
    /// This instance's random id.
    instance: u64,
    /// The newest stored failed call seen.
    cursor: Mutex<i64>,
    /// The epoch whose shared key is installed.
    key_epoch: Mutex<Option<u64>>,
}

impl SharedLedger {
    /// A shared ledger with these limits and a random instance id.
    pub fn new(limits: GuardLimits) -> SharedLedger {
        SharedLedger {
            local: MemoryLedger::new(limits),
            outbox: Mutex::new(Vec::new()),
            instance: rand::random(),
            cursor: Mutex::new(0),
            key_epoch: Mutex::new(None),
        }
    }

    /// One exchange with the cluster at `now`: installs the period's shared pseudonym key in
    /// `privacy`, pushes this instance's failed calls, replays the others'. On error nothing
    /// is lost: unpushed calls stay queued.
    pub async fn sync(
        &self,
        store: &dyn LedgerStore,
        privacy: &Privacy,
        rotation: Duration,
        now: SystemTime,
    ) -> Result<(), LedgerStoreError> {
        let (epoch, left) = epoch_of(now, rotation);
        if *lock(&self.key_epoch) != Some(epoch) {
            let key = store.epoch_key(epoch).await?;
            privacy.install_key(key, Instant::now() + left);
            *lock(&self.key_epoch) = Some(epoch);
            store.forget_keys_before(epoch).await?;
        }
        let outgoing = std::mem::take(&mut *lock(&self.outbox));
        if !outgoing.is_empty() {
            if let Err(e) = store.push_failed_calls(&outgoing).await {
                let mut outbox = lock(&self.outbox);
                let newer = std::mem::replace(&mut *outbox, outgoing);
                outbox.extend(newer);
                let excess = outbox.len().saturating_sub(MAX_OUTBOX);
                outbox.drain(..excess);
                return Err(e);
            }
        }
        let since = *lock(&self.cursor);
        let (calls, cursor) = store.failed_calls_since(since).await?;
        for call in calls.iter().filter(|c| c.instance != self.instance) {
            self.local.record_call(call.at, &call.caller, true);
        }
        *lock(&self.cursor) = cursor;
        let keep = self
            .limits()
            .block_max
            .max(self.limits().failed_calls_window);
        if let Some(before) = now.checked_sub(keep) {
            store.expire_failed_calls(before).await?;
        }
        Ok(())
    }

    /// Runs [`SharedLedger::sync`] every `interval` until `privacy` or the ledger is dropped
    /// elsewhere; failures are logged once per outage.
    pub fn spawn_sync(
        self: &Arc<Self>,
        store: Arc<dyn LedgerStore>,
        privacy: Arc<Privacy>,
        rotation: Duration,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let ledger = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                let Some(ledger) = ledger.upgrade() else {
                    return;
                };
                match ledger
                    .sync(&*store, &privacy, rotation, SystemTime::now())
                    .await
                {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        crate::store_errors::store_error("abuse");
                        failing = true;
                        tracing::warn!("{e}; guessing protection works per instance meanwhile");
                    }
                    Err(_) => crate::store_errors::store_error("abuse"),
                }
                drop(ledger);
                tokio::time::sleep(interval).await;
            }
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AttemptLedger for SharedLedger {
    fn check_caller(&self, now: SystemTime, caller: &CallerKey) -> Standing {
        self.local.check_caller(now, caller)
    }

    fn record_call(&self, now: SystemTime, caller: &CallerKey, failed: bool) -> bool {
        if failed {
            let mut outbox = lock(&self.outbox);
            if outbox.len() >= MAX_OUTBOX {
                outbox.remove(0);
            }
            outbox.push(FailedCall {
                caller: *caller,
                at: now,
                instance: self.instance,
            });
        }
        self.local.record_call(now, caller, failed)
    }

    fn record_failed_pin(&self, now: SystemTime, net: &SourceNet) {
        self.local.record_failed_pin(now, net)
    }

    fn answer_delay(&self, now: SystemTime, net: &SourceNet) -> Duration {
        self.local.answer_delay(now, net)
    }

    fn counts(&self) -> GuardCounts {
        self.local.counts()
    }

    fn limits(&self) -> GuardLimits {
        self.local.limits()
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
