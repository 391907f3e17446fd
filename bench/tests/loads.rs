//! The load tool against a broker started in this process: its clients complete every QoS
//! level's exchange, and its help teaches.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A Weir broker on an ephemeral loopback port, with no rules, WebSocket or API.
async fn broker() -> (weir_hub::Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "data_dir = {:?}\nrules_dir = {:?}\n[listeners.tcp]\nbind = \"127.0.0.1:0\"\n[listeners.ws]\nenable = false\n[api]\nenable = false\n",
        dir.path().join("data"),
        dir.path().join("sql"),
    );
    let config = weir_hub::Config::from_toml_with_env(&config, "test", std::iter::empty()).expect("config");
    (weir_hub::Server::start(config).await.expect("broker starts"), dir)
}

/// Runs `weir-bench` with `args` for at most `limit`; returns its stdout.
fn bench(args: &[String], limit: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir-bench");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    String::from_utf8_lossy(&child.wait_with_output().expect("output").stdout).into_owned()
}

/// Its publishers and subscribers complete every QoS level's exchange, in 3.1.1 and 5.0, with
/// windows fuller than one message (QoS 2 once stalled there: the PUBRELs and PUBCOMPs
/// answering the broker waited for a publish to be flushed), and the publishers report how long
/// their acknowledgements took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_complete_every_qos() {
    let (server, _dir) = broker().await;
    let port = server.tcp_addr.expect("tcp listener").port().to_string();
    for (version, qos) in [("4", "1"), ("4", "2"), ("5", "1"), ("5", "2")] {
        let args = |load: &[&str]| -> Vec<String> {
            load.iter().chain(&["-p", port.as_str(), "-V", version, "-q", qos]).map(|s| s.to_string()).collect()
        };
        let sub = args(&["sub", "--prefix", "s-", "-t", "load/#", "-d", "20", "--limit", "2000"]);
        let sub = std::thread::spawn(move || bench(&sub, Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let publ = args(&["pub", "-c", "2", "-t", "load/%i", "--inflight", "16", "--limit", "1000", "-d", "20"]);
        let sent = tokio::task::spawn_blocking(move || bench(&publ, Duration::from_secs(30))).await.unwrap();
        assert!(sent.contains("summary: sent=2000 "), "v{version} QoS {qos}: {sent}");
        assert!(sent.contains(" ack_p99_ms="), "the acknowledgements' latency: {sent}");
        let received = tokio::task::spawn_blocking(move || sub.join().unwrap()).await.unwrap();
        assert!(received.contains("summary: received=2000 "), "v{version} QoS {qos}: {received}");
    }
    server.shutdown().await;
}

#[test]
fn help_teaches() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir-bench")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["conn", "sub", "pub", "kafka", "summary:"] {
        assert!(text.contains(word), "--help does not mention {word}:\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_weir-bench")).args(["pub", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("%i") && text.contains("--rate"), "{text}");
}
