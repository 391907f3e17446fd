//! The API's door: every route but Prometheus's asks for HTTP basic auth with the bootstrap key
//! or an API key, and answers 401 without.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{error, Node};

/// Lets the request through if its `Authorization: Basic` holds a key the node accepts.
pub(super) async fn require_key(State(node): State<Node>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let accepted = given.as_deref().and_then(|g| g.split_once(':')).is_some_and(|(k, s)| node.keys.accepts(k, s));
    if accepted {
        return next.run(request).await;
    }
    let message = if given.is_none() {
        "this API needs credentials: basic auth with an API key (key:secret) or [api] bootstrap_key"
    } else {
        "the API key or secret is wrong, disabled or expired"
    };
    let mut response = error(StatusCode::UNAUTHORIZED, "BAD_API_KEY_OR_SECRET", message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"weir\""));
    response.into_response()
}
