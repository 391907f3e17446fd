//! Shared by the end-to-end tests: start the real `weir` binary on ephemeral loopback ports, and
//! a raw MQTT 5.0 client for checks that need byte-level control.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod http;
pub mod http_server;
pub mod pki;
pub mod proxy;
pub mod raw;
pub mod sinks;
pub mod tansu;
pub mod tls_proxy;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::API_KEY;

/// A running `weir serve`, killed on drop.
pub struct Weir {
    child: Child,
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    /// The management API, when the test config enables it (Weir::start does).
    pub api: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Weir {
    pub fn start() -> Weir {
        Weir::start_with("")
    }

    /// Starts with extra TOML appended to the test config (for `[mqtt]` limits and the like).
    pub fn start_with(extra: &str) -> Weir {
        Weir::start_with_rules(extra, &[])
    }

    /// Starts with rule files (name, text) already in the rules directory.
    pub fn start_with_rules(extra: &str, rules: &[(&str, &str)]) -> Weir {
        Weir::start_configured(extra, rules, &[])
    }

    /// Starts with environment overrides (`WEIR_LISTENERS__WS__...`): the way to set keys of
    /// the tables the test config already has.
    #[allow(dead_code)] // not every test binary sets any
    pub fn start_with_env(env: &[(&str, String)]) -> Weir {
        Weir::start_configured("", &[], env)
    }

    /// Starts with extra TOML, once `prepare` has made the data directory (to mount a small
    /// disk there, say).
    pub fn start_on(extra: &str, prepare: impl FnOnce(&std::path::Path)) -> Weir {
        Weir::start_prepared(extra, &[], &[], prepare)
    }

    fn start_configured(extra: &str, rules: &[(&str, &str)], env: &[(&str, String)]) -> Weir {
        Weir::start_prepared(extra, rules, env, |_| {})
    }

    fn start_prepared(
        extra: &str,
        rules: &[(&str, &str)],
        env: &[(&str, String)],
        prepare: impl FnOnce(&std::path::Path),
    ) -> Weir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        prepare(&dir.path().join("data"));
        std::fs::create_dir_all(dir.path().join("sql")).expect("rules dir");
        for (name, text) in rules {
            std::fs::write(dir.path().join("sql").join(name), text).expect("rule file");
        }
        let config = format!(
            "data_dir = {data:?}\nrules_dir = {rules:?}\n\n[listeners.tcp]\nbind = \"127.0.0.1:0\"\n\n[listeners.ws]\nbind = \"127.0.0.1:0\"\n\n[api]\nbind = \"127.0.0.1:0\"\nbootstrap_key = \"{API_KEY}\"\n\n{extra}\n",
            data = dir.path().join("data"),
            rules = dir.path().join("sql"),
        );
        let config_path = dir.path().join("weir.toml");
        std::fs::File::create(&config_path).and_then(|mut f| f.write_all(config.as_bytes())).expect("write config");
        Weir::spawn(dir, &config_path, env, true)
    }

