//! Opening a store: several openers of one fresh store at once (the service and `dialin pins`,
//! cluster members), what a failed or newer schema reports, and refusing to create a file.

use super::location::{Location, Origin};
use super::tests::db::TestDb;
use super::*;

/// Opens the store at `url` from `n` tasks at once, each with its own pool, as `n` processes
/// would; returns each outcome.
async fn open_together(url: &str, n: usize) -> Vec<Result<Store, StoreError>> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (url, start) = (url.to_string(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                Store::open(&url).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("the task ran"));
    }
    out
}

/// Every opener of a fresh store succeeds and sees the same, fully migrated store.
async fn all_open(db: &TestDb, n: usize, round: usize) {
    for result in open_together(&db.url(), n).await {
        let store = result.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(store.count().await.unwrap(), 0);
        assert_eq!(store.generation().await.unwrap(), 0);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_fresh_sqlite_store_all_succeed() {
    for round in 0..20 {
        all_open(&TestDb::sqlite(), 6, round).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_of_a_fresh_postgres_database_all_succeed() {
    for round in 0..5 {
        all_open(&TestDb::postgres().await, 6, round).await;
    }
}

/// A pool on `url` that creates a SQLite file, without dialin's schema.
async fn raw_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") {
        format!("{url}?mode=rwc")
    } else {
        url.to_string()
    };
    AnyPool::connect(&url).await.expect("connect")
}

#[tokio::test]
async fn a_failed_migration_changes_nothing_and_does_not_blame_a_newer_dialin() {
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        // A table in the way of migration 2, as a hand-made or foreign database could have.
        let raw = raw_pool(&db.url()).await;
        sqlx::query("CREATE TABLE abuse_keys (x INTEGER)")
            .execute(&raw)
            .await
            .unwrap();
        let e = Store::open(&db.url()).await.err().expect("refused");
        assert!(matches!(e, StoreError::Migration { version: 2, .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains("migration 2 failed"), "{text}");
        assert!(!text.contains("newer"), "{text}");
        // All or nothing: migration 1 was rolled back with it.
        for table in ["pins", "_sqlx_migrations"] {
            let found = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&raw)
                .await;
            assert!(found.is_err(), "{table} exists after a failed run");
        }
        // With the obstacle gone, the next start migrates (no lock was left behind).
        sqlx::query("DROP TABLE abuse_keys")
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
        let store =
            tokio::time::timeout(std::time::Duration::from_secs(10), Store::open(&db.url()))
                .await
                .expect("not blocked by a leftover lock")
                .expect("migrated");
        store.close().await;
    }
}

#[tokio::test]
async fn only_an_unknown_migration_is_reported_as_a_newer_schema() {
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let store = Store::open(&db.url()).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'from the future', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(&store.pool)
        .await
        .unwrap();
        store.close().await;
        let e = Store::open(&db.url()).await.err().expect("refused");
        assert!(matches!(e, StoreError::NewerSchema(99)), "{e}");
        assert!(e.to_string().contains("a newer dialin wrote it"), "{e}");
    }
}

#[tokio::test]
async fn a_store_that_may_not_be_created_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state/pins.db");
    let url = format!("sqlite://{}", file.display());
    let at = Location::parse(&url, Origin::Configured("store.url")).unwrap();
    match Store::open_at(&at, Create::Never).await {
        Err(StoreError::Missing { path }) => assert_eq!(path, file),
        other => panic!("expected Missing, got {:?}", other.map(|_| ())),
    }
    assert!(!file.exists() && !file.parent().unwrap().exists());
    Store::open_at(&at, Create::IfMissing)
        .await
        .unwrap()
        .close()
        .await;
    let store = Store::open_at(&at, Create::Never).await.unwrap();
    assert_eq!(store.location().file(), Some(file.as_path()));
    store.close().await;
}

#[tokio::test]
async fn a_lock_held_too_long_is_reported_instead_of_waited_for_forever() {
    use sqlx::Connection;
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let store = Store::open(&db.url()).await.unwrap();
        let kind = store.kind();
        // Another process in the middle of migrating holds the lock.
        let mut holder = store.pool.acquire().await.unwrap();
        let held = if kind == "sqlite" {
            holder.begin_with("BEGIN IMMEDIATE").await.unwrap()
        } else {
            let mut tx = holder.begin().await.unwrap();
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(migrate::PG_LOCK_KEY)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        };
        let other = raw_pool(&db.url()).await;
        let wait = std::time::Duration::from_millis(300);
        let started = std::time::Instant::now();
        let e = migrate::run_waiting(&other, kind, wait).await.err();
        assert!(
            matches!(e, Some(StoreError::MigrateLock { .. })),
            "{kind}: {e:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{kind}"
        );
        let text = e.unwrap().to_string();
        assert!(
            text.contains("for over 0.3 s") && text.contains("stuck dialin"),
            "{text}"
        );
        // Once the lock is free, the same call finds everything migrated.
        held.rollback().await.unwrap();
        migrate::run_waiting(&other, kind, wait).await.unwrap();
        other.close().await;
        drop(holder);
        store.close().await;
    }
}
