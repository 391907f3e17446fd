//! The management API under `/api/v5`, with EMQX's paths and response shapes so that scripts
//! written for EMQX keep working: rules, rule metrics, the rule tester, alarms, Prometheus text
//! (this file), the built-in users (`users`) and API keys (`keys`). Every route but
//! Prometheus's asks for credentials (`guard`).

mod guard;
pub mod keys;
mod users;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value as JsonValue};
use weir_connectors::driver::SinkHandle;
use weir_connectors::sink::Health;
use weir_rules::active_rule::ActiveRule;
use weir_rules::pipeline::Pipeline;
use weir_rules::tester::{test_rule_bounded, TestOutcome};
use weir_rules::value::Value;

use crate::broker::Broker;
use crate::metrics::Metrics;

/// What the handlers read: the broker, the rule pipeline when the node runs one, and the
/// API's credentials.
#[derive(Clone)]
struct Node {
    broker: Arc<Broker>,
    pipeline: Option<Arc<Pipeline>>,
    keys: Arc<keys::ApiKeys>,
}

/// The API's routes, over one node. Prometheus's is open, as in EMQX, so that a scraper needs
/// no key; every other route answers 401 without one.
pub fn router(broker: Arc<Broker>, pipeline: Option<Arc<Pipeline>>, keys: Arc<keys::ApiKeys>) -> Router {
    let node = Node { broker, pipeline, keys };
    let user = format!("{}/{{user_id}}", users::USERS);
    Router::new()
        .route("/api/v5/rules", get(list_rules))
        .route("/api/v5/rules/{id}", get(get_rule))
        .route("/api/v5/rules/{id}/metrics", get(rule_metrics))
        .route("/api/v5/rule_test", post(rule_test))
        .route("/api/v5/sinks", get(list_sinks))
        .route("/api/v5/sinks/{name}", get(get_sink))
        .route("/api/v5/sinks/{name}/metrics", get(sink_metrics))
        .route("/api/v5/alarms", get(list_alarms).delete(clear_alarms))
        .route("/api/v5/api_key", get(keys::list).post(keys::create))
        .route("/api/v5/api_key/{name}", get(keys::get_one).put(keys::update).delete(keys::delete))
        .route(users::USERS, get(users::list).post(users::add))
        .route(&user, get(users::get_one).put(users::update).delete(users::delete))
        .route_layer(axum::middleware::from_fn_with_state(node.clone(), guard::require_key))
        .route("/api/v5/prometheus/stats", get(prometheus))
        .with_state(node)
}

/// An EMQX-style error body: `{"code": "...", "message": "..."}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn rules_of(node: &Node) -> Vec<Arc<ActiveRule>> {
    node.pipeline.as_ref().map(|p| p.rules().rules.clone()).unwrap_or_default()
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

async fn list_rules(State(node): State<Node>) -> Json<JsonValue> {
    let data: Vec<JsonValue> = rules_of(&node).iter().map(|r| rule_info(r)).collect();
    let count = data.len();
    Json(json!({ "data": data, "meta": { "page": 1, "limit": count.max(1), "count": count, "hasnext": false } }))
}

fn find(node: &Node, id: &str) -> Option<Arc<ActiveRule>> {
    rules_of(node).into_iter().find(|r| r.id == id)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "Rule Id Not Found")
}

async fn get_rule(State(node): State<Node>, Path(id): Path<String>) -> Response {
    match find(&node, &id) {
        Some(rule) => Json(rule_info(&rule)).into_response(),
        None => not_found(),
    }
}

async fn rule_metrics(State(node): State<Node>, Path(id): Path<String>) -> Response {
    let Some(rule) = find(&node, &id) else {
        return not_found();
    };
    let metrics: Map<String, JsonValue> =
        rule.metrics.snapshot().into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    Json(json!({
        "id": id,
        "metrics": metrics,
        "node_metrics": [{ "node": node.broker.config.node.name, "metrics": metrics }],
    }))
    .into_response()
}

fn sinks_of(node: &Node) -> Vec<Arc<SinkHandle>> {
    node.pipeline.as_ref().map(|p| p.sinks()).unwrap_or_default()
}

