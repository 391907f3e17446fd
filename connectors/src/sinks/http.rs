//! `type = "http"`: rows to an HTTP endpoint (a webhook), as EMQX's HTTP server sink.
//!
//! The URL, headers and body are templates. A batch's rows that render to the same URL and
//! headers go in one request: with `batch_size = 1` the body is the row's rendered body as is;
//! with larger batches it is a JSON array of them (`format = "json"`, always an array, so the
//! receiver sees one shape) or one per line (`format = "ndjson"`). 2xx confirms the rows; 408,
//! 429 and 5xx are retried, after `Retry-After` seconds when the server says so, as are
//! connection errors and timeouts; any other status refuses the rows.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode};

use crate::config::HttpConfig;
use crate::sink::{Sink, WriteError};
use crate::sinks::SinkError;
use crate::template::{Row, Template};

/// How a batch's bodies are put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Ndjson,
}

/// A request's URL, headers and body (or bodies, while rows are gathered).
type Request<B = String> = (String, Vec<(HeaderName, String)>, B);

/// An HTTP destination.
pub struct HttpSink {
    client: Client,
    method: Method,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Template,
    format: Format,
    /// Whether a request carries one row's body as is (`batch_size = 1`), not an array.
    single: bool,
}

impl HttpSink {
    pub fn new(name: &str, config: &HttpConfig, batch_size: usize) -> Result<HttpSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        // reqwest's TLS is rustls with the ring provider: installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let method = match config.method.to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            "DELETE" => Method::DELETE,
            "GET" => Method::GET,
            other => return Err(invalid(format!("method: `{other}` is not one of POST, PUT, PATCH, DELETE, GET"))),
        };
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(invalid(format!("url: `{}` must start with http:// or https://", config.url)));
        }
        let url = Template::parse(&config.url).map_err(|e| invalid(format!("url: {e}")))?;
        let mut headers = Vec::new();
        for (k, v) in &config.headers {
            let name = HeaderName::try_from(k.as_str()).map_err(|e| invalid(format!("headers: `{k}`: {e}")))?;
            headers.push((name, Template::parse(v).map_err(|e| invalid(format!("headers.{k}: {e}")))?));
        }
        let body = match &config.body {
            Some(b) => Template::parse(b).map_err(|e| invalid(format!("body: {e}")))?,
            None => Template::whole_row(),
        };
        let format = match config.format.as_str() {
            "json" => Format::Json,
            "ndjson" => Format::Ndjson,
            other => return Err(invalid(format!("format: `{other}` is not `json` or `ndjson`"))),
        };
        let client = Client::builder()
            .timeout(Duration::from_secs(config.request_timeout.max(1)))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| invalid(format!("cannot make an HTTP client: {e}")))?;
        Ok(HttpSink { client, method, url, headers, body, format, single: batch_size <= 1 })
    }

    /// One request's URL, headers and body for consecutive rows with the same URL and headers.
    fn requests(&self, rows: &[Row]) -> Vec<Request> {
        let mut out: Vec<Request<Vec<String>>> = Vec::new();
        for row in rows {
            let url = self.url.render(row);
            let headers: Vec<_> = self.headers.iter().map(|(k, t)| (k.clone(), t.render(row))).collect();
            let body = self.body.render(row);
            match out.last_mut() {
                Some((u, h, bodies)) if *u == url && *h == headers => bodies.push(body),
                _ => out.push((url, headers, vec![body])),
            }
        }
        out.into_iter()
            .map(|(url, headers, bodies)| {
                let body = match self.format {
                    _ if self.single && bodies.len() == 1 => bodies.concat(),
                    Format::Json => format!("[{}]", bodies.join(",")),
                    Format::Ndjson => bodies.iter().map(|b| format!("{b}\n")).collect(),
                };
                (url, headers, body)
            })
            .collect()
    }

    fn content_type(&self) -> &'static str {
        match self.format {
            Format::Ndjson if !self.single => "application/x-ndjson",
            _ => "application/json",
        }
    }
}

