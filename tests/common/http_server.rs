//! A small HTTP/1.1 server for the tests, on a free loopback port: it records every request and
//! answers each with the status the test's function picks (one request per connection).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Server {
    pub addr: SocketAddr,
    /// Every request, in order, with the status it was answered.
    pub requests: Arc<Mutex<Vec<(Request, u16)>>>,
}

impl Server {
    /// Starts a server answering each request with `answer(request number, request)`: a status
    /// and extra headers.
    pub async fn start(
        answer: impl Fn(usize, &Request) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static,
    ) -> Server {
        Server::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), answer).await
    }

    /// As [`Server::start`], on `addr` (a destination that comes up where it was expected).
    pub async fn start_on(
        addr: SocketAddr,
        answer: impl Fn(usize, &Request) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static,
    ) -> Server {
        Server::serve(addr, move |n, r| {
            let (status, extra) = answer(n, r);
            (status, extra, "ok".to_string())
        })
        .await
    }

    /// Starts a server answering each request with `answer(request number, request)`: a status
    /// and a JSON body.
    #[allow(dead_code)] // not every test binary needs a body
    pub async fn start_json(answer: impl Fn(usize, &Request) -> (u16, String) + Send + Sync + 'static) -> Server {
        Server::serve(SocketAddr::from(([127, 0, 0, 1], 0)), move |n, r| {
            let (status, body) = answer(n, r);
            (status, vec![("Content-Type", "application/json".to_string())], body)
        })
        .await
    }

    async fn serve(
        addr: SocketAddr,
        answer: impl Fn(usize, &Request) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind(addr).await.expect("bind HTTP server");
        let addr = listener.local_addr().expect("addr");
        let requests: Arc<Mutex<Vec<(Request, u16)>>> = Arc::default();
        let (log, answer) = (requests.clone(), Arc::new(answer));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else { return };
                    let (status, extra, body) = {
                        let mut log = log.lock().unwrap();
                        let (status, extra, body) = answer(log.len(), &request);
                        log.push((request, status));
                        (status, extra, body)
                    };
                    let mut head =
                        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                    for (k, v) in extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    head.push_str(&body);
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Server { addr, requests }
    }

    /// The requests answered with `status`.
    pub fn answered(&self, status: u16) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|(_, s)| *s == status).map(|(r, _)| r.clone()).collect()
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while raw.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&raw[head_end..head_end + length]).into_owned();
    Some(Request { method, path, headers, body })
}