fn metrics_object(snapshot: Vec<(&'static str, u64)>) -> Map<String, JsonValue> {
    snapshot.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect()
}

/// A sink as EMQX shows an action: name, type, status and counters.
fn sink_info(broker: &Broker, sink: &SinkHandle) -> JsonValue {
    let metrics = metrics_object(sink.snapshot());
    json!({
        "name": sink.name,
        "type": sink.kind,
        "enable": true,
        "status": sink.health().as_str(),
        "metrics": metrics,
        "node_status": [{ "node": broker.config.node.name, "status": sink.health().as_str() }],
    })
}

async fn list_sinks(State(node): State<Node>) -> Json<JsonValue> {
    Json(JsonValue::Array(sinks_of(&node).iter().map(|s| sink_info(&node.broker, s)).collect()))
}

fn find_sink(node: &Node, name: &str) -> Option<Arc<SinkHandle>> {
    sinks_of(node).into_iter().find(|s| s.name == name)
}

fn sink_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "Sink Not Found (or not started: no rule writes into it yet)")
}

async fn get_sink(State(node): State<Node>, Path(name): Path<String>) -> Response {
    match find_sink(&node, &name) {
        Some(sink) => Json(sink_info(&node.broker, &sink)).into_response(),
        None => sink_not_found(),
    }
}

