//! The admin API over real HTTP (the axum app on 127.0.0.1, reqwest as the client), on SQLite
//! and on the real PostgreSQL server: auth, CRUD and validation. Paging and atomic replace are
//! in `admin_api_sets.rs`; the OpenAPI document against the served routes in `openapi.rs`.

use crate::support::admin::{both, start, Api, TOKEN};
use crate::support::db::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};

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
