//! Who may use the API: the bootstrap key (`[api] bootstrap_key = "key:secret"`, or
//! `WEIR_API__BOOTSTRAP_KEY`) and the API keys made through `/api/v5/api_key`, as EMQX's, sent
//! as HTTP basic auth (`key:secret`). Keys live in the store; their secrets only as salted
//! hashes, shown once when made.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use parking_lot::RwLock;
use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::warn;

use super::{error, Node};
use crate::auth::hash::same;
use crate::store::{Named, Store};

/// An API key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    /// What goes before the `:` in basic auth.
    pub api_key: String,
    /// Hex SHA-256 of the salt and the secret.
    secret_hash: String,
    salt: String,
    /// A disabled key is refused.
    pub enable: bool,
    /// Unix seconds after which the key is refused; `None`: never.
    pub expired_at: Option<i64>,
    /// What it is for.
    pub desc: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The API's credentials.
pub struct ApiKeys {
    /// `key:secret` from the config.
    bootstrap: Option<(String, String)>,
    keys: RwLock<HashMap<String, ApiKey>>,
    store: Option<Store>,
}

impl ApiKeys {
    /// The bootstrap key `bootstrap` (`key:secret`), and the keys the store `kept`.
    pub fn new(
        bootstrap: Option<&str>,
        kept: Vec<(String, Vec<u8>)>,
        store: Option<Store>,
    ) -> Result<ApiKeys, crate::auth::AuthError> {
        let bootstrap = match bootstrap.map(|b| b.split_once(':')) {
            None => None,
            Some(Some((k, s))) if !k.is_empty() && !s.is_empty() => Some((k.to_string(), s.to_string())),
            Some(_) => {
                return Err(crate::auth::AuthError::Invalid(
                    "[api] bootstrap_key must be \"key:secret\", both parts non-empty".into(),
                ))
            }
        };
        let keys = kept
            .into_iter()
            .filter_map(|(name, bytes)| match postcard::from_bytes(&bytes) {
                Ok(k) => Some((name, k)),
                Err(e) => {
                    warn!(name, error = %e, "an API key in the store cannot be read: skipped");
                    None
                }
            })
            .collect();
        Ok(ApiKeys { bootstrap, keys: RwLock::new(keys), store })
    }

    /// Whether anything can log in at all.
    pub fn is_empty(&self) -> bool {
        self.bootstrap.is_none() && self.keys.read().is_empty()
    }

    /// Whether `key` and `secret` are the bootstrap key or an enabled, unexpired API key.
    pub fn accepts(&self, key: &str, secret: &str) -> bool {
        if let Some((k, s)) = &self.bootstrap {
            if same(k.as_bytes(), key.as_bytes()) && same(s.as_bytes(), secret.as_bytes()) {
                return true;
            }
        }
        let now = chrono::Utc::now().timestamp();
        self.keys.read().values().any(|k| {
            k.api_key == key
                && k.enable
                && k.expired_at.is_none_or(|at| at > now)
                && same(hash(&k.salt, secret).as_bytes(), k.secret_hash.as_bytes())
        })
    }

    /// Makes a key: its view with its secret, shown this once.
    fn create(&self, req: KeyRequest) -> Response {
        let Some(name) = req.name.filter(|n| !n.is_empty() && n.len() <= 200) else {
            return bad_request("name is required (1 to 200 characters)");
        };
        let expired_at = match expiry(req.expired_at.as_deref()) {
            Ok(e) => e,
            Err(why) => return bad_request(&why),
        };
        let mut keys = self.keys.write();
        if keys.contains_key(&name) {
            return bad_request(&format!("an API key named {name:?} exists"));
        }
        let secret = hex::encode(rand::random::<[u8; 24]>());
        let salt = hex::encode(rand::random::<[u8; 16]>());
        let key = ApiKey {
            api_key: hex::encode(rand::random::<[u8; 8]>()),
            secret_hash: hash(&salt, &secret),
            salt,
            enable: req.enable.unwrap_or(true),
            expired_at,
            desc: req.desc.unwrap_or_default(),
            created_at: chrono::Utc::now().timestamp(),
        };
        self.keep(&name, Some(&key));
        let mut body = view(&name, &key);
        body["api_secret"] = json!(secret);
        keys.insert(name, key);
        Json(body).into_response()
    }

