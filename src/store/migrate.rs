//! Bringing the schema up to date when several processes open one store at once (the service
//! and `dialin pins` on a fresh SQLite file, or cluster members on a fresh PostgreSQL database).
//!
//! sqlx's migrator checks which migrations are applied and then applies the rest, each in its
//! own transaction; its own lock is a session advisory lock on PostgreSQL (left held on that
//! pooled connection when a migration fails) and nothing at all on SQLite, so two processes
//! could both see "migration 2 missing" and the second failed with "table ... already exists".
//! Here the whole run is one transaction that first takes a lock the other processes wait for
//! (bounded by [`LOCK_WAIT`]): the write lock on SQLite (`BEGIN IMMEDIATE`), a transaction-level
//! advisory lock on PostgreSQL. The second process then finds every migration applied; a failed
//! run changes nothing and leaves no lock behind.

use super::StoreError;
use sqlx::migrate::MigrateError;
use sqlx::{AnyPool, Connection};
use std::time::Duration;

/// How long opening a store waits for another process's migration before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The PostgreSQL advisory lock key for migrating ("dialin" in ASCII, then 1).
pub(super) const PG_LOCK_KEY: i64 = 0x6469_616c_696e_0001;

/// Applies the missing migrations under the lock; `kind` is `sqlite` or `postgres`.
pub(super) async fn run(pool: &AnyPool, kind: &'static str) -> Result<(), StoreError> {
    run_waiting(pool, kind, LOCK_WAIT).await
}

/// [`run`], waiting at most `wait` for the lock.
pub(super) async fn run_waiting(
    pool: &AnyPool,
    kind: &'static str,
    wait: Duration,
) -> Result<(), StoreError> {
    let mut migrator = sqlx::migrate!("./migrations");
    // Ours is the lock; sqlx's would be a second one (PostgreSQL) or none (SQLite).
    migrator.set_locking(false);
    let mut conn = pool.acquire().await?;
    let old_busy = if kind == "sqlite" {
        let old: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await?;
        set_busy_timeout(&mut conn, wait.as_millis() as i64).await?;
        Some(old)
    } else {
        None
    };
    let result = locked_run(&migrator, &mut conn, kind, wait).await;
    if let Some(old) = old_busy {
        set_busy_timeout(&mut conn, old).await?;
    }
    result
}

/// Takes the lock in a transaction, migrates inside it and commits.
async fn locked_run(
    migrator: &sqlx::migrate::Migrator,
    conn: &mut sqlx::AnyConnection,
    kind: &'static str,
    wait: Duration,
) -> Result<(), StoreError> {
    let mut tx = if kind == "sqlite" {
        // Takes the database's write lock now, waiting up to the busy timeout.
        conn.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| lock_error(e, wait))?
    } else {
        let mut tx = conn.begin().await?;
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            wait.as_millis()
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(|e| lock_error(e, wait))?;
        tx
    };
    // `run_direct`, not `run`: `run`'s `Acquire` bound makes the future not `Send` for every
    // lifetime, so a task that opens a store could not be spawned (sqlx's own workaround).
    migrator.run_direct(&mut *tx).await.map_err(migrate_error)?;
    tx.commit().await?;
    Ok(())
}

/// Sets SQLite's busy timeout (milliseconds) of one connection.
async fn set_busy_timeout(conn: &mut sqlx::AnyConnection, ms: i64) -> Result<(), StoreError> {
    sqlx::query(&format!("PRAGMA busy_timeout = {ms}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// A lock that could not be had within `wait` becomes [`StoreError::MigrateLock`].
fn lock_error(e: sqlx::Error, wait: Duration) -> StoreError {
    let code = e.as_database_error().and_then(|d| d.code());
    // SQLITE_BUSY (5, or extended codes ending in 5 in the low byte), PostgreSQL lock_not_available.
    let busy = match code.as_deref() {
        Some("55P03") => true,
        Some(c) => c.parse::<i64>().is_ok_and(|n| n & 0xff == 5),
        None => false,
    };
    if busy {
        StoreError::MigrateLock {
            waited: wait.as_secs_f64(),
        }
    } else {
        e.into()
    }
}

/// Only a migration the database has and this binary lacks means "written by a newer dialin".
fn migrate_error(e: MigrateError) -> StoreError {
    match e {
        MigrateError::VersionMissing(version) => StoreError::NewerSchema(version),
        MigrateError::ExecuteMigration(cause, version) => StoreError::Migration {
            version,
            cause: Box::new(cause),
        },
        other => StoreError::Migrate(other),
    }
}
