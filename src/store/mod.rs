//! The durable PIN-mapping store: SQLite by default (a file created on first start, no setup),
//! PostgreSQL for clusters, both through one code path (sqlx's `Any` driver, portable SQL with
//! `$n` placeholders, which SQLite accepts too) and one set of embedded migrations.
//!
//! Every write transaction first bumps the single row of `pins_generation`. That serialises
//! writers on both databases (so `replace_all` under concurrent writers is atomic and never
//! fails on a half-seen set) and gives every process a cheap number to poll: [`watch`] notices
//! changes made by other processes (the CLI, other cluster members) within its poll interval,
//! and changes made in this process at once (in-process notify).

pub mod abuse;
pub mod exchange;
pub mod generate;
pub mod live;
pub mod model;
pub mod sequences;
pub mod watch;

#[cfg(test)]
mod tests;

use crate::secret::Pin;
use model::{unix_now, Mapping, NewMapping, Target};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

/// The most mappings one `replace_all`/import may hold: bounds memory and transaction size.
pub const MAX_MAPPINGS: usize = 100_000;

/// What can go wrong with the store. Messages never contain a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not one the store understands.
    #[error("store.url: {0}")]
    BadUrl(String),
    /// The database cannot be reached or opened.
    #[error("cannot open the PIN store ({kind}): {source}; check store.url, that the database server runs and that dialin may write there")]
    Open {
        /// `sqlite` or `postgres`.
        kind: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the PIN store: {0}; was the database written by a newer dialin?")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("PIN store query failed: {0}")]
    Query(#[from] sqlx::Error),
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

/// The default store URL: a SQLite file `dialin-pins.db` in `$STATE_DIRECTORY` (set by systemd's
/// `StateDirectory=`) or else in the working directory.
pub fn default_url() -> String {
    let dir = std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    format!("sqlite://{}", dir.join("dialin-pins.db").display())
}

impl Store {
    /// Opens (creating a SQLite file and its directory if needed) and migrates the store at `url`:
    /// `sqlite://<path>`, `sqlite::memory:` or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (kind, url, max) = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::BadUrl(
                    "sqlite:// needs a file path, like sqlite:///var/lib/dialin/pins.db".into(),
                ));
            }
            let file = Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::BadUrl(format!(
                        "cannot create the directory {} ({e})",
                        dir.display()
                    ))
                })?;
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            ("sqlite", format!("sqlite://{path}{sep}mode=rwc"), 4)
        } else if url == "sqlite::memory:" {
            // One connection: each in-memory connection would be its own database.
            ("sqlite", url.to_string(), 1)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            ("postgres", url.to_string(), 8)
        } else {
            return Err(StoreError::BadUrl(
                "must start with sqlite:// (a file) or postgres:// (a server)".into(),
            ));
        };
        use sqlx::ConnectOptions;
        let options: sqlx::any::AnyConnectOptions = url
            .parse()
            .map_err(|source| StoreError::Open { kind, source })?;
        // Statements are logged at trace only: the watcher polls several times a second.
        let options = options
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(
                tracing::log::LevelFilter::Warn,
                std::time::Duration::from_secs(2),
            );
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { kind, source })?;
        if kind == "sqlite" {
            // WAL lets readers (every dialin poll) run beside a writer (the CLI).
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .ok();
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store {
            pool,
            changed: Arc::new(Notify::new()),
            kind,
            reachable: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    /// Opens the store `[store] url` names, or the default SQLite file ([`default_url`]).
    pub async fn open_configured(config: &crate::config::StoreConfig) -> Result<Store, StoreError> {
        match &config.url {
            Some(url) => Store::open(url).await,
            None => Store::open(&default_url()).await,
        }
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
            conference: crate::routing::ConferenceId(c),
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
