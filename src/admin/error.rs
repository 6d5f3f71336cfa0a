//! The admin API's error answers: JSON `{"error": "...", "fields": [{"field", "reason"}]}` with
//! the right status. Never logged with values: fields and reasons only.

use crate::store::model::FieldError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Serialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What went wrong, for a human.
    pub error: String,
    /// Per-field problems (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// An error with `status` and message.
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            fields: Vec::new(),
        }
    }

    /// 401.
    pub fn unauthorized(error: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, error)
    }

    /// 422 with per-field problems.
    pub fn invalid(fields: Vec<FieldError>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: "validation failed".into(),
            fields,
        }
    }

    /// 404.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "this PIN is not mapped")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::DuplicateInBatch { row } => ApiError::invalid(vec![FieldError::new(
                &format!("[{}].pin", row - 1),
                "appears earlier in the set; every PIN must be unique",
            )]),
            StoreError::TooMany => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            StoreError::DiskFull(_) => {
                tracing::warn!("admin API: {e}");
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string())
            }
            other => {
                tracing::warn!("admin API: {other}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the PIN store is unavailable; see dialin's log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_507_and_says_so() {
        let full = StoreError::DiskFull(sqlx::Error::Io(std::io::Error::from_raw_os_error(28)));
        let e = ApiError::from(full);
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(
            e.error.contains("disk that holds the PIN store is full"),
            "{}",
            e.error
        );
        let other = ApiError::from(StoreError::Query(sqlx::Error::PoolTimedOut));
        assert_eq!(other.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
