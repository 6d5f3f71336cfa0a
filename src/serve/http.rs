//! The HTTP side of operating dialin: [`public_routes`] (`/metrics`, `/healthz`, `/readyz`: no
//! token, nothing personal) and [`api_routes`] (`/api/v1/status`, `/api/v1/calls`,
//! `/api/v1/drain`: for behind the admin API's token). [`routes`] is both together;
//! [`serve`] runs a router on its own listener (`[admin] listen`).

use crate::ops::health::readiness;
use crate::ops::metrics;
use crate::routing::directory::{EslState, ServerHealth};
use crate::serve::refusals::CallsRefused;
use crate::serve::status::OpsState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

/// Every operations route, with its state applied.
pub fn routes(state: Arc<OpsState>) -> Router {
    public_routes(state.clone()).merge(api_routes(state))
}

/// The routes for orchestrators and Prometheus, which need no token.
pub fn public_routes(state: Arc<OpsState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

/// The `/api/v1` routes (status, calls, drain): for behind the admin token.
pub fn api_routes(state: Arc<OpsState>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/calls", get(calls))
        .route("/api/v1/drain", post(drain))
        .with_state(state)
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) {
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the admin HTTP listener stopped");
    }
}

async fn metrics_text(State(s): State<Arc<OpsState>>) -> Response {
    let Some(handle) = &s.metrics else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    // Values that live elsewhere are copied in at scrape time.
    ::metrics::counter!(metrics::SOURCES_REJECTED)
        .absolute(s.filter_stats.rejected.load(Ordering::Relaxed));
    ::metrics::gauge!(metrics::RTP_PORT_PAIRS_IN_USE).set(s.ctx.ports.in_use() as f64);
    ::metrics::gauge!(metrics::SIP_DIALOGS).set(s.ctx.dialog_layer.len() as f64);
    ::metrics::gauge!(metrics::CALLS_IN_IVR).set(s.ctx.admission.counts().ivr as f64);
    for (reason, n) in CallsRefused::of(&s).reasons() {
        ::metrics::counter!(metrics::CALLS_REFUSED, "reason" => reason).absolute(n);
    }
    for r in s.registrations() {
        let up = if r.up { 1.0 } else { 0.0 };
        ::metrics::gauge!(metrics::REGISTRATIONS_UP, "trunk" => r.trunk).set(up);
    }
    let draining = if s.ctx.lifecycle.is_draining() {
        1.0
    } else {
        0.0
    };
    ::metrics::gauge!(metrics::DRAINING).set(draining);
    if let Some(view) = s.ctx.directory_view() {
        for server in view.servers(Instant::now()) {
            let up = if server.state == EslState::Up {
                1.0
            } else {
                0.0
            };
            ::metrics::gauge!(metrics::ESL_CONNECTED, "server" => server.name.to_string()).set(up);
            ::metrics::gauge!(metrics::CONFERENCES_KNOWN, "server" => server.name.to_string())
                .set(server.conferences as f64);
        }
        ::metrics::counter!(metrics::CONFERENCE_COLLISIONS).absolute(view.collisions());
        let names = s.servers.read().unwrap_or_else(|e| e.into_inner()).clone();
        for name in names {
            let up = view.health(&name, Instant::now()) == ServerHealth::Up;
            ::metrics::gauge!(metrics::SERVER_UP, "server" => name.to_string()).set(if up {
                1.0
            } else {
                0.0
            });
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

async fn ready(State(s): State<Arc<OpsState>>) -> Response {
    let (ok, checks) = readiness(&s.checks);
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ok, "checks": checks });
    (code, Json(body)).into_response()
}

async fn status(State(s): State<Arc<OpsState>>) -> Response {
    Json(s.status()).into_response()
}

async fn calls(State(s): State<Arc<OpsState>>) -> Response {
    Json(serde_json::json!({ "calls": s.ctx.calls.list(Instant::now()) })).into_response()
}

async fn drain(State(s): State<Arc<OpsState>>) -> Response {
    if s.ctx.lifecycle.start_drain() {
        info!("drain requested over the admin API");
    }
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "draining": true })),
    )
        .into_response()
}
