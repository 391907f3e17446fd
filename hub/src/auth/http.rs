//! `backend = "http"`: EMQX's HTTP authentication. The request carries the client's
//! credentials (`body`, with placeholders); the answer is 204 (allow), or 200 with
//! `{"result": "allow" | "deny" | "ignore", "is_superuser": bool}` and, as EMQX 5.7 takes it,
//! the client's `acl`; any other status, a timeout or an unreachable service is "ignore", so the
//! next authenticator decides.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use super::config::HttpConfig;
use super::{AuthError, Credentials, Grant, Outcome};

pub(super) struct HttpAuthn {
    cfg: HttpConfig,
    method: Method,
    /// Whether the body goes as a form (`content-type: application/x-www-form-urlencoded`)
    /// rather than JSON.
    form: bool,
    client: Client,
}

impl HttpAuthn {
    pub(super) fn new(cfg: &HttpConfig) -> Result<HttpAuthn, AuthError> {
        let invalid = |m: String| AuthError::Invalid(format!("authentication http: {m}"));
        let method = match cfg.method.to_ascii_lowercase().as_str() {
            "post" => Method::POST,
            "get" => Method::GET,
            other => return Err(invalid(format!("method = {other:?}: it must be \"post\" or \"get\""))),
        };
        reqwest::Url::parse(&cfg.url).map_err(|e| invalid(format!("url = {:?}: {e}", cfg.url)))?;
        // reqwest's TLS is rustls with the ring provider: installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(Duration::from_secs(cfg.request_timeout.max(1)))
            .pool_max_idle_per_host(cfg.pool_size.max(1))
            .build()
            .map_err(|e| invalid(format!("cannot make its HTTP client: {e}")))?;
        let form = cfg
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded"));
        Ok(HttpAuthn { cfg: cfg.clone(), method, form, client })
    }

    /// The longest a request may take.
    pub(super) fn deadline(&self) -> Duration {
        Duration::from_secs(self.cfg.request_timeout.max(1))
    }

    pub(super) async fn check(&self, c: &Credentials) -> Outcome {
        let fields: Vec<(String, String)> = self.cfg.body.iter().map(|(k, v)| (k.clone(), c.fill(v))).collect();
        let mut request = self.client.request(self.method.clone(), c.fill(&self.cfg.url));
        for (k, v) in &self.cfg.headers {
            request = request.header(k.as_str(), c.fill(v));
        }
        request = if self.method == Method::GET {
            request.query(&fields)
        } else if self.form {
            request.form(&fields)
        } else {
            let body: serde_json::Map<String, Value> = fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            request.json(&body)
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Unavailable(format!("request to the service failed: {e}")),
        };
        match response.status() {
            StatusCode::NO_CONTENT => Outcome::Allow(Grant::default()),
            StatusCode::OK => match response.json::<Value>().await {
                Ok(body) => verdict(&body),
                Err(e) => Outcome::Unavailable(format!("its 200 answer is not JSON: {e}")),
            },
            status => Outcome::Ignore(format!("the service answered {status}")),
        }
    }
}

/// What a 200 answer says; an `acl` in it (as in a JWT's claim) is the client's own rules.
fn verdict(body: &Value) -> Outcome {
    match body.get("result").and_then(Value::as_str) {
        Some("allow") => {
            let acl = match body.get("acl").map(super::acl::Rule::from_token) {
                None => None,
                Some(Ok(rules)) => Some(std::sync::Arc::from(rules)),
                Some(Err(e)) => return Outcome::Unavailable(format!("its answer's acl: {e}")),
            };
            let superuser = body.get("is_superuser") == Some(&Value::Bool(true));
            Outcome::Allow(Grant { superuser, acl, ..Grant::default() })
        }
        Some("deny") => Outcome::Deny("the service denied the client".into()),
        Some("ignore") => Outcome::Ignore("the service ignored the client".into()),
        _ => Outcome::Unavailable(format!("its answer has no result of allow, deny or ignore: {body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_emqx_gives_them() {
        let allow = serde_json::json!({ "result": "allow", "is_superuser": true });
        assert!(matches!(verdict(&allow), Outcome::Allow(Grant { superuser: true, acl: None, .. })));
        let with_acl = serde_json::json!({
            "result": "allow",
            "acl": [{ "permission": "deny", "action": "publish", "topic": "x/#" }]
        });
        assert!(matches!(verdict(&with_acl), Outcome::Allow(Grant { acl: Some(a), .. }) if a.len() == 1));
        assert!(matches!(verdict(&serde_json::json!({ "result": "deny" })), Outcome::Deny(_)));
        assert!(matches!(verdict(&serde_json::json!({ "result": "ignore" })), Outcome::Ignore(_)));
        assert!(matches!(verdict(&serde_json::json!({ "result": "perhaps" })), Outcome::Unavailable(_)));
        let bad_acl = serde_json::json!({ "result": "allow", "acl": "everything" });
        assert!(matches!(verdict(&bad_acl), Outcome::Unavailable(_)));
    }
}
