//! The management API asks for credentials: every route but Prometheus's answers 401 without
//! them, or with wrong ones; the bootstrap key makes API keys (EMQX's `/api/v5/api_key`), which
//! then work until disabled, expired or deleted.

mod common;

use common::http::{request, request_as};
use common::Weir;
use serde_json::Value;

/// Every route, with a method it answers.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v5/rules"),
    ("GET", "/api/v5/rules/r1"),
    ("GET", "/api/v5/rules/r1/metrics"),
    ("POST", "/api/v5/rule_test"),
    ("GET", "/api/v5/sinks"),
    ("GET", "/api/v5/sinks/s"),
    ("GET", "/api/v5/sinks/s/metrics"),
    ("GET", "/api/v5/alarms"),
    ("DELETE", "/api/v5/alarms"),
    ("GET", "/api/v5/api_key"),
    ("POST", "/api/v5/api_key"),
    ("GET", "/api/v5/api_key/k"),
    ("PUT", "/api/v5/api_key/k"),
    ("DELETE", "/api/v5/api_key/k"),
    ("GET", "/api/v5/authentication/password_based:built_in_database/users"),
    ("POST", "/api/v5/authentication/password_based:built_in_database/users"),
    ("GET", "/api/v5/authentication/password_based:built_in_database/users/u"),
    ("PUT", "/api/v5/authentication/password_based:built_in_database/users/u"),
    ("DELETE", "/api/v5/authentication/password_based:built_in_database/users/u"),
];

#[tokio::test]
async fn every_route_but_prometheus_asks_for_credentials() {
    let weir = Weir::start_with_rules("", &[("r1.sql", r#"SELECT * FROM "t/#""#)]);
    let api = weir.api.unwrap();
    for (method, path) in ROUTES {
        let body = Some("{}");
        let (status, text) = request_as(api, None, method, path, body).await;
        assert_eq!(status, 401, "{method} {path} without credentials: {text}");
        assert!(text.contains("BAD_API_KEY_OR_SECRET"), "{text}");
        let (status, _) = request_as(api, Some("weir-test:wrong"), method, path, body).await;
        assert_eq!(status, 401, "{method} {path} with a wrong secret");
        let (status, text) = request(api, method, path, body).await;
        assert_ne!(status, 401, "{method} {path} with the bootstrap key: {text}");
    }
    let (status, text) = request_as(api, None, "GET", "/api/v5/prometheus/stats", None).await;
    assert_eq!(status, 200, "Prometheus scrapes without a key: {text}");
}

#[tokio::test]
async fn api_keys_work_until_disabled_and_are_gone_once_deleted() {
    let weir = Weir::start();
    let api = weir.api.unwrap();
    let (status, text) = request(api, "POST", "/api/v5/api_key", Some(r#"{"name": "ops", "desc": "scripts"}"#)).await;
    assert_eq!(status, 200, "{text}");
    let made: Value = serde_json::from_str(&text).unwrap();
    let key = format!("{}:{}", made["api_key"].as_str().unwrap(), made["api_secret"].as_str().unwrap());
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 200);
    // The secret is shown once: listing keys does not show it.
    let (_, listed) = request(api, "GET", "/api/v5/api_key", None).await;
    assert!(listed.contains("\"ops\"") && !listed.contains("api_secret"), "{listed}");
    let (status, _) = request(api, "POST", "/api/v5/api_key", Some(r#"{"name": "ops"}"#)).await;
    assert_eq!(status, 400, "a second key named ops");

    assert_eq!(request(api, "PUT", "/api/v5/api_key/ops", Some(r#"{"enable": false}"#)).await.0, 200);
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 401);
    let past = r#"{"enable": true, "expired_at": "2020-01-01T00:00:00Z"}"#;
    assert_eq!(request(api, "PUT", "/api/v5/api_key/ops", Some(past)).await.0, 200);
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 401, "expired");
    assert_eq!(request(api, "PUT", "/api/v5/api_key/ops", Some(r#"{"expired_at": "infinity"}"#)).await.0, 200);
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 200);

    // Keys are kept across a restart, as EMQX's.
    let weir = Weir::restart(weir.kill9());
    let api = weir.api.unwrap();
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 200);
    assert_eq!(request(api, "DELETE", "/api/v5/api_key/ops", None).await.0, 204);
    assert_eq!(request_as(api, Some(&key), "GET", "/api/v5/rules", None).await.0, 401);
    assert_eq!(request(api, "GET", "/api/v5/api_key/ops", None).await.0, 404);
}

#[tokio::test]
async fn without_a_bootstrap_key_the_api_says_how_to_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nrules_dir = {:?}\n[listeners.tcp]\nbind = \"127.0.0.1:0\"\n[listeners.ws]\nbind = \"127.0.0.1:0\"\n[api]\nbind = \"127.0.0.1:0\"\n",
            dir.path().join("data"),
            dir.path().join("sql")
        ),
    )
    .unwrap();
    let weir = Weir::spawn(dir, &config, &[], true);
    assert!(weir.log_has(&["the management API has no credentials", "bootstrap_key"]));
    assert_eq!(request(weir.api.unwrap(), "GET", "/api/v5/rules", None).await.0, 401);
}
