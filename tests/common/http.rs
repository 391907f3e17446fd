//! A minimal HTTP/1.1 client for the management API: one request per connection.

use std::net::SocketAddr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The bootstrap key of the test nodes' API (`Weir::start` sets it).
pub const API_KEY: &str = "weir-test:test-secret";

/// Sends `method path` with an optional JSON body and the test nodes' key; returns the status
/// and the body.
pub async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    request_as(addr, Some(API_KEY), method, path, body).await
}

/// As [`request`], with `key` (`key:secret`) as basic auth, or no credentials.
pub async fn request_as(
    addr: SocketAddr,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to the API");
    let body = body.unwrap_or("");
    let auth = key
        .map(|k| format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(k)))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status line");
    (status, body.to_string())
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, None).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    request(addr, "POST", path, Some(body)).await
}
