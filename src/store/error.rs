//! What can go wrong with the store, in words that tell the operator what to do; never a PIN.

use super::MAX_MAPPINGS;
use std::path::PathBuf;

/// What can go wrong with the store. Messages never contain a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not one the store understands.
    #[error("{key}: {why}")]
    BadUrl {
        /// The config key that gave the URL.
        key: &'static str,
        /// What is wrong with it (never the URL itself).
        why: String,
    },
    /// The SQLite file does not exist and the caller may not create it ([`super::Create::Never`]).
    #[error("there is no PIN store at {}; set [store] url to the store the service uses", path.display())]
    Missing {
        /// The absolute path of the missing file.
        path: PathBuf,
    },
    /// The database cannot be reached or opened.
    #[error("cannot open the PIN store ({kind}): {cause}; check store.url, that the database server runs and that dialin may write there")]
    Open {
        /// `sqlite` or `postgres`.
        kind: &'static str,
        /// The driver's error (in the message, so not a `source` printed twice).
        cause: sqlx::Error,
    },
    /// Another process held the migration lock for too long.
    #[error("another process has been updating the PIN store's schema for over {waited} s; check for a stuck dialin process (or a long transaction on the database) and try again")]
    MigrateLock {
        /// Seconds waited.
        waited: f64,
    },
    /// The database has a migration this binary does not know.
    #[error("the PIN store has schema version {0}, which this dialin does not know: a newer dialin wrote it; run that version (or newer) against it, or point [store] url at another store")]
    NewerSchema(i64),
    /// A migration's SQL failed; the whole run was rolled back.
    #[error("cannot update the PIN store's schema: migration {version} failed ({cause}); nothing was changed; check that dialin may write there")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// The database's error (in the message, so not a `source` printed twice).
        cause: Box<sqlx::Error>,
    },
    /// The schema could not be brought up to date for another reason.
    #[error("cannot update the PIN store's schema: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The disk under the database is full (SQLite `SQLITE_FULL`, PostgreSQL `53100
    /// disk_full`, or the OS's "no space left on device"): no write gets through until
    /// space is freed, so it is named as such, not as a lock or a missing PIN.
    #[error("the disk that holds the PIN store is full: nothing was changed; free space there (the SQLite file's directory, or the PostgreSQL server's data directory) and try again ({0})")]
    DiskFull(sqlx::Error),
    /// A query failed.
    #[error("PIN store query failed: {0}")]
    Query(sqlx::Error),
    /// `insert` of a PIN that is already mapped.
    #[error("the PIN is already mapped; use `set` to change it")]
    Duplicate,
    /// A batch maps one PIN twice.
    #[error("row {row}: the PIN appears earlier in the same batch; every PIN must be unique")]
    DuplicateInBatch {
        /// The 1-based position of the repeated entry.
        row: usize,
    },
    /// Too many mappings in one batch.
    #[error("too many mappings (more than {MAX_MAPPINGS}) in one batch")]
    TooMany,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if is_disk_full(&e) {
            StoreError::DiskFull(e)
        } else {
            StoreError::Query(e)
        }
    }
}

/// Whether `e` says the disk is full: SQLite's result code 13 (`SQLITE_FULL`; sqlx reports
/// the extended code), PostgreSQL's SQLSTATE `53100`, or `ENOSPC` from the OS.
fn is_disk_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("53100") => true,
            // SQLite's extended codes keep the primary code in the low byte.
            Some(c) => c.parse::<i64>().is_ok_and(|n| n & 0xff == 13),
            None => false,
        },
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}

impl StoreError {
    /// Whether a PostgreSQL store failing with this may answer later (it is down, restarting,
    /// not reachable yet), so `serve` starts without it rather than not at all. Not for a
    /// SQLite file (a local setup error) nor for a URL, schema or version problem.
    pub fn may_come_later(&self) -> bool {
        match self {
            StoreError::Open { kind, .. } => *kind == "postgres",
            StoreError::Query(_) | StoreError::MigrateLock { .. } => true,
            _ => false,
        }
    }
}
