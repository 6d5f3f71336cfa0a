use super::*;
use crate::privacy::CallerIdPolicy;
use crate::secret::CallerNumber;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stand-in for the database: what two instances share.
#[derive(Default)]
struct FakeStore {
    keys: Mutex<HashMap<u64, [u8; 32]>>,
    calls: Mutex<Vec<(i64, FailedCall)>>,
    down: AtomicBool,
}

impl FakeStore {
    fn check(&self) -> Result<(), LedgerStoreError> {
        if self.down.load(Ordering::Relaxed) {
            Err(LedgerStoreError("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl LedgerStore for FakeStore {
    async fn epoch_key(&self, epoch: u64) -> Result<[u8; 32], LedgerStoreError> {
        self.check()?;
        Ok(*lock(&self.keys).entry(epoch).or_insert_with(rand::random))
    }
    async fn forget_keys_before(&self, epoch: u64) -> Result<(), LedgerStoreError> {
        self.check()?;
        lock(&self.keys).retain(|e, _| *e >= epoch);
        Ok(())
    }
    async fn push_failed_calls(&self, calls: &[FailedCall]) -> Result<(), LedgerStoreError> {
        self.check()?;
        let mut stored = lock(&self.calls);
        for c in calls {
            let id = stored.last().map_or(1, |(id, _)| id + 1);
            stored.push((id, *c));
        }
        Ok(())
    }
    async fn failed_calls_since(
        &self,
        cursor: i64,
    ) -> Result<(Vec<FailedCall>, i64), LedgerStoreError> {
        self.check()?;
        let stored = lock(&self.calls);
        let newer: Vec<FailedCall> = stored
            .iter()
            .filter(|(id, _)| *id > cursor)
            .map(|(_, c)| *c)
            .collect();
        Ok((newer, stored.last().map_or(cursor, |(id, _)| *id)))
    }
    async fn expire_failed_calls(&self, before: SystemTime) -> Result<(), LedgerStoreError> {
        self.check()?;
        lock(&self.calls).retain(|(_, c)| c.at >= before);
        Ok(())
    }
}

const DAY: Duration = Duration::from_secs(86_400);

struct Instance {
    privacy: Privacy,
    ledger: SharedLedger,
}

impl Instance {
    fn new() -> Instance {
        Instance {
            privacy: Privacy::new(CallerIdPolicy::default(), DAY, Instant::now()),
            ledger: SharedLedger::new(GuardLimits::default()),
        }
    }

    async fn sync(&self, store: &FakeStore, now: SystemTime) -> Result<(), LedgerStoreError> {
        self.ledger.sync(store, &self.privacy, DAY, now).await
    }

    fn key(&self, number: &str) -> CallerKey {
        self.privacy
            .caller_key(Instant::now(), &CallerNumber::new(number))
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

#[tokio::test]
async fn failed_calls_on_two_instances_block_the_caller_on_both() {
    let store = FakeStore::default();
    let (a, b) = (Instance::new(), Instance::new());
    // Before the first exchange each instance has its own random key.
    assert_ne!(a.key("+4930123"), b.key("+4930123"));
    a.sync(&store, at(0)).await.unwrap();
    b.sync(&store, at(0)).await.unwrap();
    let caller = a.key("+4930123");
    assert_eq!(
        caller,
        b.key("+49 30 123"),
        "one pseudonym across the cluster"
    );

    a.ledger.record_call(at(10), &caller, true);
    b.ledger.record_call(at(20), &caller, true);
    assert_eq!(a.ledger.check_caller(at(25), &caller), Standing::Allowed);
    a.sync(&store, at(30)).await.unwrap();
    b.sync(&store, at(30)).await.unwrap();
    a.sync(&store, at(31)).await.unwrap();
    // Two failures known everywhere; a third on A blocks on A at once, on B after a sync.
    assert!(a.ledger.record_call(at(40), &caller, true));
    assert!(matches!(
        a.ledger.check_caller(at(41), &caller),
        Standing::Blocked { .. }
    ));
    assert_eq!(b.ledger.check_caller(at(41), &caller), Standing::Allowed);
    a.sync(&store, at(42)).await.unwrap();
    b.sync(&store, at(42)).await.unwrap();
    assert!(matches!(
        b.ledger.check_caller(at(43), &caller),
        Standing::Blocked { .. }
    ));
    // Nobody replays its own calls: A saw exactly three failures, so one block.
    assert_eq!(a.ledger.counts().blocks, 1);
    assert_eq!(b.ledger.counts().blocks, 1);
}

#[tokio::test]
async fn an_unreachable_store_loses_nothing_and_blocks_locally_meanwhile() {
    let store = FakeStore::default();
    let (a, b) = (Instance::new(), Instance::new());
    a.sync(&store, at(0)).await.unwrap();
    b.sync(&store, at(0)).await.unwrap();
    let hidden = CallerKey::Withheld;
    store.down.store(true, Ordering::Relaxed);
    for t in [1, 2, 3] {
        a.ledger.record_call(at(t), &hidden, true);
    }
    assert!(a.sync(&store, at(4)).await.is_err());
    assert!(matches!(
        a.ledger.check_caller(at(5), &hidden),
        Standing::Blocked { .. }
    ));
    store.down.store(false, Ordering::Relaxed);
    a.sync(&store, at(6)).await.unwrap();
    b.sync(&store, at(6)).await.unwrap();
    assert!(matches!(
        b.ledger.check_caller(at(7), &hidden),
        Standing::Blocked { .. }
    ));
}

#[tokio::test]
async fn old_keys_and_old_failures_are_deleted() {
    let store = FakeStore::default();
    let a = Instance::new();
    a.sync(&store, at(0)).await.unwrap();
    a.ledger.record_call(at(1), &CallerKey::Withheld, true);
    a.sync(&store, at(2)).await.unwrap();
    assert_eq!(lock(&store.calls).len(), 1);
    let later = at(0) + DAY * 2;
    a.sync(&store, later).await.unwrap();
    let keys = lock(&store.keys);
    assert_eq!(keys.len(), 1, "only the current period's key is kept");
    assert!(keys.contains_key(&epoch_of(later, DAY).0));
    assert!(
        lock(&store.calls).is_empty(),
        "failures older than block_max expire"
    );
}

#[test]
fn caller_keys_round_trip_as_text() {
    let p = Privacy::new(CallerIdPolicy::default(), DAY, Instant::now());
    for key in [
        CallerKey::Withheld,
        p.caller_key(Instant::now(), &CallerNumber::new("+4930123")),
    ] {
        let text = caller_key_to_text(&key);
        assert_eq!(caller_key_from_text(&text), Some(key), "{text}");
    }
    for bad in [
        "",
        "withheld!",
        "zz",
        &"g".repeat(32),
        "ß".repeat(16).as_str(),
    ] {
        assert_eq!(caller_key_from_text(bad), None, "{bad}");
    }
}

#[test]
fn epochs_follow_the_wall_clock() {
    let (e, left) = epoch_of(UNIX_EPOCH + DAY * 3 + Duration::from_secs(100), DAY);
    assert_eq!(e, 3);
    assert_eq!(left, DAY - Duration::from_secs(100));
}