impl Sink for HttpSink {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        for (url, headers, body) in self.requests(rows) {
            let mut request = self.client.request(self.method.clone(), &url).header(CONTENT_TYPE, self.content_type());
            for (name, value) in headers {
                let value =
                    HeaderValue::try_from(value).map_err(|e| WriteError::rejected(format!("header {name}: {e}")))?;
                request = request.header(name, value);
            }
            let response = request.body(body).send().await.map_err(|e| WriteError::transient(describe(&e)))?;
            let status = response.status();
            if status.is_success() {
                continue;
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            let reason = format!("{url} answered {status}: {}", text.chars().take(200).collect::<String>());
            return Err(
                if status.is_server_error()
                    || matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT)
                {
                    WriteError::Transient { reason, retry_after }
                } else {
                    WriteError::rejected(reason)
                },
            );
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), String> {
        // Any answer shows the server is there; only a URL without placeholders can be checked.
        if !self.url.is_literal() {
            return Ok(());
        }
        let url = self.url.render(&Row::default());
        self.client.head(&url).timeout(Duration::from_secs(5)).send().await.map(|_| ()).map_err(|e| describe(&e))
    }
}

/// A reqwest error with its causes, which hold the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap as Headers;

    fn sink(body: Option<&str>, format: &str, batch_size: usize) -> HttpSink {
        let config = HttpConfig {
            url: "http://127.0.0.1:9/in/${clientid}".into(),
            method: "post".into(),
            headers: Headers::from([("x-topic".into(), "${topic}".into())]),
            body: body.map(str::to_string),
            format: format.into(),
            request_timeout: 5,
        };
        HttpSink::new("h", &config, batch_size).unwrap()
    }

    fn rows() -> Vec<Row> {
        [
            json!({"clientid": "a", "topic": "t/1", "v": 1}),
            json!({"clientid": "a", "topic": "t/1", "v": "x\"y"}),
            json!({"clientid": "b", "topic": "t/2", "v": 3}),
        ]
        .into_iter()
        .map(|v| Row::from(v.as_object().unwrap().clone()))
        .collect()
    }

    #[test]
    fn rows_with_one_url_share_a_request_and_bodies_stay_json() {
        let reqs = sink(Some(r#"{"value": ${v}, "text": "v=${v}"}"#), "json", 100).requests(&rows());
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].0, "http://127.0.0.1:9/in/a");
        assert_eq!(reqs[0].1[0].1, "t/1");
        let first: serde_json::Value = serde_json::from_str(&reqs[0].2).unwrap();
        assert_eq!(first, json!([{"value": 1, "text": "v=1"}, {"value": "x\"y", "text": "v=x\"y"}]));
        let second: serde_json::Value = serde_json::from_str(&reqs[1].2).unwrap();
        assert_eq!(second, json!([{"value": 3, "text": "v=3"}]));
        let nd = sink(None, "ndjson", 100).requests(&rows());
        assert_eq!(nd[0].2.lines().count(), 2);
        let one = sink(None, "json", 1).requests(&rows()[2..]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&one[0].2).unwrap(),
            json!({"clientid": "b", "topic": "t/2", "v": 3})
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let mut config = HttpConfig {
            url: "ftp://x".into(),
            method: "POST".into(),
            headers: Headers::new(),
            body: None,
            format: "json".into(),
            request_timeout: 5,
        };
        let err = |c: &HttpConfig| HttpSink::new("h", c, 1).err().unwrap().to_string();
        assert!(err(&config).contains("url"), "{}", err(&config));
        config.url = "http://x".into();
        config.method = "FETCH".into();
        assert!(err(&config).contains("method"));
        config.method = "POST".into();
        config.body = Some(r#"{"a": ${a} "b"}"#.into());
        assert!(err(&config).contains("body"));
    }
}
