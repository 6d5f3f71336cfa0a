//! The OpenAPI document (`src/admin/openapi.json`) against what the real `dialin serve` serves
//! on its admin listener, so the document cannot drift from the router `serve` builds:
//! - the paths and methods the binary answers are exactly the documented ones. The candidate
//!   paths are the documented ones plus every `.route("…")` path in `src/`; a route added
//!   anywhere without documenting it fails here, as does a path that is not a string literal;
//! - each operation's documented security is what the binary does without a token (every
//!   `/api/v1` route needs the bearer token, the public ones none);
//! - the response schemas list exactly the fields the handlers send.

use crate::support::dialin::{TestConfig, ADMIN_TOKEN};
use crate::support::ports::PortBlock;
use dialin::ops::calls::CallSummary;
use dialin::ops::health::CheckResult;
use dialin::serve::status::{ServerSummary, Status};
use dialin::store::model::MappingDoc;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The methods probed on every path (axum answers HEAD wherever GET is routed).
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Methods by path.
type Operations = BTreeMap<String, BTreeSet<&'static str>>;

/// Probed last: it starts a drain, after which the binary exits.
const DRAIN: (&str, &str) = ("post", "/api/v1/drain");

/// Router calls this test cannot see into: their paths would not be checked.
const HIDDEN_ROUTES: [&str; 4] = [".nest(", ".nest_service(", ".route_service(", ".fallback("];

/// Every path given to `.route(` in `src/`, as a string literal.
fn routes_in_source() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            // Code only: comments may mention router calls.
            let text: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            for hidden in HIDDEN_ROUTES {
                assert!(
                    !text.contains(hidden),
                    "{}: {hidden} hides routes from this test; use .route(\"/path\", …) or teach the test",
                    path.display()
                );
            }
            for (_, rest) in text
                .match_indices(".route(")
                .map(|(i, _)| text.split_at(i + 7))
            {
                let literal = rest
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|r| r.split_once('"'))
                    .map(|(p, _)| p.to_string());
                let literal = literal.unwrap_or_else(|| {
                    panic!(
                        "{}: a .route( whose path is not a string literal; this test cannot check it is documented",
                        path.display()
                    )
                });
                paths.insert(literal);
            }
        }
    }
    paths
}

/// A concrete request path for a route path (`{pin}` and other parameters become digits).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "12345" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// A running dialin's admin listener and a client for it.
struct Listener {
    base: String,
    http: reqwest::Client,
}

impl Listener {
    /// `method path` with `{}` as a JSON body, with or without the token: (status, body).
    async fn probe(&self, method: &str, path: &str, token: bool) -> (StatusCode, String) {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, concrete(path)))
            .header("content-type", "application/json")
            .body("{}");
        if token {
            req = req.bearer_auth(ADMIN_TOKEN);
        }
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Whether `method path` reaches a handler: not 405, and not the router's own empty 404
    /// (a handler's 404, such as an unmapped PIN, has a body).
    async fn routed(&self, method: &str, path: &str) -> bool {
        let (status, body) = self.probe(method, path, true).await;
        status != StatusCode::METHOD_NOT_ALLOWED
            && !(status == StatusCode::NOT_FOUND && body.is_empty())
    }

    /// `GET path` with the token, which must answer 200 with JSON.
    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.probe("get", path, true).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// The keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// The property names of the schema at `pointer` in the document.
fn properties(doc: &Value, pointer: &str) -> BTreeSet<String> {
    let schema = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no schema at {pointer}"));
    keys(&schema["properties"])
}

#[tokio::test]
async fn openapi_document_matches_what_serve_serves() {
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let dialin = TestConfig::new(server).start();
    let api = Listener {
        base: dialin.admin_url(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    };

    // The file served is the file in the source tree.
    let doc = api.json("/api/v1/openapi.json").await;
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(dialin::admin::openapi::DOCUMENT).unwrap()
    );
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented: Operations = BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let methods = METHODS.into_iter().filter(|m| ops.get(*m).is_some());
        documented.insert(path.clone(), methods.collect());
    }

    // The probe itself tells a missing route from a handler's answer.
    assert!(!api.routed("get", "/api/v1/no-such-route").await);
    assert!(!api.routed("put", "/healthz").await);

    check_routes(&api, &documented).await;
    check_security(&api, &doc, &documented).await;
    check_schemas(&api, &doc).await;
    // Last, as it stops the binary.
    let (status, body) = api.probe(DRAIN.0, DRAIN.1, true).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        documented.get(DRAIN.1).is_some_and(|m| m.contains(DRAIN.0)),
        "{DRAIN:?} is served but not documented"
    );
}

