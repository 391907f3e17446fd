//! `[sinks.<name>]` with `type = "http"`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An HTTP destination (a webhook).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// URL template (`http://` or `https://`).
    pub url: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(default = "post")]
    pub method: String,
    /// Header name → value template.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body template for one row (default `${.}`: the row as JSON).
    pub body: Option<String>,
    /// How a batch's bodies go in one request: `json` (an array) or `ndjson` (one per line).
    #[serde(default = "json_format")]
    pub format: String,
    /// Seconds before a request counts as failed (and is retried).
    #[serde(default = "request_timeout")]
    pub request_timeout: u64,
    /// For `https://`: the CA to trust and the client certificate (see `crate::tls`); the
    /// system's roots and no client certificate without it.
    pub ssl: Option<crate::tls::ClientTls>,
}

fn post() -> String {
    "POST".into()
}

fn json_format() -> String {
    "json".into()
}

fn request_timeout() -> u64 {
    15
}
