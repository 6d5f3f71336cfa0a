//! The admin API over real HTTP on SQLite and PostgreSQL: paging through the set, and
//! `PUT /api/v1/pins` replacing the whole set atomically under concurrent writers and readers.

use crate::support::admin::{both, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

use reqwest::Method as M;

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
