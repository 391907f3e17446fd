//! The HTTP destination: requests built from a batch's rows, and the status codes read.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode};

use super::config::HttpConfig;
use crate::row::Row;
use crate::sink::{CheckError, Sink, WriteError};
use crate::sinks::SinkError;
use crate::template::Template;

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
    /// A sink for `config`; `batch_size = 1` sends each row's body as is.
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
        let mut builder = Client::builder()
            .timeout(Duration::from_secs(config.request_timeout.max(1)))
            .connect_timeout(Duration::from_secs(5));
        if let Some(tls) = config.ssl.as_ref().filter(|t| t.enable) {
            builder = builder.tls_backend_preconfigured(tls.rustls(&[b"h2", b"http/1.1"]).map_err(invalid)?);
        }
        let client = builder.build().map_err(|e| invalid(format!("cannot make an HTTP client: {e}")))?;
        Ok(HttpSink { client, method, url, headers, body, format, single: batch_size <= 1 })
    }

    /// One request's URL, headers and body for consecutive rows with the same URL and headers.
    pub(super) fn requests(&self, rows: &[Row]) -> Vec<Request> {
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
            // A request that cannot even be built (a URL rendered from the row that does not
            // parse) is the row's fault; a failure to reach the server is not.
            let response = request.body(body).send().await.map_err(|e| match e.is_builder() {
                true => WriteError::rejected(format!("{url}: {}", describe(&e))),
                false => WriteError::transient(describe(&e)),
            })?;
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

    async fn check(&self) -> Result<(), CheckError> {
        // Any answer shows the server is there; only a URL without placeholders can be checked.
        if !self.url.is_literal() {
            return Ok(());
        }
        let url = self.url.render(&Row::default());
        self.client
            .head(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| CheckError::new(describe(&e)))
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