/// Every documented path and every route path in the source, each method probed: what the
/// binary answers is exactly what is documented (the drain aside, probed last).
async fn check_routes(api: &Listener, documented: &Operations) {
    let source = routes_in_source();
    assert!(source.contains("/api/v1/pins/{pin}") && source.contains("/metrics"));
    let candidates: BTreeSet<&String> = documented.keys().chain(&source).collect();
    let mut served: Operations = BTreeMap::new();
    for path in candidates {
        for method in METHODS {
            if (method, path.as_str()) != DRAIN && api.routed(method, path).await {
                served.entry(path.clone()).or_default().insert(method);
            }
        }
    }
    let mut expected = documented.clone();
    if let Some(methods) = expected.get_mut(DRAIN.1) {
        methods.remove(DRAIN.0);
        if methods.is_empty() {
            expected.remove(DRAIN.1);
        }
    }
    assert_eq!(
        served, expected,
        "left: what dialin serve answers; right: src/admin/openapi.json"
    );
}

/// What the document says about the token is what the binary does without one.
async fn check_security(api: &Listener, doc: &Value, documented: &Operations) {
    for (path, methods) in documented {
        for method in methods {
            let op = &doc["paths"][path][method];
            let security = op.get("security").unwrap_or(&doc["security"]);
            let needs_token = !security.as_array().unwrap().is_empty();
            assert_eq!(
                needs_token,
                path.starts_with("/api/v1/"),
                "{method} {path}: the token is for /api/v1 and nothing else"
            );
            let (status, body) = api.probe(method, path, false).await;
            if needs_token {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            } else {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::NOT_FOUND,
                    "{method} {path} is documented as public: {status} {body}"
                );
            }
        }
    }
}

/// The response schemas list exactly the fields the handlers send.
async fn check_schemas(api: &Listener, doc: &Value) {
    let status = api.json("/api/v1/status").await;
    assert_eq!(keys(&status), properties(doc, "/components/schemas/Status"));
    let summary = Status {
        version: "1".into(),
        uptime_secs: 1,
        draining: false,
        active_calls: 1,
        calls_started: 1,
        calls_bridged: 1,
        echo_tests: 1,
        calls_refused: Default::default(),
        rtp_port_pairs_in_use: 1,
        sip_dialogs: 1,
        sip_sources_rejected: 1,
        servers: vec![],
        registrations: vec![],
    };
    assert_eq!(
        keys(&serde_json::to_value(&summary).unwrap()),
        keys(&status)
    );
    assert_eq!(
        keys(&status["calls_refused"]),
        properties(doc, "/components/schemas/CallsRefused")
    );
    let server = ServerSummary {
        name: "bbb1".into(),
        event_socket: Some("Up".into()),
        conferences: Some(1),
        health: Some("Up".into()),
    };
    assert_eq!(
        keys(&serde_json::to_value(&server).unwrap()),
        properties(doc, "/components/schemas/Server")
    );
    assert_eq!(
        keys(&status["servers"][0]),
        keys(&serde_json::to_value(&server).unwrap())
    );
    let calls = api.json("/api/v1/calls").await;
    assert_eq!(
        keys(&calls),
        properties(
            doc,
            "/paths/~1api~1v1~1calls/get/responses/200/content/application~1json/schema"
        )
    );
    let call = CallSummary {
        call: 1,
        caller: Some("0123456789ab".into()),
        state: "bridged",
        age_secs: 1,
    };
    assert_eq!(
        keys(&serde_json::to_value(&call).unwrap()),
        properties(doc, "/components/schemas/Call")
    );
    let (ready_status, ready) = api.probe("get", "/readyz", false).await;
    assert_eq!(ready_status, StatusCode::OK, "{ready}");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(
        keys(&ready),
        properties(doc, "/components/schemas/Readiness")
    );
    let failed = CheckResult {
        name: "sip_listener",
        ok: false,
        reason: Some("stopped".into()),
    };
    assert_eq!(
        keys(&serde_json::to_value(&failed).unwrap()),
        properties(doc, "/components/schemas/Readiness/properties/checks/items")
    );
    // The Mapping schema lists exactly the fields of the exchange document.
    let full = MappingDoc {
        pin: Some("1".into()),
        conference: Some("1".into()),
        meeting_id: Some("1".into()),
        server: Some("1".into()),
        label: Some("1".into()),
        valid_from: Some("1".into()),
        valid_until: Some("1".into()),
        created_at: Some("1".into()),
        updated_at: Some("1".into()),
    };
    assert_eq!(
        keys(&serde_json::to_value(&full).unwrap()),
        properties(doc, "/components/schemas/Mapping")
    );
}