async fn sink_metrics(State(node): State<Node>, Path(name): Path<String>) -> Response {
    let Some(sink) = find_sink(&node, &name) else {
        return sink_not_found();
    };
    let metrics = metrics_object(sink.snapshot());
    Json(json!({
        "metrics": metrics,
        "node_metrics": [{ "node": node.broker.config.node.name, "metrics": metrics }],
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
    match test_rule_bounded(sql.to_string(), context).await {
        TestOutcome::Output(v) => match v.to_json() {
            Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Err(e) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        },
        TestOutcome::NotMatch => error(StatusCode::PRECONDITION_FAILED, "NOT_MATCH", "SQL Not Match"),
        TestOutcome::BadRequest(message) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message),
        // EMQX's message, and Weir's words beside it.
        TestOutcome::Failed(failure) => {
            let body =
                json!({ "code": "BAD_REQUEST", "message": failure.emqx_message(), "detail": failure.to_string() });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// `GET /api/v5/alarms` query: `activated=true` (active only), `false` (cleared only), or
/// neither (all); EMQX's paging.
#[derive(serde::Deserialize)]
struct AlarmQuery {
    activated: Option<bool>,
    page: Option<usize>,
    limit: Option<usize>,
}

/// The alarms in EMQX's shape: `data` (node, name, message, details, duration in ms,
/// `activate_at` and `deactivate_at` in RFC 3339 or `infinity`, `activated`) and `meta`.
async fn list_alarms(State(node): State<Node>, Query(q): Query<AlarmQuery>) -> Json<JsonValue> {
    let alarms = &node.broker.alarms;
    let mut all = Vec::new();
    if q.activated != Some(false) {
        all.extend(alarms.active());
    }
    if q.activated != Some(true) {
        all.extend(alarms.deactivated());
    }
    let (page, limit) = (q.page.unwrap_or(1).max(1), q.limit.unwrap_or(100).clamp(1, 10_000));
    let now = weir_rules::now_ms();
    let rfc3339 = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or_else(String::new, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let data: Vec<JsonValue> = all
        .iter()
        .skip((page - 1).saturating_mul(limit))
        .take(limit)
        .map(|a| {
            let details = Value::Map(a.details.clone()).to_json().unwrap_or_default();
            let details: JsonValue = serde_json::from_str(&details).unwrap_or_default();
            json!({
                "node": node.broker.config.node.name,
                "name": a.name,
                "message": a.message,
                "details": details,
                "duration": a.deactivated_at.unwrap_or(now) - a.activated_at,
                "activate_at": rfc3339(a.activated_at),
                "deactivate_at": a.deactivated_at.map_or_else(|| "infinity".to_string(), rfc3339),
                "activated": a.deactivated_at.is_none(),
            })
        })
        .collect();
    let hasnext = page.saturating_mul(limit) < all.len();
    Json(json!({ "data": data, "meta": { "page": page, "limit": limit, "count": all.len(), "hasnext": hasnext } }))
}

/// `DELETE /api/v5/alarms`: forgets the cleared alarms, as EMQX does; active ones stay.
async fn clear_alarms(State(node): State<Node>) -> StatusCode {
    node.broker.alarms.clear_history();
    StatusCode::NO_CONTENT
}

/// Prometheus text format, with EMQX's metric names so that existing dashboards find them.
async fn prometheus(State(node): State<Node>) -> Response {
    let broker = &node.broker;
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
    family("emqx_topics_count", "gauge", &plain(broker.topic_count() as u64));
    family("emqx_retained_count", "gauge", &plain(broker.retained_count() as u64));
    family("emqx_messages_received", "counter", &plain(Metrics::get(&m.messages_received)));
    family("emqx_messages_sent", "counter", &plain(Metrics::get(&m.messages_sent)));
    family(
        "emqx_messages_dropped",
        "counter",
        &plain(Metrics::get(&m.dropped_queue_full) + Metrics::get(&m.dropped_expired)),
    );
    family("emqx_bytes_received", "counter", &plain(Metrics::get(&m.bytes_received)));
    family("emqx_bytes_sent", "counter", &plain(Metrics::get(&m.bytes_sent)));
    let a = &broker.access.counters;
    family("emqx_authentication_success", "counter", &plain(Metrics::get(&a.authentication_success)));
    family("emqx_authentication_failure", "counter", &plain(Metrics::get(&a.authentication_failure)));
    family("emqx_authorization_allow", "counter", &plain(Metrics::get(&a.authorization_allow)));
    family("emqx_authorization_deny", "counter", &plain(Metrics::get(&a.authorization_deny)));
    family("emqx_authorization_cache_hit", "counter", &plain(Metrics::get(&a.authorization_cache_hit)));
    let skipped = broker.rules_skipped();
    family("weir_rule_engine_skipped", "counter", &plain(skipped));
    family("weir_rule_engine_restarts", "counter", &plain(broker.rules_restarts()));
    let queued = broker.rules_queued() as u64;
    family("weir_rule_engine_queued", "gauge", &plain(queued));
    family("weir_rule_engine_queued_bytes", "gauge", &plain(broker.rules_queued_bytes() as u64));
    family("weir_rule_engine_held_rows", "gauge", &plain(broker.rules_held() as u64));
    let rules = rules_of(&node);
    let snapshots: Vec<(String, Vec<(&'static str, u64)>)> =
        rules.iter().map(|r| (r.id.clone(), r.metrics.snapshot())).collect();
    if let Some((_, first)) = snapshots.first() {
        for (i, (name, _)) in first.iter().enumerate() {
            let metric = format!("emqx_rule_{}", name.replace('.', "_"));
            let samples: Vec<(String, u64)> = snapshots.iter().map(|(id, snap)| (label(id), snap[i].1)).collect();
            family(&metric, "counter", &samples);
        }
    }
    // Sinks as EMQX's actions: `emqx_action_<counter>{id="<type>:<name>"}`.
    let sinks = sinks_of(&node);
    let snapshots: Vec<(String, Vec<(&'static str, u64)>)> =
        sinks.iter().map(|s| (label(&format!("{}:{}", s.kind, s.name)), s.snapshot())).collect();
    if let Some((_, first)) = snapshots.first() {
        for (i, (name, _)) in first.iter().enumerate() {
            let kind = if matches!(*name, "inflight" | "queuing" | "queuing_bytes") { "gauge" } else { "counter" };
            let samples: Vec<(String, u64)> = snapshots.iter().map(|(id, snap)| (id.clone(), snap[i].1)).collect();
            family(&format!("emqx_action_{}", name.replace('.', "_")), kind, &samples);
        }
        let status: Vec<(String, u64)> = sinks
            .iter()
            .zip(&snapshots)
            .map(|(s, (id, _))| (id.clone(), u64::from(s.health() == Health::Connected)))
            .collect();
        family("emqx_action_status", "gauge", &status);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `{id="..."}`, escaped as Prometheus labels are.
fn label(id: &str) -> String {
    format!("{{id=\"{}\"}}", id.replace('\\', "\\\\").replace('"', "\\\""))
}
