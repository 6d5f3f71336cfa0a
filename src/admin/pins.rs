//! `/api/v1/pins`: read and write PIN mappings. The same validation as the CLI; config-file
//! `[[pins]]` are reported read-only and cannot be written here.

use super::error::ApiError;
use crate::config::PinMapping;
use crate::store::model::{FieldError, MappingDoc, Rules};
use crate::store::{generate, Put, Store};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest body of a single-mapping request.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The largest body of `PUT /api/v1/pins` (the whole set).
pub const SET_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Page size when `limit` is not given, and the largest allowed.
pub const PAGE_DEFAULT: u32 = 100;
/// The largest page.
pub const PAGE_MAX: u32 = 1000;

/// What the pins routes need.
#[derive(Clone)]
pub struct PinsState {
    /// The store.
    pub store: Store,
    /// Validation rules from the configuration.
    pub rules: Arc<Rules>,
    /// The config file's `[[pins]]`, reported read-only.
    pub config_pins: Arc<Vec<PinMapping>>,
}

/// The pins routes (to be put behind the token).
pub fn routes(state: PinsState) -> Router {
    Router::new()
        .route(
            "/api/v1/pins",
            get(list)
                .put(replace)
                .layer(DefaultBodyLimit::max(SET_BODY_LIMIT)),
        )
        .route("/api/v1/pins/generate", post(generate_pin))
        .route("/api/v1/pins/{pin}", get(show).put(put_one).delete(remove))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// One mapping in an answer: the document plus where it comes from.
#[derive(Serialize)]
struct Item {
    #[serde(flatten)]
    doc: MappingDoc,
    /// `store` or `config`.
    source: &'static str,
    /// True for config-file mappings.
    read_only: bool,
}

fn config_item(c: &PinMapping) -> Item {
    Item {
        doc: MappingDoc {
            pin: Some(c.pin.expose().to_string()),
            conference: Some(c.conference.expose().to_string()),
            server: c.server.clone(),
            ..MappingDoc::default()
        },
        source: "config",
        read_only: true,
    }
}

fn store_item(m: &crate::store::model::Mapping) -> Item {
    Item {
        doc: m.to_doc(),
        source: "store",
        read_only: false,
    }
}

/// Query of `GET /api/v1/pins`.
#[derive(Deserialize)]
struct Page {
    /// Page size (1..=PAGE_MAX).
    limit: Option<u32>,
    /// The last PIN of the previous page.
    after: Option<String>,
}

/// Answer of `GET /api/v1/pins`.
#[derive(Serialize)]
struct PageOut {
    /// The store's mappings of this page, by PIN.
    items: Vec<Item>,
    /// The `after` for the next page; null on the last page.
    next: Option<String>,
    /// The config file's mappings (first page only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    read_only: Vec<Item>,
}

async fn list(
    State(s): State<PinsState>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PageOut>, ApiError> {
    let Ok(Query(page)) = query else {
        return Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            "must be a whole number",
        )]));
    };
    let limit = page.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid(vec![FieldError::new(
            "limit",
            format!("must be 1 to {PAGE_MAX}"),
        )]));
    }
    if let Some(a) = &page.after {
        if !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(vec![FieldError::new(
                "after",
                "must be a PIN (digits) from the previous page's next",
            )]));
        }
    }
    // One more than asked tells whether there is a next page.
    let mut rows = s.store.list(page.after.as_deref(), limit + 1).await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|m| m.pin.expose().to_string())
    } else {
        None
    };
    let read_only = if page.after.is_none() {
        s.config_pins.iter().map(config_item).collect()
    } else {
        Vec::new()
    };
    Ok(Json(PageOut {
        items: rows.iter().map(store_item).collect(),
        next,
        read_only,
    }))
}

async fn show(State(s): State<PinsState>, Path(pin): Path<String>) -> Result<Json<Item>, ApiError> {
    let pin = s
        .rules
        .check_pin(&pin)
        .map_err(|e| ApiError::invalid(vec![e]))?;
    if let Some(c) = s.config_pins.iter().find(|c| c.pin == pin) {
        return Ok(Json(config_item(c)));
    }
    match s.store.get(&pin).await? {
        Some(m) => Ok(Json(store_item(&m))),
        None => Err(ApiError::not_found()),
    }
}

/// Parses a JSON body; syntax and shape errors are 400/422 with the reason.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid(vec![FieldError::new("body", e.to_string())]),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {e}"),
            ),
        }
    })
}

async fn put_one(
    State(s): State<PinsState>,
    Path(pin): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let doc: MappingDoc = parse_body(&body)?;
    let m = s
        .rules
        .validate(&doc, Some(&pin))
        .map_err(ApiError::invalid)?;
    let put = s.store.put(&m).await?;
    let stored = s.store.get(&m.pin).await?.ok_or_else(ApiError::not_found)?;
    let status = if put == Put::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(store_item(&stored))).into_response())
}

async fn remove(
    State(s): State<PinsState>,
    Path(pin): Path<String>,
) -> Result<StatusCode, ApiError> {
    let pin = s
        .rules
        .check_pin(&pin)
        .map_err(|e| ApiError::invalid(vec![e]))?;
    if s.rules.reserved.contains(&pin) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this PIN is mapped in the config file, which is read-only here",
        ));
    }
    if s.store.remove(&pin).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Answer of `PUT /api/v1/pins`.
#[derive(Serialize)]
struct Replaced {
    /// How many mappings the store holds now.
    count: usize,
}

async fn replace(State(s): State<PinsState>, body: Bytes) -> Result<Json<Replaced>, ApiError> {
    let docs: Vec<MappingDoc> = parse_body(&body)?;
    if docs.len() > crate::store::MAX_MAPPINGS {
        return Err(crate::store::StoreError::TooMany.into());
    }
    let mut fields = Vec::new();
    let mut ms = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        match s.rules.validate(d, None) {
            Ok(m) => ms.push(m),
            Err(es) => fields.extend(
                es.into_iter()
                    .map(|e| FieldError::new(&format!("[{i}].{}", e.field), e.reason)),
            ),
        }
    }
    if !fields.is_empty() {
        return Err(ApiError::invalid(fields));
    }
    s.store.write_all(&ms, true).await?;
    Ok(Json(Replaced { count: ms.len() }))
}

/// Body of `POST /api/v1/pins/generate` (optional).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GenerateIn {
    /// Digits wanted.
    length: Option<usize>,
}

/// Answer of `POST /api/v1/pins/generate`.
#[derive(Serialize)]
struct GenerateOut {
    /// An unused PIN (not reserved: map it with PUT).
    pin: String,
}

async fn generate_pin(
    State(s): State<PinsState>,
    body: Bytes,
) -> Result<Json<GenerateOut>, ApiError> {
    let input: GenerateIn = if body.is_empty() {
        GenerateIn::default()
    } else {
        parse_body(&body)?
    };
    let pin = generate::unused_pin(&s.store, &s.rules, input.length)
        .await
        .map_err(|e| match e {
            generate::SuggestError::Length(f) => ApiError::invalid(vec![f]),
            generate::SuggestError::Exhausted => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            generate::SuggestError::Store(e) => e.into(),
        })?;
    Ok(Json(GenerateOut { pin }))
}
