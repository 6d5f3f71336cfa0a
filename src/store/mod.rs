//! The durable PIN-mapping store: SQLite by default (a file created on first start, no setup),
//! PostgreSQL for clusters, both through one code path (sqlx's `Any` driver, portable SQL with
//! `$n` placeholders, which SQLite accepts too) and one set of embedded migrations.
//!
//! Every write transaction first bumps the single row of `pins_generation`. That serialises
//! writers on both databases (so `replace_all` under concurrent writers is atomic and never
//! fails on a half-seen set) and gives every process a cheap number to poll: [`watch`] notices
//! changes made by other processes (the CLI, other cluster members) within its poll interval,
//! and changes made in this process at once (in-process notify).
//!
//! Opening resolves where the store is first ([`location`]: an absolute SQLite path, a URL that
//! prints with its password masked), may refuse to create a missing SQLite file ([`Create`]),
//! and migrates under a lock, so the service, `dialin pins` and cluster members can all start
//! on a fresh store at once (`migrate`).

pub mod abuse;
pub mod exchange;
pub mod generate;
pub mod location;
mod migrate;
pub mod model;
pub mod owner;
pub mod sequences;
pub mod shared_mappings;
pub mod watch;

#[cfg(test)]
mod open_tests;
#[cfg(test)]
mod tests;

use crate::secret::Pin;
use location::{Location, Origin};
use model::{unix_now, Mapping, NewMapping, Target};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

/// The most mappings one `replace_all`/import may hold: bounds memory and transaction size.
pub const MAX_MAPPINGS: usize = 100_000;

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
    /// The SQLite file does not exist and the caller may not create it ([`Create::Never`]).
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

/// An open store. Cheap to clone (a pool and a notifier).
#[derive(Clone)]
pub struct Store {
    /// The connection pool.
    pool: AnyPool,
    /// Woken after every committed write in this process, so [`watch`] reacts at once.
    changed: Arc<Notify>,
    /// `sqlite` or `postgres`, for logs.
    kind: &'static str,
    /// Whether the last read by the watcher worked (for `/readyz`); shared by clones.
    reachable: Arc<std::sync::atomic::AtomicBool>,
    /// Where it is, to tell the operator which store a command used.
    location: Arc<Location>,
}

/// Whether opening a SQLite store may create its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// Create the file (and its directory) if missing: the service on first start.
    IfMissing,
    /// Fail with [`StoreError::Missing`]: a command that would otherwise write a new, empty
    /// store where the service does not look.
    Never,
}

/// Whether `put` created a mapping or replaced one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The PIN was not mapped before.
    Created,
    /// An existing mapping was replaced.
    Updated,
}

/// The columns read back, in this order, by [`row_to_mapping`].
const COLUMNS: &str =
    "pin, conference, meeting_id, server, label, valid_from, valid_until, created_at, updated_at";

