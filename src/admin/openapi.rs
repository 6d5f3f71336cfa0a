//! The OpenAPI document of the admin API, written by hand in `openapi.json` and served as is.
//! The tests in `tests/admin_api.rs` keep it in sync with the router: every documented
//! operation exists, every route is documented, and the mapping schema lists exactly the
//! fields of [`crate::store::model::MappingDoc`].

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