    /// Changes a key's `enable`, `desc` and `expired_at`.
    fn update(&self, name: &str, req: KeyRequest) -> Response {
        let mut keys = self.keys.write();
        let Some(key) = keys.get_mut(name) else { return not_found(name) };
        if req.expired_at.is_some() {
            match expiry(req.expired_at.as_deref()) {
                Ok(e) => key.expired_at = e,
                Err(why) => return bad_request(&why),
            }
        }
        if let Some(enable) = req.enable {
            key.enable = enable;
        }
        if let Some(desc) = req.desc {
            key.desc = desc;
        }
        let key = key.clone();
        self.keep(name, Some(&key));
        Json(view(name, &key)).into_response()
    }

    fn keep(&self, name: &str, key: Option<&ApiKey>) {
        if let Some(store) = &self.store {
            let bytes = key.map(|k| postcard::to_stdvec(k).unwrap_or_default());
            if let Err(e) = store.put_named(Named::ApiKeys, name, bytes) {
                warn!(name, error = %e, "the store could not keep a change to an API key");
            }
        }
    }
}

fn hash(salt: &str, secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, format!("{salt}{secret}").as_bytes()))
}

fn view(name: &str, k: &ApiKey) -> serde_json::Value {
    json!({
        "name": name,
        "api_key": k.api_key,
        "enable": k.enable,
        "expired_at": k.expired_at.map_or(json!("infinity"), |t| json!(rfc3339(t))),
        "created_at": rfc3339(k.created_at),
        "desc": k.desc,
    })
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// The body of POST and PUT.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyRequest {
    name: Option<String>,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default)]
    enable: Option<bool>,
    /// RFC 3339, or `"infinity"`.
    #[serde(default)]
    expired_at: Option<String>,
}

/// `expired_at` as Unix seconds; the error is the 400 to answer.
fn expiry(given: Option<&str>) -> Result<Option<i64>, String> {
    match given {
        None | Some("infinity") => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.timestamp()))
            .map_err(|e| format!("expired_at {t:?}: {e}")),
    }
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

pub(super) async fn list(State(node): State<Node>) -> Json<serde_json::Value> {
    let keys = node.keys.keys.read();
    let mut data: Vec<_> = keys.iter().map(|(name, k)| view(name, k)).collect();
    data.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!(data))
}

pub(super) async fn create(State(node): State<Node>, Json(req): Json<KeyRequest>) -> Response {
    let made = node.keys.create(req);
    node.broker.settle_store().await;
    made
}

pub(super) async fn get_one(State(node): State<Node>, Path(name): Path<String>) -> Response {
    match node.keys.keys.read().get(&name) {
        Some(k) => Json(view(&name, k)).into_response(),
        None => not_found(&name),
    }
}

pub(super) async fn update(
    State(node): State<Node>,
    Path(name): Path<String>,
    Json(req): Json<KeyRequest>,
) -> Response {
    let changed = node.keys.update(&name, req);
    node.broker.settle_store().await;
    changed
}

pub(super) async fn delete(State(node): State<Node>, Path(name): Path<String>) -> Response {
    let removed = node.keys.keys.write().remove(&name);
    if removed.is_none() {
        return not_found(&name);
    }
    node.keys.keep(&name, None);
    node.broker.settle_store().await;
    StatusCode::NO_CONTENT.into_response()
}

fn not_found(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("no API key named {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_key_and_enabled_unexpired_keys_are_accepted() {
        let keys = ApiKeys::new(Some("admin:s3cret"), Vec::new(), None).unwrap();
        assert!(keys.accepts("admin", "s3cret"));
        assert!(!keys.accepts("admin", "s3cre"));
        assert!(!keys.accepts("admi", "s3cret"));
        let salt = "ab".to_string();
        let mut key = ApiKey {
            api_key: "k1".into(),
            secret_hash: hash(&salt, "x"),
            salt,
            enable: true,
            expired_at: None,
            desc: String::new(),
            created_at: 0,
        };
        keys.keys.write().insert("one".into(), key.clone());
        assert!(keys.accepts("k1", "x"));
        assert!(!keys.accepts("k1", "y"));
        key.expired_at = Some(1);
        keys.keys.write().insert("one".into(), key.clone());
        assert!(!keys.accepts("k1", "x"));
        key.expired_at = None;
        key.enable = false;
        keys.keys.write().insert("one".into(), key);
        assert!(!keys.accepts("k1", "x"));
        assert!(ApiKeys::new(None, Vec::new(), None).unwrap().is_empty());
        assert!(ApiKeys::new(Some("admin"), Vec::new(), None).is_err());
        assert!(ApiKeys::new(Some("admin:"), Vec::new(), None).is_err());
    }
}
