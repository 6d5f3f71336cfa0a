//! The admin API over real HTTP (the axum app on 127.0.0.1, reqwest as the client), on SQLite
//! and on the real PostgreSQL server: auth, validation, paging, atomic replace under concurrent
//! writers, and the OpenAPI document staying in sync with the routes.

mod support;

use dialin::admin::auth::Token;
use dialin::admin::pins::{routes, PinsState};
use dialin::config::Config;
use dialin::store::model::{MappingDoc, Rules};
use dialin::store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use support::db::TestDb;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-0123456789abcdef";

const CONFIG: &str = "[[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1:5080\"\n[[pins]]\npin = \"8675309\"\nconference = \"71234\"\n";

/// A running admin API on a store; stops on drop.
struct Api {
    base: String,
    http: reqwest::Client,
    cancel: CancellationToken,
    store: Store,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start(url: &str, token: Option<&str>) -> Api {
    let config = Config::from_toml(CONFIG, "t").unwrap();
    let store = Store::open(url).await.unwrap();
    let pins = routes(PinsState {
        store: store.clone(),
        rules: Arc::new(Rules::from_config(&config)),
        config_pins: Arc::new(config.pins.clone()),
    });
    // A public route, as /healthz will be: reachable without the token.
    let public = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let app = dialin::admin::build(token.map(Token::new), vec![pins], vec![public]);
    let cancel = CancellationToken::new();
    let addr: SocketAddr =
        dialin::admin::serve("127.0.0.1:0".parse().unwrap(), app, cancel.clone())
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
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn send(
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
async fn both<F, Fut>(body: F)
where
    F: Fn(Api) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let api = start(&db.url(), Some(TOKEN)).await;
        let store = api.store.clone();
        body(api).await;
        store.close().await;
        db.drop_db().await;
    }
}

use reqwest::Method as M;

#[tokio::test]
async fn every_api_endpoint_needs_the_token() {
    let db = TestDb::sqlite();
    let api = start(&db.url(), Some(TOKEN)).await;
    for (method, path) in [
        (M::GET, "/api/v1/pins"),
        (M::PUT, "/api/v1/pins"),
        (M::GET, "/api/v1/pins/12345"),
        (M::PUT, "/api/v1/pins/12345"),
        (M::DELETE, "/api/v1/pins/12345"),
        (M::POST, "/api/v1/pins/generate"),
        (M::GET, "/api/v1/openapi.json"),
    ] {
        let url = format!("{}{path}", api.base);
        let none = api.http.request(method.clone(), &url).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let wrong = api
            .http
            .request(method.clone(), &url)
            .bearer_auth("test-token-0123456789abcdeX")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = serde_json::from_str(&wrong.text().await.unwrap()).unwrap();
        assert_eq!(body["error"], "wrong bearer token");
    }
    // The right token gets through; the public route needs none.
    assert_eq!(
        api.send(M::GET, "/api/v1/pins", None).await.0,
        StatusCode::OK
    );
    let health = api
        .http
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // No token configured: every API request is refused, and the answer says why.
    let open = start(&TestDb::sqlite().url(), None).await;
    let r = open.send(M::GET, "/api/v1/pins", None).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    assert!(
        r.1["error"]
            .as_str()
            .unwrap()
            .contains("no admin token is configured"),
        "{}",
        r.1
    );
}

async fn crud_and_validation(api: Api) {
    let (s, v) = api
        .send(
            M::PUT,
            "/api/v1/pins/123456",
            Some(json!({"conference": "72222", "label": "Room 1"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["pin"].as_str(),
            v["conference"].as_str(),
            v["source"].as_str()
        ),
        (Some("123456"), Some("72222"), Some("store"))
    );
    let (s, v) = api
        .send(
            M::PUT,
            "/api/v1/pins/123456",
            Some(json!({"meeting_id": "room-1", "server": "bbb1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["meeting_id"], "room-1");
    assert!(v.get("conference").is_none_or(Value::is_null), "{v}");
    let (s, v) = api.send(M::GET, "/api/v1/pins/123456", None).await;
    assert_eq!(
        (s, v["meeting_id"].as_str()),
        (StatusCode::OK, Some("room-1"))
    );
    // Config-file PINs: shown read-only, not writable.
    let (s, v) = api.send(M::GET, "/api/v1/pins/8675309", None).await;
    assert_eq!(
        (s, v["source"].as_str(), v["read_only"].as_bool()),
        (StatusCode::OK, Some("config"), Some(true))
    );
    assert_eq!(
        api.send(M::DELETE, "/api/v1/pins/8675309", None).await.0,
        StatusCode::CONFLICT
    );
    let (s, v) = api
        .send(
            M::PUT,
            "/api/v1/pins/8675309",
            Some(json!({"conference": "72222"})),
        )
        .await;
    assert_eq!(
        (s, v["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("pin"))
    );
    // 422 names each field and reason.
    let cases = [
        ("/api/v1/pins/12a456", json!({"conference": "72222"}), "pin"),
        ("/api/v1/pins/1234", json!({"conference": "72222"}), "pin"),
        (
            "/api/v1/pins/123457",
            json!({"conference": "7"}),
            "conference",
        ),
        ("/api/v1/pins/123457", json!({}), "conference"),
        (
            "/api/v1/pins/123457",
            json!({"conference": "72222", "meeting_id": "x"}),
            "meeting_id",
        ),
        (
            "/api/v1/pins/123457",
            json!({"conference": "72222", "server": "nope"}),
            "server",
        ),
        (
            "/api/v1/pins/123457",
            json!({"conference": "72222", "valid_until": "soon"}),
            "valid_until",
        ),
        (
            "/api/v1/pins/123457",
            json!({"pin": "999999", "conference": "72222"}),
            "pin",
        ),
        ("/api/v1/pins/123457", json!({"conference": 72222}), "body"),
        (
            "/api/v1/pins/123457",
            json!({"conference": "72222", "colour": "red"}),
            "body",
        ),
    ];
    for (path, body, field) in cases {
        let (s, v) = api.send(M::PUT, path, Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {v}");
        assert_eq!(v["fields"][0]["field"], field, "{path} {body}: {v}");
        assert!(v["fields"][0]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()));
    }
    let broken = api
        .req(M::PUT, "/api/v1/pins/123457")
        .header("content-type", "application/json")
        .body("{\"conference\":")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"conference": "72222", "label": "x".repeat(100 * 1024)});
    assert_eq!(
        api.send(M::PUT, "/api/v1/pins/123457", Some(huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        api.send(M::GET, "/api/v1/pins/123457", None).await.0,
        StatusCode::NOT_FOUND,
        "nothing invalid was stored"
    );
    assert_eq!(
        api.send(M::DELETE, "/api/v1/pins/123456", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.send(M::DELETE, "/api/v1/pins/123456", None).await.0,
        StatusCode::NOT_FOUND
    );
    // Generate.
    let (s, v) = api
        .send(M::POST, "/api/v1/pins/generate", Some(json!({"length": 8})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pin = v["pin"].as_str().unwrap();
    assert!(
        pin.len() == 8 && !pin.starts_with('0') && pin.as_bytes().windows(2).all(|w| w[0] != w[1]),
        "{pin}"
    );
    let (s, v) = api
        .send(
            M::POST,
            "/api/v1/pins/generate",
            Some(json!({"length": 30})),
        )
        .await;
    assert_eq!(
        (s, v["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("length"))
    );
    let no_body = api
        .req(M::POST, "/api/v1/pins/generate")
        .send()
        .await
        .unwrap();
    assert_eq!(no_body.status(), StatusCode::OK);
}

#[tokio::test]
async fn crud_and_validation_on_both() {
    both(crud_and_validation).await;
}

async fn paging(api: Api) {
    let set: Vec<Value> = (0..25)
        .map(|i| json!({"pin": format!("{}", 20000 + i * 3), "conference": "72222"}))
        .collect();
    let (s, v) = api
        .send(M::PUT, "/api/v1/pins", Some(Value::Array(set.clone())))
        .await;
    assert_eq!((s, v["count"].as_u64()), (StatusCode::OK, Some(25)), "{v}");
    let mut seen = Vec::new();
    let mut path = "/api/v1/pins?limit=10".to_string();
    let mut pages = 0;
    loop {
        let (s, v) = api.send(M::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        pages += 1;
        if pages == 1 {
            assert_eq!(
                v["read_only"][0]["pin"], "8675309",
                "config mappings on the first page: {v}"
            );
        } else {
            assert!(v.get("read_only").is_none(), "{v}");
        }
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|i| i["pin"].as_str().unwrap().to_string()));
        match v["next"].as_str() {
            Some(next) => path = format!("/api/v1/pins?limit=10&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = set
        .iter()
        .map(|m| m["pin"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, want);
    for bad in [
        "/api/v1/pins?limit=0",
        "/api/v1/pins?limit=1001",
        "/api/v1/pins?limit=x",
        "/api/v1/pins?after=abc",
    ] {
        assert_eq!(
            api.send(M::GET, bad, None).await.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn paging_on_both() {
    both(paging).await;
}

async fn concurrent_replace(api: Api) {
    let api = Arc::new(api);
    let sets: Vec<Vec<String>> = (1..=6)
        .map(|w| (0..40).map(|i| format!("{w}{i:05}")).collect())
        .collect();
    let body = |set: &Vec<String>| {
        Value::Array(
            set.iter()
                .map(|p| json!({"pin": p, "conference": "72222"}))
                .collect(),
        )
    };
    // A replace that fails validation in its last row changes nothing.
    let mut bad = body(&sets[0]);
    bad.as_array_mut()
        .unwrap()
        .push(json!({"pin": "12x45", "conference": "72222"}));
    let (s, v) = api.send(M::PUT, "/api/v1/pins", Some(bad)).await;
    assert_eq!(
        (s, v["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("[40].pin")),
        "{v}"
    );
    let mut dup = body(&sets[0]);
    dup.as_array_mut()
        .unwrap()
        .push(json!({"pin": sets[0][0], "conference": "72222"}));
    assert_eq!(
        api.send(M::PUT, "/api/v1/pins", Some(dup)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        api.send(M::GET, "/api/v1/pins", None).await.1["items"],
        json!([])
    );
    // Writers replace concurrently while readers check every listing is one writer's whole set.
    let mut tasks = Vec::new();
    for set in sets.clone() {
        let api = api.clone();
        let b = body(&set);
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                let (s, v) = api.send(M::PUT, "/api/v1/pins", Some(b.clone())).await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
        }));
    }
    let reader = {
        let api = api.clone();
        let sets = sets.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                let (_, v) = api.send(M::GET, "/api/v1/pins?limit=1000", None).await;
                let got: Vec<String> = v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["pin"].as_str().unwrap().to_string())
                    .collect();
                assert!(
                    got.is_empty() || sets.contains(&got),
                    "a listing mixed writers: {} rows",
                    got.len()
                );
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    reader.await.unwrap();
    let (_, v) = api.send(M::GET, "/api/v1/pins?limit=1000", None).await;
    let got: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pin"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sets.contains(&got),
        "final set is not one writer's: {} rows",
        got.len()
    );
}

#[tokio::test]
async fn concurrent_replace_on_both() {
    both(concurrent_replace).await;
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let db = TestDb::sqlite();
    let api = start(&db.url(), Some(TOKEN)).await;
    let (s, doc) = api.send(M::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let methods = ["get", "put", "post", "delete", "patch"];
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, ops) in paths {
        let concrete = path.replace("{pin}", "12345");
        for m in methods {
            let method = M::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let r = api
                .req(method, &concrete)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap();
            if ops.get(m).is_some() {
                documented += 1;
                // Exists: not 405, and a 404 is ours (JSON), not "no such route".
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} documented but not routed"
                );
                if status == StatusCode::NOT_FOUND {
                    assert!(
                        body.contains("not mapped"),
                        "{m} {path} documented but not routed"
                    );
                }
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} routed but not documented"
                );
            }
        }
    }
    assert_eq!(documented, 7);
    // An undocumented path is not routed.
    assert_eq!(
        api.send(M::GET, "/api/v1/other", None).await.0,
        StatusCode::NOT_FOUND
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
    let fields: std::collections::BTreeSet<String> = serde_json::to_value(&full)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let schema: std::collections::BTreeSet<String> = doc["components"]["schemas"]["Mapping"]
        ["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(fields, schema);
    // The file served is the file in the source tree.
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(dialin::admin::openapi::DOCUMENT).unwrap()
    );
}