    /// Runs `weir serve --config <path>` with extra environment variables; the config must bind
    /// both listeners (an ephemeral port is fine).
    /// `with_api`: wait for the API listener too.
    pub fn spawn(
        dir: tempfile::TempDir,
        config_path: &std::path::Path,
        env: &[(&str, String)],
        with_api: bool,
    ) -> Weir {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--config"])
            .arg(config_path)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("WEIR_LOG", "info,weir_hub=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(line.clone());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let (mut tcp, mut ws, mut api) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tcp.is_none() || ws.is_none() || (with_api && api.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("weir did not start; log:\n{}", log.lock().unwrap())
            });
            let addr: SocketAddr = line
                .split("addr=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .expect("listening line with addr");
            if line.contains("listener=\"tcp\"") {
                tcp = Some(addr);
            } else if line.contains("listener=\"ws\"") {
                ws = Some(addr);
            } else if line.contains("listener=\"api\"") {
                api = Some(addr);
            }
        }
        Weir { child, tcp: tcp.unwrap(), ws: ws.unwrap(), api, dir, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) until one line of the log holds every one of `needles`. The log is read
    /// from the broker's stderr by another thread, so a line written just now may not be there yet.
    pub fn log_has(&self, needles: &[&str]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().lines().any(|line| needles.iter().all(|n| line.contains(n))) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of the listener `name` (`ssl`, `wss`), from its `listening` line.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        let tag = format!("listener=\"{name}\"");
        assert!(self.log_has(&["listening", &tag]), "no {name} listener; log:\n{}", self.log());
        let log = self.log();
        let line = log.lines().find(|l| l.contains("listening") && l.contains(&tag)).expect("the line");
        line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse().ok()).expect("addr")
    }

    /// Whether the process is still running (it must never die of bad input).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the broker to stop (SIGTERM), as an operator or a service manager would.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; returns whether it did, successfully.
    pub fn exited_cleanly_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn port(&self) -> String {
        self.tcp.port().to_string()
    }

    /// How many messages rule `id` has passed (its `passed` metric).
    #[allow(dead_code)] // not every test binary has rules
    pub async fn rule_passed(&self, id: &str) -> u64 {
        let (_, body) = http::get(self.api.expect("API"), &format!("/api/v5/rules/{id}/metrics")).await;
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["metrics"]["passed"].as_u64().unwrap_or(0)
    }

    /// Kills the process with SIGKILL, as a crash would, and keeps its directory for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// Starts again on the directory of a killed instance, with its `weir.toml`.
    pub fn restart(dir: tempfile::TempDir) -> Weir {
        let config = dir.path().join("weir.toml");
        Weir::spawn(dir, &config, &[], true)
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command with a time limit and returns its stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command, limit: Duration) -> String {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PostgreSQL that `scripts/test.sh` starts for the tests.
pub fn postgres_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .expect("TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
}

/// The result of one query with `psql` against `url`: rows as lines, columns split by `|`.
pub fn psql_rows(url: &str, sql: &str) -> String {
    let out = Command::new("psql").args([url, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("psql runs");
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `url` with its host and port replaced by `addr` (to go through a [`proxy::Proxy`]).
pub fn with_addr(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("url with scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{user}{addr}/{path}")
}

/// The host and port of `url`.
pub fn addr_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("url with scheme").1;
    let authority = rest.split('/').next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hostport.parse().expect("host:port in the url")
}

/// Runs SQL statements with `psql` against `url`, stopping at the first error.
pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql (Debian package postgresql-client) runs");
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Publishes `n` QoS 1 messages with rumqttc as client `id` and waits for every PUBACK.
/// `message(i)` gives the topic and payload of message `i`.
pub async fn publish_qos1(
    addr: SocketAddr,
    id: &str,
    n: usize,
    message: impl Fn(usize) -> (String, String) + Send + 'static,
) {
    publish_qos1_counted(addr, id.to_string(), n, message, Arc::default()).await;
}

/// [`publish_qos1`], counting the PUBACKs in `acked` as they come.
pub async fn publish_qos1_counted(
    addr: SocketAddr,
    id: String,
    n: usize,
    message: impl Fn(usize) -> (String, String) + Send + 'static,
    acked: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut opts = rumqttc::MqttOptions::new(&id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(60));
    opts.set_inflight(100);
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 200);
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let (topic, payload) = message(i);
            client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload).await.expect("queue publish");
        }
        client
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done = acked.load(std::sync::atomic::Ordering::Relaxed);
        if done >= n {
            break;
        }
        let event = tokio::time::timeout_at(deadline, events.poll()).await;
        match event {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => {
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("publisher {id}: {e} after {done} acks"),
            Err(_) => panic!("publisher {id}: only {done} of {n} PUBACKs within 120 s"),
        }
    }
    let client = sender.await.expect("sender");
    let _ = client.disconnect().await;
}

/// A rumqttc subscriber to `filter` (QoS 1) on `addr`, ready when this returns; collect with
/// [`Subscriber::collect`].
pub struct Subscriber {
    events: rumqttc::EventLoop,
    _client: rumqttc::AsyncClient,
}

impl Subscriber {
    pub async fn start(addr: SocketAddr, id: &str, filter: &str) -> Subscriber {
        let (client, mut events) =
            rumqttc::AsyncClient::new(rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port()), 100);
        client.subscribe(filter, rumqttc::QoS::AtLeastOnce).await.expect("subscribe");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("subscriber {id}: no SUBACK: {other:?}"),
            }
        }
        Subscriber { events, _client: client }
    }

    /// The messages (topic, payload) that arrive within `window`, stopping early after `max`.
    pub async fn collect(&mut self, max: usize, window: Duration) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while out.len() < max {
            match tokio::time::timeout_at(deadline, self.events.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                    out.push((p.topic.clone(), String::from_utf8_lossy(&p.payload).into_owned()))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("subscriber: {e}"),
                Err(_) => break,
            }
        }
        out
    }
}
