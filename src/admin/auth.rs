//! The admin API's bearer token: loaded from a file or an environment variable, compared in
//! constant time (both sides hashed first, so neither content nor length leaks through timing).

use crate::config::AdminConfig;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// The configured token, kept only as its SHA-256. `Debug` shows nothing.
#[derive(Clone)]
pub struct Token(Arc<[u8; 32]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

impl Token {
    /// A token from its text (trimmed).
    pub fn new(text: &str) -> Token {
        Token(Arc::new(Sha256::digest(text.trim().as_bytes()).into()))
    }

    /// Whether `presented` is the token, in time independent of both.
    pub fn matches(&self, presented: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        h.ct_eq(&*self.0).into()
    }
}

/// Why the token could not be loaded. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("admin.token_file: cannot read {path} ({reason}); create it with the token on its first line, readable only by dialin")]
    File {
        /// The path.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The variable is not set.
    #[error("admin.token_env: the environment variable {0} is not set; set it to the admin token")]
    Env(String),
    /// The token is too short.
    #[error("the admin token has fewer than {MIN_TOKEN_LEN} characters; use a long random one (e.g. openssl rand -hex 32)")]
    Short,
}

/// Loads the token named by `[admin]`; `Ok(None)` when none is configured (the API then answers
/// every protected request with 401 and says so).
pub fn load_token(config: &AdminConfig) -> Result<Option<Token>, TokenError> {
    Ok(token_text(config)?.map(|text| Token::new(&text)))
}

/// The token's text as `[admin]` names it (for clients such as `dialin status`); `Ok(None)`
/// when none is configured.
pub fn token_text(config: &AdminConfig) -> Result<Option<String>, TokenError> {
    let text = if let Some(path) = &config.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| TokenError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        text.lines().next().unwrap_or("").to_string()
    } else if let Some(var) = &config.token_env {
        std::env::var(var).map_err(|_| TokenError::Env(var.clone()))?
    } else {
        return Ok(None);
    };
    if text.trim().len() < MIN_TOKEN_LEN {
        return Err(TokenError::Short);
    }
    Ok(Some(text))
}

/// Middleware: lets a request through only with `Authorization: Bearer <token>`.
pub async fn require_token(
    State(token): State<Option<Token>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return super::error::ApiError::unauthorized(
            "no admin token is configured, so the admin API refuses every request; set admin.token_file or admin.token_env and restart",
        )
        .into_response();
    };
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if token.matches(p.trim()) => next.run(request).await,
        Some(_) => super::error::ApiError::unauthorized("wrong bearer token").into_response(),
        None => super::error::ApiError::unauthorized(
            "missing bearer token; send Authorization: Bearer <token>",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compare_and_loading() {
        let t = Token::new("0123456789abcdef\n");
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("0123"));
        let none = AdminConfig {
            listen: None,
            token_file: None,
            token_env: None,
        };
        assert!(load_token(&none).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "short\n").unwrap();
        let cfg = AdminConfig {
            token_file: Some(file.clone()),
            ..none.clone()
        };
        assert!(matches!(load_token(&cfg), Err(TokenError::Short)));
        std::fs::write(&file, "0123456789abcdef0123\nsecond line ignored\n").unwrap();
        assert!(load_token(&cfg)
            .unwrap()
            .unwrap()
            .matches("0123456789abcdef0123"));
        let missing = AdminConfig {
            token_env: Some("DIALIN_TEST_UNSET_TOKEN_VAR".into()),
            ..none
        };
        let e = load_token(&missing).unwrap_err().to_string();
        assert!(e.contains("DIALIN_TEST_UNSET_TOKEN_VAR"), "{e}");
    }
}
