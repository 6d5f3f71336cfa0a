//! The HTTP admin API (axum): its own listener (`[admin] listen`, default 127.0.0.1:8089), JSON
//! under `/api/v1/`, every `/api/v1` route behind the bearer token ([`auth`]), request bodies
//! size-limited, an OpenAPI document at `/api/v1/openapi.json` kept in sync by a test.
//!
//! The router is built from parts ([`build`]): `protected` routers go behind the token,
//! `public` ones (health and metrics endpoints, which carry no PIN data) do not. Other modules
//! add their routes by handing their own `Router`s to [`build`] in `serve`.

pub mod auth;
pub mod error;
pub mod openapi;
pub mod pins;

use auth::Token;
use axum::Router;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The whole admin app: `protected` routers behind the token (absent token: every protected
/// request gets 401 saying none is configured), `public` ones open. Unknown paths get 404.
pub fn build(token: Option<Token>, protected: Vec<Router>, public: Vec<Router>) -> Router {
    let guarded = protected
        .into_iter()
        .fold(Router::new(), Router::merge)
        .merge(openapi::routes())
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ));
    public.into_iter().fold(guarded, Router::merge)
}

/// Binds `addr` and serves `app` until `cancel` fires. Returns the bound address (port 0 picks
/// a free port; tests read it from the log line "admin API listening"). Connections are
/// capped and closed when idle (`limits.tcp_*`, see [`crate::sip::conn_limits`]).
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    limits: crate::sip::conn_limits::ConnLimitSettings,
    cancel: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("admin.listen: cannot listen on {addr} ({e}); choose a free address, or \"\" to switch the admin API off")
    })?;
    let local = listener.local_addr()?;
    info!(addr = %local, "admin API listening");
    tokio::spawn(async move {
        let listener = crate::sip::conn_limits::AdminListener {
            listener,
            limits: crate::sip::conn_limits::ConnectionLimits::new(limits),
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            warn!("admin API stopped: {e}");
        }
    });
    Ok(local)
}
