//! The OpenAPI document of the admin listener (PIN routes, operations routes, the public health
//! and metrics routes), written by hand in `openapi.json` and served as is. `tests/it/openapi.rs`
//! keeps it in sync with what `dialin serve` really serves: every documented operation is
//! routed with its documented security, every `.route(` path in `src/` that the binary answers
//! is documented, and the schemas list exactly the fields the handlers send.

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub fn routes() -> Router {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { ([(CONTENT_TYPE, "application/json")], DOCUMENT) }),
    )
}
