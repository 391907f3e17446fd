//! The built-in database's users, at EMQX's paths:
//! `/api/v5/authentication/password_based:built_in_database/users[/{user_id}]`. A change is
//! answered once the store has it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{error, Node};
use crate::auth::builtin::{BuiltIn, UserError};

/// The users' path.
pub(super) const USERS: &str = "/api/v5/authentication/password_based:built_in_database/users";

fn builtin(node: &Node) -> Option<std::sync::Arc<BuiltIn>> {
    node.broker.access.authn.builtin().cloned()
}

fn no_builtin() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no built_in_database authenticator: add [[authentication]] with backend = \"built_in_database\"",
    )
}

fn refused(e: UserError) -> Response {
    let (status, code) = match e {
        UserError::Exists(_) => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        UserError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        UserError::EmptyId => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
    };
    error(status, code, &e.to_string())
}

pub(super) async fn list(State(node): State<Node>) -> Response {
    let Some(b) = builtin(&node) else { return no_builtin() };
    let data: Vec<_> = b.list().into_iter().map(|(id, su)| json!({ "user_id": id, "is_superuser": su })).collect();
    let count = data.len();
    Json(json!({ "data": data, "meta": { "page": 1, "limit": count.max(1), "count": count, "hasnext": false } }))
        .into_response()
}

/// The body of POST (all of it) and PUT (`password` and `is_superuser`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserRequest {
    user_id: Option<String>,
    password: Option<String>,
    #[serde(default)]
    is_superuser: Option<bool>,
}

pub(super) async fn add(State(node): State<Node>, Json(req): Json<UserRequest>) -> Response {
    let Some(b) = builtin(&node) else { return no_builtin() };
    let (Some(id), Some(password)) = (req.user_id, req.password) else {
        return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "user_id and password are required");
    };
    let superuser = req.is_superuser.unwrap_or(false);
    // bcrypt takes tens of milliseconds: not on the async workers.
    let (made_id, made) = (id.clone(), b.clone());
    match tokio::task::spawn_blocking(move || made.add(&made_id, &password, superuser)).await {
        Ok(Ok(())) => {
            node.broker.settle_store().await;
            (StatusCode::CREATED, Json(json!({ "user_id": id, "is_superuser": superuser }))).into_response()
        }
        Ok(Err(e)) => refused(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &e.to_string()),
    }
}

pub(super) async fn get_one(State(node): State<Node>, Path(id): Path<String>) -> Response {
    let Some(b) = builtin(&node) else { return no_builtin() };
    match b.get(&id) {
        Some(su) => Json(json!({ "user_id": id, "is_superuser": su })).into_response(),
        None => refused(UserError::NotFound(id)),
    }
}

pub(super) async fn update(State(node): State<Node>, Path(id): Path<String>, Json(req): Json<UserRequest>) -> Response {
    let Some(b) = builtin(&node) else { return no_builtin() };
    let (made_id, made) = (id.clone(), b.clone());
    let (password, superuser) = (req.password, req.is_superuser);
    match tokio::task::spawn_blocking(move || made.update(&made_id, password.as_deref(), superuser)).await {
        Ok(Ok(())) => {
            node.broker.settle_store().await;
            Json(json!({ "user_id": id, "is_superuser": b.get(&id).unwrap_or(false) })).into_response()
        }
        Ok(Err(e)) => refused(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &e.to_string()),
    }
}

pub(super) async fn delete(State(node): State<Node>, Path(id): Path<String>) -> Response {
    let Some(b) = builtin(&node) else { return no_builtin() };
    match b.delete(&id) {
        Ok(()) => {
            node.broker.settle_store().await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => refused(e),
    }
}
