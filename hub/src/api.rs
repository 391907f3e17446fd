//! The management API under `/api/v5`, with EMQX's paths and response shapes so that scripts
//! written for EMQX keep working: rules, rule metrics, the rule tester, Prometheus text.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value as JsonValue};
use weir_rules::engine::ActiveRule;
use weir_rules::tester::{test_rule, TestOutcome};
use weir_rules::value::Value;

use crate::broker::Broker;
use crate::metrics::Metrics;

/// The API's routes, over one broker.
pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/api/v5/rules", get(list_rules))
        .route("/api/v5/rules/{id}", get(get_rule))
        .route("/api/v5/rules/{id}/metrics", get(rule_metrics))
        .route("/api/v5/rule_test", post(rule_test))
        .route("/api/v5/prometheus/stats", get(prometheus))
        .with_state(broker)
}

/// An EMQX-style error body: `{"code": "...", "message": "..."}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn rules_of(broker: &Broker) -> Vec<Arc<ActiveRule>> {
    broker.rules.as_ref().map(|r| r.rules().rules.clone()).unwrap_or_default()
}

fn rule_info(rule: &ActiveRule) -> JsonValue {
    let st = &rule.statement;
    json!({
        "id": rule.id,
        "name": rule.id,
        "enable": true,
        "from": st.rule.from,
        "actions": st.sink.iter().collect::<Vec<_>>(),
        "description": "",
    })
}

async fn list_rules(State(broker): State<Arc<Broker>>) -> Json<JsonValue> {
    let data: Vec<JsonValue> = rules_of(&broker).iter().map(|r| rule_info(r)).collect();
    let count = data.len();
    Json(json!({ "data": data, "meta": { "page": 1, "limit": count.max(1), "count": count, "hasnext": false } }))
}

fn find(broker: &Broker, id: &str) -> Option<Arc<ActiveRule>> {
    rules_of(broker).into_iter().find(|r| r.id == id)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "Rule Id Not Found")
}

async fn get_rule(State(broker): State<Arc<Broker>>, Path(id): Path<String>) -> Response {
    match find(&broker, &id) {
        Some(rule) => Json(rule_info(&rule)).into_response(),
        None => not_found(),
    }
}

async fn rule_metrics(State(broker): State<Arc<Broker>>, Path(id): Path<String>) -> Response {
    let Some(rule) = find(&broker, &id) else {
        return not_found();
    };
    let metrics: Map<String, JsonValue> =
        rule.metrics.snapshot().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    Json(json!({
        "id": id,
        "metrics": metrics,
        "node_metrics": [{ "node": broker.config.node.name, "metrics": metrics }],
    }))
    .into_response()
}

async fn rule_test(Json(body): Json<JsonValue>) -> Response {
    let Some(sql) = body.get("sql").and_then(JsonValue::as_str) else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the body needs \"sql\"");
    };
    // Re-read as rule values: the context's JSON was valid, so it decodes.
    let context = Value::from_json(body.get("context").unwrap_or(&json!({})).to_string().as_bytes());
    let context = context.unwrap_or(Value::Undefined);
    match test_rule(sql, &context) {
        TestOutcome::Output(v) => match v.to_json() {
            Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Err(e) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        },
        TestOutcome::NotMatch => error(StatusCode::PRECONDITION_FAILED, "NOT_MATCH", "SQL Not Match"),
        TestOutcome::BadRequest(message) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
    }
}

/// Prometheus text format, with EMQX's metric names so that existing dashboards find them.
async fn prometheus(State(broker): State<Arc<Broker>>) -> Response {
    let m = &broker.metrics;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, samples: &[(String, u64)]| {
        out.push_str(&format!("# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let plain = |v: u64| vec![(String::new(), v)];
    family("emqx_connections_count", "gauge", &plain(Metrics::get(&m.connections)));
    family("emqx_sessions_count", "gauge", &plain(broker.session_count() as u64));
    family("emqx_topics_count", "gauge", &plain(broker.router.filter_count() as u64));
    family("emqx_retained_count", "gauge", &plain(broker.retained.len() as u64));
    family("emqx_messages_received", "counter", &plain(Metrics::get(&m.messages_received)));
    family("emqx_messages_sent", "counter", &plain(Metrics::get(&m.messages_sent)));
    family(
        "emqx_messages_dropped",
        "counter",
        &plain(Metrics::get(&m.dropped_queue_full) + Metrics::get(&m.dropped_expired)),
    );
    family("emqx_bytes_received", "counter", &plain(Metrics::get(&m.bytes_received)));
    family("emqx_bytes_sent", "counter", &plain(Metrics::get(&m.bytes_sent)));
    let skipped = broker.rules.as_ref().map_or(0, |r| r.skipped.load(std::sync::atomic::Ordering::Relaxed));
    family("weir_rule_engine_skipped", "counter", &plain(skipped));
    let rules = rules_of(&broker);
    let snapshots: Vec<(String, Vec<(&'static str, u64)>)> =
        rules.iter().map(|r| (r.id.clone(), r.metrics.snapshot())).collect();
    if let Some((_, first)) = snapshots.first() {
        for (i, (name, _)) in first.iter().enumerate() {
            let metric = format!("emqx_rule_{}", name.replace('.', "_"));
            let samples: Vec<(String, u64)> = snapshots
                .iter()
                .map(|(id, snap)| (format!("{{id=\"{}\"}}", id.replace('\\', "\\\\").replace('"', "\\\"")), snap[i].1))
                .collect();
            family(&metric, "counter", &samples);
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