impl Store {
    /// Opens (creating a SQLite file and its directory if needed) and migrates the store at `url`:
    /// `sqlite://<path>`, `sqlite::memory:` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let at = Location::parse(url, Origin::Configured("store.url"))?;
        Store::open_at(&at, Create::IfMissing).await
    }

    /// Opens the store at `at` (what `[store]` names, or the default SQLite file), creating it
    /// if missing (the service's first start).
    pub async fn open_configured(at: &Location) -> Result<Store, StoreError> {
        Store::open_at(at, Create::IfMissing).await
    }

    /// Opens and migrates the store at `at`; `create` says whether a missing SQLite file may
    /// be created. Safe when several processes open a fresh store at once (see `migrate`).
    pub async fn open_at(at: &Location, create: Create) -> Result<Store, StoreError> {
        let (options, max) = Store::connect_options(at, create)?;
        let kind = at.kind();
        let pool = Store::pool_options(max)
            .connect_with(options)
            .await
            .map_err(|cause| StoreError::Open { kind, cause })?;
        if kind == "sqlite" {
            // WAL lets readers (every dialin poll) run beside a writer (the CLI).
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .ok();
        }
        migrate::run(&pool, kind).await?;
        Ok(Store::with_pool(pool, at, true))
    }

    /// A store whose database did not answer when opened: its connections are made on first
    /// use, nothing is migrated, and it reads as unreachable until [`Store::migrate`] succeeds.
    /// For `serve`, which starts without its store rather than not at all.
    pub fn open_later(at: &Location) -> Result<Store, StoreError> {
        let (options, max) = Store::connect_options(at, Create::IfMissing)?;
        let pool = Store::pool_options(max).connect_lazy_with(options);
        Ok(Store::with_pool(pool, at, false))
    }

    /// Brings the schema up to date (see `migrate`) and, done, marks the store reachable.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.pool, self.kind).await?;
        self.set_reachable(true);
        Ok(())
    }

    fn with_pool(pool: AnyPool, at: &Location, reachable: bool) -> Store {
        Store {
            pool,
            changed: Arc::new(Notify::new()),
            kind: at.kind(),
            reachable: Arc::new(std::sync::atomic::AtomicBool::new(reachable)),
            location: Arc::new(at.clone()),
        }
    }

    fn pool_options(max: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(5))
    }

    /// The driver options for `at` and the pool size.
    fn connect_options(
        at: &Location,
        create: Create,
    ) -> Result<(sqlx::any::AnyConnectOptions, u32), StoreError> {
        sqlx::any::install_default_drivers();
        let kind = at.kind();
        let mut url = at.url().to_string();
        let max = match (kind, at.file()) {
            ("sqlite", Some(file)) => {
                let mode = match create {
                    Create::IfMissing => {
                        if let Some(dir) = file.parent() {
                            std::fs::create_dir_all(dir).map_err(|e| StoreError::BadUrl {
                                key: at.key(),
                                why: format!(
                                    "cannot create the directory {} ({e}); create it or let dialin write there",
                                    dir.display()
                                ),
                            })?;
                        }
                        "rwc"
                    }
                    Create::Never if !file.exists() => {
                        return Err(StoreError::Missing {
                            path: file.to_path_buf(),
                        })
                    }
                    // `rw` also refuses to create it should it vanish in between.
                    Create::Never => "rw",
                };
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{sep}mode={mode}");
                4
            }
            // One connection: each in-memory connection would be its own database.
            ("sqlite", None) => 1,
            _ => 8,
        };
        use sqlx::ConnectOptions;
        let options: sqlx::any::AnyConnectOptions = url
            .parse()
            .map_err(|cause| StoreError::Open { kind, cause })?;
        // Statements are logged at trace only: the watcher polls several times a second.
        let options = options
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(
                tracing::log::LevelFilter::Warn,
                std::time::Duration::from_secs(2),
            );
        Ok((options, max))
    }

    /// Where the store is; its `Display` masks any password, so it may be printed.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether the store answered the watcher's last poll: a cluster member that cannot read
    /// its mappings is not ready for new calls.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records the outcome of a read (the watcher's polls).
    pub(crate) fn set_reachable(&self, ok: bool) {
        self.reachable
            .store(ok, std::sync::atomic::Ordering::Relaxed);
    }

    /// The change counter: it grows with every committed write, from any process.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM pins_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The mapping of `pin`.
    pub async fn get(&self, pin: &Pin) -> Result<Option<Mapping>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pins WHERE pin = $1"))
            .bind(pin.expose())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| row_to_mapping(&r)).transpose()
    }

    /// Up to `limit` mappings ordered by PIN, starting after `after` (keyset paging).
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<Mapping>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pins WHERE pin > $1 ORDER BY pin LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_mapping).collect()
    }

    /// Every mapping, ordered by PIN.
    pub async fn all(&self) -> Result<Vec<Mapping>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM pins ORDER BY pin"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_mapping).collect()
    }

    /// How many mappings there are.
    pub async fn count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM pins")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
    }

    /// Creates or replaces the mapping of `m.pin` (keeping its creation time).
    pub async fn put(&self, m: &NewMapping) -> Result<Put, StoreError> {
        let mut tx = self.begin_write().await?;
        let existed = upsert(&mut tx, m, unix_now()).await?;
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(if existed { Put::Updated } else { Put::Created })
    }

    /// Creates the mapping of `m.pin`; [`StoreError::Duplicate`] if the PIN is mapped.
    pub async fn insert(&self, m: &NewMapping) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if upsert(&mut tx, m, unix_now()).await? {
            tx.rollback().await?;
            return Err(StoreError::Duplicate);
        }
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(())
    }

    /// Removes the mapping of `pin`; false if there was none.
    pub async fn remove(&self, pin: &Pin) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM pins WHERE pin = $1")
            .bind(pin.expose())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(done.rows_affected() > 0)
    }

    /// Writes all of `ms` in one transaction: all or nothing. With `replace`, mappings not in
    /// `ms` are removed (the whole set is replaced); without, the others are kept.
    pub async fn write_all(&self, ms: &[NewMapping], replace: bool) -> Result<(), StoreError> {
        if ms.len() > MAX_MAPPINGS {
            return Err(StoreError::TooMany);
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(i) = ms.iter().position(|m| !seen.insert(m.pin.expose())) {
            return Err(StoreError::DuplicateInBatch { row: i + 1 });
        }
        let now = unix_now();
        let mut tx = self.begin_write().await?;
        let old: Vec<(String, i64)> = if replace {
            let rows = sqlx::query("SELECT pin, created_at FROM pins")
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM pins").execute(&mut *tx).await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?
        } else {
            Vec::new()
        };
        let created: std::collections::HashMap<String, i64> = old.into_iter().collect();
        for m in ms {
            match created.get(m.pin.expose()) {
                Some(&c) => insert_row(&mut tx, m, c, now).await?,
                None => {
                    upsert(&mut tx, m, now).await?;
                }
            }
        }
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(())
    }

    /// Starts a write transaction by bumping the generation: that takes the row lock on
    /// PostgreSQL and the write lock on SQLite first, so writers queue instead of colliding.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE pins_generation SET generation = generation + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Resolves when a write in this process has committed (for [`watch`]).
    pub(crate) async fn changed_here(&self) {
        self.changed.notified().await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// Writes `m`, keeping the creation time of an existing row; returns whether one existed.
async fn upsert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    m: &NewMapping,
    now: i64,
) -> Result<bool, StoreError> {
    let existing = sqlx::query("SELECT created_at FROM pins WHERE pin = $1")
        .bind(m.pin.expose())
        .fetch_optional(&mut **tx)
        .await?;
    match existing {
        Some(row) => {
            let created: i64 = row.try_get(0)?;
            sqlx::query("DELETE FROM pins WHERE pin = $1")
                .bind(m.pin.expose())
                .execute(&mut **tx)
                .await?;
            insert_row(tx, m, created, now).await?;
            Ok(true)
        }
        None => {
            insert_row(tx, m, now, now).await?;
            Ok(false)
        }
    }
}

/// Inserts one row.
async fn insert_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    m: &NewMapping,
    created: i64,
    updated: i64,
) -> Result<(), StoreError> {
    let (conference, meeting, server) = match &m.target {
        Target::Conference { conference, server } => {
            (Some(conference.expose().to_string()), None, server.clone())
        }
        Target::Meeting { meeting_id, server } => (None, Some(meeting_id.clone()), server.clone()),
    };
    sqlx::query(&format!(
        "INSERT INTO pins ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(m.pin.expose())
    .bind(conference)
    .bind(meeting)
    .bind(server)
    .bind(m.label.clone())
    .bind(m.valid_from)
    .bind(m.valid_until)
    .bind(created)
    .bind(updated)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Reads a row of [`COLUMNS`]. A row that breaks the model (only possible by editing the
/// database by hand) is a decode error.
fn row_to_mapping(r: &AnyRow) -> Result<Mapping, StoreError> {
    let bad = |what: &str| StoreError::Query(sqlx::Error::Decode(what.to_string().into()));
    let pin: String = r.try_get(0)?;
    let pin = Pin::new(pin).ok_or_else(|| bad("a stored PIN is not digits"))?;
    let conference: Option<String> = r.try_get(1)?;
    let meeting: Option<String> = r.try_get(2)?;
    let server: Option<String> = r.try_get(3)?;
    let target = match (conference, meeting) {
        (Some(c), None) => Target::Conference {
            conference: crate::ids::ConferenceId(c),
            server,
        },
        (None, Some(m)) => Target::Meeting {
            meeting_id: m,
            server,
        },
        _ => return Err(bad("a stored mapping has not exactly one target")),
    };
    Ok(Mapping {
        pin,
        target,
        label: r.try_get(4)?,
        valid_from: r.try_get(5)?,
        valid_until: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}
