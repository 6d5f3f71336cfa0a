//! One test suite, run against SQLite (a temp file) and the real PostgreSQL server at
//! 127.0.0.1:5432 (a database created and dropped per test). PostgreSQL being down is a
//! failure, not a skip.

use super::model::{MappingDoc, NewMapping, Rules, Target};
use super::*;
use crate::ids::ConferenceId;
use std::future::Future;
use std::time::Duration;

#[path = "../../tests/it/support/db.rs"]
pub(crate) mod db;
use db::TestDb;

/// Runs `body` against a store on SQLite and then on PostgreSQL.
async fn both<F, Fut>(body: F)
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let url = db.url();
        let store = Store::open(&url).await.expect("open store");
        body(store.clone(), url).await;
        store.close().await;
        drop(db);
    }
}

fn rules() -> Rules {
    Rules {
        pin_digits: 5..=11,
        echo_pin: Pin::new("00000"),
        servers: vec!["bbb1".into()],
        reserved: Default::default(),
    }
}

fn conf(pin: &str, conference: &str) -> NewMapping {
    rules()
        .validate(
            &MappingDoc {
                pin: Some(pin.into()),
                conference: Some(conference.into()),
                ..MappingDoc::default()
            },
            None,
        )
        .expect("valid")
}

fn pin(p: &str) -> Pin {
    Pin::new(p).unwrap()
}

async fn crud(store: Store, url: String) {
    assert_eq!(store.count().await.unwrap(), 0);
    let g0 = store.generation().await.unwrap();
    store.insert(&conf("12345", "71234")).await.unwrap();
    assert!(matches!(
        store.insert(&conf("12345", "71235")).await,
        Err(StoreError::Duplicate)
    ));
    let m = store.get(&pin("12345")).await.unwrap().unwrap();
    assert_eq!(
        m.target,
        Target::Conference {
            conference: ConferenceId("71234".into()),
            server: None
        }
    );
    let mut meeting = rules()
        .validate(
            &MappingDoc {
                pin: Some("12345".into()),
                meeting_id: Some("room-1".into()),
                server: Some("bbb1".into()),
                label: Some("Room 1".into()),
                valid_from: Some("2026-01-01T00:00:00Z".into()),
                valid_until: Some("2030-01-01T00:00:00Z".into()),
                ..MappingDoc::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(store.put(&meeting).await.unwrap(), Put::Updated);
    let m2 = store.get(&pin("12345")).await.unwrap().unwrap();
    assert_eq!(
        m2.created_at, m.created_at,
        "an update keeps the creation time"
    );
    assert_eq!(m2.label.as_deref(), Some("Room 1"));
    assert_eq!(m2.valid_until, Some(1_893_456_000));
    assert!(matches!(m2.target, Target::Meeting { ref meeting_id, .. } if meeting_id == "room-1"));
    meeting.pin = pin("23456");
    assert_eq!(store.put(&meeting).await.unwrap(), Put::Created);
    assert_eq!(store.count().await.unwrap(), 2);
    assert!(store.remove(&pin("12345")).await.unwrap());
    assert!(!store.remove(&pin("12345")).await.unwrap());
    assert!(store.get(&pin("12345")).await.unwrap().is_none());
    assert!(store.generation().await.unwrap() > g0);
    // Durable: a second open of the same URL sees the data (and migrating again is a no-op).
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.count().await.unwrap(), 1);
    again.close().await;
}

#[tokio::test]
async fn crud_on_both() {
    both(crud).await;
}

async fn paging(store: Store, _url: String) {
    let all: Vec<NewMapping> = (0..25)
        .map(|i| conf(&format!("{}", 10000 + i * 7), "71234"))
        .collect();
    store.write_all(&all, false).await.unwrap();
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let page = store.list(after.as_deref(), 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        after = Some(page.last().unwrap().pin.expose().to_string());
        seen.extend(page.into_iter().map(|m| m.pin.expose().to_string()));
    }
    let want: Vec<String> = all.iter().map(|m| m.pin.expose().to_string()).collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn paging_on_both() {
    both(paging).await;
}

async fn replace_is_atomic(store: Store, _url: String) {
    store
        .write_all(&[conf("11111", "71234"), conf("22222", "71234")], false)
        .await
        .unwrap();
    store
        .write_all(&[conf("22222", "75555"), conf("33333", "71234")], true)
        .await
        .unwrap();
    let pins: Vec<String> = store
        .all()
        .await
        .unwrap()
        .iter()
        .map(|m| m.pin.expose().to_string())
        .collect();
    assert_eq!(pins, ["22222", "33333"]);
    // A batch with a repeated PIN is refused as a whole, naming the row.
    let dup = [
        conf("44444", "71234"),
        conf("55555", "71234"),
        conf("55555", "71234"),
    ];
    let before = store.all().await.unwrap();
    let e = store.write_all(&dup, true).await.unwrap_err();
    assert!(matches!(e, StoreError::DuplicateInBatch { row: 3 }), "{e}");
    assert_eq!(store.all().await.unwrap(), before);
    // Concurrent replacers: every final state is exactly one writer's whole set.
    let sets: Vec<Vec<NewMapping>> = (0..6)
        .map(|w| {
            (0..30)
                .map(|i| conf(&format!("{}{:04}", w + 1, i), "71234"))
                .collect()
        })
        .collect();
    let mut tasks = Vec::new();
    for set in sets.clone() {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                s.write_all(&set, true).await.expect("concurrent replace");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got: Vec<String> = store
        .all()
        .await
        .unwrap()
        .iter()
        .map(|m| m.pin.expose().to_string())
        .collect();
    assert!(
        sets.iter().any(|s| s
            .iter()
            .map(|m| m.pin.expose().to_string())
            .collect::<Vec<_>>()
            == got),
        "the final set mixes writers: {} rows",
        got.len()
    );
}

#[tokio::test]
async fn replace_on_both() {
    both(replace_is_atomic).await;
}

async fn watch_sees_changes(store: Store, url: String) {
    let mut rx = watch::watch(store.clone(), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(rx.borrow().is_empty());
    // A write in this process.
    store.insert(&conf("12345", "71234")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), rx.changed())
        .await
        .expect("seen within a second")
        .unwrap();
    assert_eq!(rx.borrow_and_update().len(), 1);
    // A write through another pool (as another process would).
    let other = Store::open(&url).await.unwrap();
    other.insert(&conf("23456", "71234")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), rx.changed())
        .await
        .expect("seen within a second")
        .unwrap();
    assert_eq!(rx.borrow_and_update().len(), 2);
    other.close().await;
}

#[tokio::test]
async fn watch_on_both() {
    both(watch_sees_changes).await;
}

#[tokio::test]
async fn bad_urls_are_explained() {
    for url in ["mysql://x", "sqlite://", "/tmp/pins.db"] {
        let e = Store::open(url).await.err().expect("refused").to_string();
        assert!(e.contains("store.url"), "{e}");
    }
    let e = Store::open("postgres://postgres@127.0.0.1:1/none")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot open the PIN store"), "{e}");
}

/// A database error with only a code, as a driver reports one (for codes no local database
/// can be made to return, like PostgreSQL's `53100 disk_full`).
#[derive(Debug)]
struct CodedError(&'static str);

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}", self.0)
    }
}

