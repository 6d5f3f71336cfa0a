//! One mapping as a row of `pins`: written (keeping an existing row's creation time) and read
//! back. The SQL both databases accept.

use super::model::{Mapping, NewMapping, Target};
use super::StoreError;
use crate::secret::Pin;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The columns read back, in this order, by [`row_to_mapping`].
pub(super) const COLUMNS: &str =
    "pin, conference, meeting_id, server, label, valid_from, valid_until, created_at, updated_at";

/// Writes `m`, keeping the creation time of an existing row; returns whether one existed.
pub(super) async fn upsert(
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
pub(super) async fn insert_row(
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
pub(super) fn row_to_mapping(r: &AnyRow) -> Result<Mapping, StoreError> {
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
