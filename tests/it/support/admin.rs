//! The admin API on a store, served on 127.0.0.1 for tests that talk to it over real HTTP.

use super::db::TestDb;
use dialin::admin::auth::Token;
use dialin::admin::pins::{routes, PinsState};
use dialin::config::Config;
use dialin::store::Store;
use reqwest::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub const CONFIG: &str = "[[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1:5080\"\n[[pins]]\npin = \"8675309\"\nconference = \"71234\"\n";

/// A running admin API on a store; stops on drop.
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The client.
    pub http: reqwest::Client,
    cancel: CancellationToken,
    /// The store behind it.
    pub store: Store,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub async fn start(url: &str, token: Option<&str>) -> Api {
    let config = Config::from_toml(CONFIG, "t").unwrap();
    let store = Store::open(url).await.unwrap();
    let pins = routes(PinsState {
        store: store.clone(),
        rules: Arc::new(config.store_rules()),
        config_pins: Arc::new(config.pins.clone()),
    });
    // A public route, as /healthz will be: reachable without the token.
    let public = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let app = dialin::admin::build(token.map(Token::new), vec![pins], vec![public]);
    let cancel = CancellationToken::new();
    let addr: SocketAddr = dialin::admin::serve(
        "127.0.0.1:0".parse().unwrap(),
        app,
        dialin::sip::conn_limits::ConnLimitSettings {
            per_source: 64,
            total: 4096,
            idle: std::time::Duration::from_secs(30),
        },
        cancel.clone(),
    )
    .await
    .unwrap();
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        cancel,
        store,
    }
}

impl Api {
    /// A request with the token.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    /// Sends a request with the token and an optional JSON body: (status, JSON or text).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Runs `body` on SQLite and on PostgreSQL.
pub async fn both<F, Fut>(body: F)
where
    F: Fn(Api) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let api = start(&db.url(), Some(TOKEN)).await;
        let store = api.store.clone();
        body(api).await;
        store.close().await;
        drop(db);
    }
}
