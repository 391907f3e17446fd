//! `type = "http"`: rows to an HTTP endpoint (a webhook), as EMQX's HTTP server sink.
//!
//! The URL, headers and body are templates. A batch's rows that render to the same URL and
//! headers go in one request: with `batch_size = 1` the body is the row's rendered body as is;
//! with larger batches it is a JSON array of them (`format = "json"`, always an array, so the
//! receiver sees one shape) or one per line (`format = "ndjson"`). 2xx confirms the rows; 408,
//! 429 and 5xx are retried, after `Retry-After` seconds when the server says so, as are
//! connection errors and timeouts; any other status refuses the rows.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::HttpConfig;
pub use sink::HttpSink;
