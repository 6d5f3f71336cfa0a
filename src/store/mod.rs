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
mod error;
pub mod exchange;
pub mod generate;
pub mod location;
mod migrate;
pub mod model;
pub mod owner;
mod rows;
pub mod sequences;
pub mod shared_mappings;
pub mod watch;

#[cfg(test)]
mod open_tests;
#[cfg(test)]
mod tests;

pub use error::StoreError;
use rows::{insert_row, row_to_mapping, upsert, COLUMNS};

use crate::secret::Pin;
use location::{Location, Origin};
use model::{unix_now, Mapping, NewMapping};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use tokio::sync::Notify;

/// The most mappings one `replace_all`/import may hold: bounds memory and transaction size.
pub const MAX_MAPPINGS: usize = 100_000;

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