impl std::error::Error for CodedError {}

impl sqlx::error::DatabaseError for CodedError {
    fn message(&self) -> &str {
        "coded"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.0.into())
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[test]
fn a_full_disk_is_named_as_such_and_nothing_else_is() {
    let db = |code| sqlx::Error::Database(Box::new(CodedError(code)));
    let cases = [
        (db("53100"), true), // PostgreSQL disk_full
        (db("13"), true),    // SQLITE_FULL
        (
            sqlx::Error::Io(std::io::Error::from_raw_os_error(28)), // ENOSPC
            true,
        ),
        (db("5"), false),   // SQLITE_BUSY: "database is locked"
        (db("517"), false), // SQLITE_BUSY_SNAPSHOT
        (db("23505"), false),
        (db("53200"), false), // out_of_memory
        (sqlx::Error::PoolTimedOut, false),
        (sqlx::Error::RowNotFound, false),
    ];
    for (e, full) in cases {
        let text = e.to_string();
        let e = StoreError::from(e);
        assert_eq!(matches!(e, StoreError::DiskFull(_)), full, "{text}");
        assert_eq!(e.to_string().contains("disk"), full, "{e}");
    }
}

/// A real SQLITE_FULL from the driver, through the store's own write: SQLite refuses to grow a
/// database past `max_page_count` exactly as past the end of a disk.
#[tokio::test]
async fn a_write_to_a_full_sqlite_store_says_the_disk_is_full() {
    let store = Store::open("sqlite::memory:").await.expect("open store");
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&store.pool)
        .await
        .unwrap();
    let mut outcome = Ok(());
    for n in 0..10_000u32 {
        outcome = store
            .insert(&conf(&format!("{}", 1_000_000 + n), "71234"))
            .await;
        if outcome.is_err() {
            break;
        }
    }
    let e = outcome.expect_err("the store never filled up");
    assert!(matches!(e, StoreError::DiskFull(_)), "{e}");
    assert!(
        e.to_string()
            .contains("disk that holds the PIN store is full"),
        "{e}"
    );
}
