//! Rules writing into real destinations through their durable buffers: the default SQLite
//! sink, PostgreSQL through a proxy the test cuts and restores, crashes and full buffers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::http::get;
use common::proxy::Proxy;
use common::sinks::{count, sink, until};
use common::{addr_of, postgres_url, psql, psql_rows, publish_qos1, run, with_addr, Weir};

/// Bytes of the files under `dir`.
fn disk_use(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
}

#[tokio::test]
async fn the_shipped_rules_write_telemetry_into_sqlite() {
    let shipped: Vec<(String, String)> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            if p.extension()? != "sql" {
                return None;
            }
            Some((p.file_name()?.to_string_lossy().into_owned(), std::fs::read_to_string(&p).ok()?))
        })
        .collect();
    let rules: Vec<(&str, &str)> = shipped.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let weir = Weir::start_with_rules("", &rules);
    for (id, temp) in [("dev-1", 21.5), ("dev-2", 35.0)] {
        run(
            Command::new("mosquitto_pub")
                .args(["-p", &weir.port(), "-i", id, "-q", "1", "-t", &format!("sensors/{id}")])
                .args(["-m", &format!(r#"{{"temp": {temp}}}"#)]),
            Duration::from_secs(10),
        );
    }
    let db = weir.dir.path().join("data").join("weir.db");
    let rows = until("two rows in telemetry", &weir, async || {
        let out = run(
            Command::new("sqlite3").arg(&db).arg("SELECT clientid, topic, payload FROM telemetry ORDER BY id"),
            Duration::from_secs(10),
        );
        (out.lines().count() == 2).then_some(out)
    })
    .await;
    assert_eq!(rows, "dev-1|sensors/dev-1|{\"temp\": 21.5}\ndev-2|sensors/dev-2|{\"temp\": 35}\n");
    let s = sink(&weir, "weir_db").await;
    assert_eq!((s["type"].as_str(), s["status"].as_str()), (Some("sqlite"), Some("connected")));
    assert_eq!(s["metrics"]["success"], 2);
}

/// PostgreSQL is cut off while 1,000 QoS 1 messages flow, then restored: every row arrives,
/// except the one the server refuses (a type error), which is counted and dead-lettered into
/// SQLite; a payload crafted as SQL injection lands as data.
#[tokio::test]
async fn postgres_outage_loses_nothing_and_refuses_only_the_bad_row() {
    let url = postgres_url();
    psql(&url, "DROP TABLE IF EXISTS sink_outage; CREATE TABLE sink_outage (id serial PRIMARY KEY, seq integer, temp double precision, note text)");
    let proxy = Proxy::start(addr_of(&url)).await;
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[sinks.pg]
type = "postgres"
url = "{pg}"
table = "sink_outage"
dead_letter = "rejects"
batch_size = 100
max_retry_backoff_ms = 500

[sinks.rejects]
type = "sqlite"
url = "sqlite:{rejects}"
table = "rejects"
init_sql = ["CREATE TABLE IF NOT EXISTS rejects (sink TEXT, reason TEXT, row TEXT, timestamp INTEGER)"]
"#,
        pg = with_addr(&url, proxy.addr),
        rejects = dir.path().join("rejects.db").display(),
    );
    let rule = r#"INSERT INTO pg SELECT payload.seq AS seq, payload.temp AS temp, payload.note AS note FROM "r/#""#;
    let weir = Weir::start_with_rules(&config, &[("pg.sql", rule)]);
    const INJECTION: &str = "x'); DROP TABLE sink_outage; --";
    publish_qos1(weir.tcp, "outage", 1000, |i| {
        let payload = match i {
            500 => serde_json::json!({"seq": i, "temp": "hot"}),
            7 => serde_json::json!({"seq": i, "temp": 1.5, "note": INJECTION}),
            _ => serde_json::json!({"seq": i, "temp": i as f64 / 10.0}),
        };
        (format!("r/{}", i % 7), payload.to_string())
    })
    .await;
    let down = until("the sink to hold the rows", &weir, async || {
        let s = sink(&weir, "pg").await;
        (s["metrics"]["matched"] == 1000).then_some(s)
    })
    .await;
    assert_eq!(down["status"], "disconnected", "{down}");
    assert_eq!(down["metrics"]["success"], 0);
    proxy.restore();
    until("999 rows in PostgreSQL", &weir, async || (count(&url, "sink_outage") >= 999).then_some(())).await;
    let distinct =
        psql_rows(&url, "SELECT count(DISTINCT seq), min(seq), max(seq), bool_or(seq = 500) FROM sink_outage");
    assert_eq!(distinct.trim(), "999|0|999|f");
    assert_eq!(psql_rows(&url, "SELECT note FROM sink_outage WHERE seq = 7").trim(), INJECTION);
    let s = until("the counters to settle", &weir, async || {
        let s = sink(&weir, "pg").await;
        (s["metrics"]["queuing"] == 0 && s["metrics"]["inflight"] == 0).then_some(s)
    })
    .await;
    let m = &s["metrics"];
    assert_eq!(s["status"], "connected");
    assert_eq!((m["failed"].as_u64(), m["dropped"].as_u64()), (Some(1), Some(0)), "{s}");
    assert_eq!(m["matched"], m["success"].as_u64().unwrap() + 1, "{s}");
    assert!(m["retried"].as_u64().unwrap() > 0, "{s}");
    let rejects = dir.path().join("rejects.db");
    let letter = until("the dead letter", &weir, async || {
        let out = run(
            Command::new("sqlite3").arg(&rejects).arg("SELECT sink, reason, row FROM rejects"),
            Duration::from_secs(10),
        );
        (!out.is_empty()).then_some(out)
    })
    .await;
    assert!(letter.starts_with("pg|field `temp` = \"hot\" does not fit column `temp` (double precision) of `sink_outage`: invalid input syntax"), "{letter}");
    assert!(letter.contains(r#""seq":500"#) && letter.contains(r#""temp":"hot""#), "{letter}");
    let (_, text) = get(weir.api.unwrap(), "/api/v5/prometheus/stats").await;
    assert!(text.contains("emqx_action_failed{id=\"postgres:pg\"} 1"), "{text}");
}

/// Rows buffered while PostgreSQL is down survive `kill -9`: after a restart they arrive.
#[tokio::test]
async fn rows_buffered_before_a_kill_9_are_delivered_after_restart() {
    let url = postgres_url();
    psql(&url, "DROP TABLE IF EXISTS sink_crash; CREATE TABLE sink_crash (seq integer)");
    let proxy = Proxy::start(addr_of(&url)).await;
    proxy.cut();
    let config =
        format!("[sinks.pg]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"sink_crash\"\n", with_addr(&url, proxy.addr));
    let rule = r#"INSERT INTO pg SELECT payload.seq AS seq FROM "crash/#""#;
    let weir = Weir::start_with_rules(&config, &[("pg.sql", rule)]);
    publish_qos1(weir.tcp, "crash", 300, |i| ("crash/1".into(), format!(r#"{{"seq": {i}}}"#))).await;
    let s = until("300 rows buffered", &weir, async || {
        let s = sink(&weir, "pg").await;
        (s["metrics"]["matched"] == 300).then_some(s)
    })
    .await;
    assert_eq!(s["metrics"]["queuing"].as_u64().unwrap() + s["metrics"]["inflight"].as_u64().unwrap(), 300, "{s}");
    let dir = weir.kill9();
    assert_eq!(count(&url, "sink_crash"), 0);
    proxy.restore();
    let weir = Weir::restart(dir);
    until("the buffered rows", &weir, async || (count(&url, "sink_crash") >= 300).then_some(())).await;
    assert_eq!(psql_rows(&url, "SELECT count(DISTINCT seq) FROM sink_crash").trim(), "300");
    assert!(weir.log_has(&["sink buffer holds rows from a previous run", "rows=300"]), "{}", weir.log());
}

/// Starts Weir with one PostgreSQL sink `pg` (through `proxy`, cut) into a fresh `table`, and
/// publishes 3,000 rows of about 250 bytes: more than five times the buffer's bound.
async fn fill(table: &str, proxy: &Proxy, delivery: &str) -> Weir {
    let url = postgres_url();
    psql(&url, &format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (seq integer, pad text)"));
    proxy.cut();
    let config = format!(
        "[sinks.pg]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"{table}\"\nmax_retry_backoff_ms = 300\n{delivery}\n",
        with_addr(&url, proxy.addr)
    );
    let rule = r#"INSERT INTO pg SELECT payload.seq AS seq, payload.pad AS pad FROM "full/#""#;
    let weir = Weir::start_with_rules(&config, &[("pg.sql", rule)]);
    let pad = "p".repeat(220);
    publish_qos1(weir.tcp, "full", 3000, move |i| ("full/1".into(), format!(r#"{{"seq": {i}, "pad": "{pad}"}}"#)))
        .await;
    weir
}

const BOUND: u64 = 128 * 1024;

/// With the destination down, `drop_oldest` keeps the buffer to its bound on disk by dropping
/// the oldest rows, counted; the newest arrive once it is back.
#[tokio::test]
async fn a_full_buffer_drops_the_oldest_within_its_bound() {
    let url = postgres_url();
    let proxy = Proxy::start(addr_of(&url)).await;
    // Small batches: the batch probing the destination holds its rows in memory, out of reach of
    // `drop_oldest`, and PostgreSQL's default batch could hold every row of the test.
    let delivery = format!("batch_size = 100\nmax_buffer_bytes = {BOUND}\nbuffer_full = \"drop_oldest\"");
    let weir = fill("sink_full_drop", &proxy, &delivery).await;
    let s = until("3,000 rows handed to the sink", &weir, async || {
        let s = sink(&weir, "pg").await;
        (s["metrics"]["matched"] == 3000).then_some(s)
    })
    .await;
    let m = &s["metrics"];
    assert!(m["dropped.queue_full"].as_u64().unwrap() > 1000, "{s}");
    let accounted =
        ["success", "failed", "inflight", "queuing", "dropped"].map(|k| m[k].as_u64().unwrap()).iter().sum::<u64>();
    assert_eq!(m["matched"], accounted, "{s}");
    let used = disk_use(&weir.dir.path().join("data/sinks/pg"));
    assert!(used <= BOUND + 64, "{used} bytes on disk for a bound of {BOUND}");
    proxy.restore();
    let s = until("the kept rows", &weir, async || {
        let s = sink(&weir, "pg").await;
        (s["metrics"]["queuing"] == 0 && s["metrics"]["inflight"] == 0).then_some(s)
    })
    .await;
    let (success, dropped) =
        (s["metrics"]["success"].as_u64().unwrap(), s["metrics"]["dropped.queue_full"].as_u64().unwrap());
    assert_eq!(success + dropped, 3000, "{s}");
    assert_eq!(count(&url, "sink_full_drop"), success);
    assert_eq!(psql_rows(&url, "SELECT max(seq) FROM sink_full_drop").trim(), "2999", "the newest rows are kept");
}

/// With the destination down, `block` keeps the buffer to its bound by holding the rules back
/// (and, past the rule engine's queue, the publishers): once it is back, every row arrives.
#[tokio::test]
async fn a_full_blocking_buffer_holds_the_rules_back_and_loses_nothing() {
    let url = postgres_url();
    let proxy = Proxy::start(addr_of(&url)).await;
    let weir = fill("sink_full_block", &proxy, &format!("max_buffer_bytes = {BOUND}\nbuffer_full = \"block\"")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = sink(&weir, "pg").await;
    assert!(s["metrics"]["matched"].as_u64().unwrap() < 1000, "{s}");
    let used = disk_use(&weir.dir.path().join("data/sinks/pg"));
    assert!(used <= BOUND + 64, "{used} bytes on disk for a bound of {BOUND}");
    proxy.restore();
    until("every row", &weir, async || (count(&url, "sink_full_block") >= 3000).then_some(())).await;
    assert_eq!(psql_rows(&url, "SELECT count(DISTINCT seq) FROM sink_full_block").trim(), "3000");
    assert!(weir.log_has(&["sink `pg` is full"]), "{}", weir.log());
}

/// An HTTP endpoint that first answers 503 (with Retry-After) and 429, then 200: every row
/// arrives, in JSON bodies that stay valid whatever the payload holds; the rows it refuses with
/// 400 are counted as failed.
#[tokio::test]
async fn http_sink_retries_busy_answers_and_renders_valid_json() {
    let server = common::http_server::Server::start(|n, request| match n {
        0 | 1 => (503, vec![("Retry-After", "1".to_string())]),
        2 => (429, vec![]),
        _ if request.path.ends_with("/dev-bad") => (400, vec![]),
        _ => (200, vec![]),
    })
    .await;
    let config = format!(
        r#"
[sinks.hook]
type = "http"
url = "http://{}/ingest/${{clientid}}"
headers = {{ "x-topic" = "${{topic}}" }}
body = '{{"device": "${{clientid}}", "temp": ${{payload.temp}}, "note": "${{payload.note}}"}}'
batch_size = 10
max_retry_backoff_ms = 200
"#,
        server.addr
    );
    let weir = Weir::start_with_rules(&config, &[("hook.sql", r#"INSERT INTO hook SELECT * FROM "sensors/#""#)]);
    const NOTE: &str = "he said \"hi\"\n\\ }, {";
    publish_qos1(weir.tcp, "dev-1", 50, |i| {
        ("sensors/dev-1".into(), serde_json::json!({"temp": i, "note": NOTE}).to_string())
    })
    .await;
    run(
        Command::new("mosquitto_pub").args([
            "-p",
            &weir.port(),
            "-i",
            "dev-bad",
            "-q",
            "1",
            "-t",
            "sensors/x",
            "-m",
            r#"{"temp": 1}"#,
        ]),
        Duration::from_secs(10),
    );
    let s = until("the rows to be written", &weir, async || {
        let s = sink(&weir, "hook").await;
        let m = &s["metrics"];
        (m["matched"] == 51 && m["queuing"] == 0 && m["inflight"] == 0).then_some(s)
    })
    .await;
    assert_eq!((s["metrics"]["failed"].as_u64(), s["status"].as_str()), (Some(1), Some("connected")), "{s}");
    assert!(s["metrics"]["retried"].as_u64().unwrap() >= 3, "{s}");
    let mut temps = std::collections::BTreeSet::new();
    for request in server.answered(200) {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/ingest/dev-1"));
        assert_eq!(request.header("x-topic"), Some("sensors/dev-1"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let rows: Vec<serde_json::Value> = serde_json::from_str(&request.body).expect("a JSON array body");
        for row in rows {
            assert_eq!((row["device"].as_str(), row["note"].as_str()), (Some("dev-1"), Some(NOTE)));
            temps.insert(row["temp"].as_u64().unwrap());
        }
    }
    assert_eq!(temps, (0..50).collect());
    assert!(!server.answered(400).is_empty());
}

/// A rule republishes into this broker: subscribers get the rendered message, and the rule
/// does not see its own output again, even when it matches its FROM.
#[tokio::test]
async fn mqtt_sink_republishes_without_looping() {
    let config = r#"
[sinks.alerts]
type = "mqtt"
topic = "alerts/${clientid}"
qos = 1
payload = '{"device": "${clientid}", "temp": ${temp}}'

[sinks.echo]
type = "mqtt"
topic = "loop/again/${topic}"
"#;
    let rules = [
        (
            "alerts.sql",
            r#"INSERT INTO alerts SELECT clientid, payload.temp AS temp FROM "sensors/#" WHERE payload.temp > 30"#,
        ),
        ("echo.sql", r#"INSERT INTO echo SELECT topic FROM "loop/#""#),
    ];
    let weir = Weir::start_with_rules(config, &rules);
    let mut alerts = common::Subscriber::start(weir.tcp, "alert-sub", "alerts/#").await;
    let mut looped = common::Subscriber::start(weir.tcp, "loop-sub", "loop/#").await;
    publish_qos1(weir.tcp, "dev-7", 4, |i| ("sensors/dev-7".into(), format!(r#"{{"temp": {}}}"#, 29 + i))).await;
    publish_qos1(weir.tcp, "looper", 1, |_| ("loop/x".into(), "{}".into())).await;
    let mut got = alerts.collect(2, Duration::from_secs(10)).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alerts/dev-7".to_string(), r#"{"device": "dev-7", "temp": 31}"#.to_string()),
            ("alerts/dev-7".to_string(), r#"{"device": "dev-7", "temp": 32}"#.to_string())
        ]
    );
    let seen = looped.collect(10, Duration::from_secs(2)).await;
    let topics: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["loop/x", "loop/again/loop/x"]);
    assert_eq!(sink(&weir, "echo").await["metrics"]["success"], 1);
}

/// A bridge to a second broker, cut off while 200 QoS 1 messages flow and then restored: every
/// message reaches the second broker's subscriber.
#[tokio::test]
async fn mqtt_bridge_delivers_to_another_broker_after_an_outage() {
    let remote = Weir::start();
    let proxy = Proxy::start(remote.tcp).await;
    let mut subscriber = common::Subscriber::start(remote.tcp, "far-sub", "fwd/#").await;
    proxy.cut();
    let config = format!(
        "[sinks.bridge]\ntype = \"mqtt\"\nserver = \"{}\"\ntopic = \"fwd/${{topic}}\"\nqos = 1\npayload = \"${{payload}}\"\nmax_retry_backoff_ms = 300\n",
        proxy.addr
    );
    let weir =
        Weir::start_with_rules(&config, &[("bridge.sql", r#"INSERT INTO bridge SELECT topic, payload FROM "site/#""#)]);
    publish_qos1(weir.tcp, "site-pub", 200, |i| ("site/1".into(), format!("m{i}"))).await;
    until("the bridge to be down", &weir, async || {
        (sink(&weir, "bridge").await["status"] == "disconnected").then_some(())
    })
    .await;
    proxy.restore();
    let mut payloads = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while payloads.len() < 200 && tokio::time::Instant::now() < deadline {
        for (topic, payload) in subscriber.collect(200, Duration::from_secs(2)).await {
            assert_eq!(topic, "fwd/site/1");
            payloads.insert(payload);
        }
    }
    assert_eq!(payloads, (0..200).map(|i| format!("m{i}")).collect());
}

/// Reads every record of every partition of `topic` (assigned, not joined: tansu is slow at
/// group joins) until `want` distinct `seq` values are seen or 60 s pass; returns the records'
/// values, keys and `x-topic` headers.
fn read_kafka(
    addr: std::net::SocketAddr,
    topic: &str,
    want: usize,
) -> Vec<(serde_json::Value, Option<String>, Option<String>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("group.id", "weir-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut partitions = rdkafka::TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning).expect("partition");
    }
    assert!(partitions.count() > 0, "topic {topic} has no partitions");
    consumer.assign(&partitions).expect("assign");
    let mut out = Vec::new();
    let mut seqs = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seqs.len() < want && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else { continue };
        let value: serde_json::Value = serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON value");
        seqs.insert(value["seq"].as_u64());
        let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let header = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "x-topic"))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        out.push((value, key, header));
    }
    out
}

/// The Kafka broker's process is stopped (SIGSTOP) while 10,000 QoS 1 messages flow through a
/// rule, and started again (SIGCONT): every message arrives. Duplicates are allowed (at least
/// once) and counted. The first 1,000 are confirmed before the stop, the other 9,000 are on
/// their way when it comes (waiting for "some rows" while all 10,000 flowed let a fast run
/// deliver them all before the stop).
#[tokio::test]
async fn kafka_broker_stopped_mid_flow_loses_nothing() {
    let tansu = common::tansu::Tansu::start();
    let config = format!(
        r#"
[sinks.k]
type = "kafka"
brokers = "{}"
topic = "weir-outage"
key = "${{clientid}}"
headers = {{ "x-topic" = "${{topic}}" }}
compression = "lz4"
max_retry_backoff_ms = 500
"#,
        tansu.addr
    );
    let rule = r#"INSERT INTO k SELECT payload.seq AS seq, clientid, topic FROM "k/#""#;
    let weir = Weir::start_with_rules(&config, &[("k.sql", rule)]);
    let addr = weir.tcp;
    let message = |i: usize| (format!("k/{}", i % 10), format!(r#"{{"seq": {i}}}"#));
    publish_qos1(addr, "kpub", 1_000, message).await;
    until("the first rows to reach Kafka", &weir, async || {
        (sink(&weir, "k").await["metrics"]["success"].as_u64() >= Some(1_000)).then_some(())
    })
    .await;
    let publisher = tokio::spawn(publish_qos1(addr, "kpub", 9_000, move |i| message(1_000 + i)));
    tansu.pause();
    let paused = sink(&weir, "k").await["metrics"]["success"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = sink(&weir, "k").await;
    tansu.resume();
    publisher.await.expect("publisher");
    assert!(during["metrics"]["success"].as_u64().unwrap() < 10_000, "{during}");
    assert!(during["metrics"]["success"].as_u64().unwrap() >= paused, "{during}");
    until("every row to be confirmed", &weir, async || {
        (sink(&weir, "k").await["metrics"]["success"].as_u64() >= Some(10_000)).then_some(())
    })
    .await;
    let addr = tansu.addr;
    let records = tokio::task::spawn_blocking(move || read_kafka(addr, "weir-outage", 10_000)).await.unwrap();
    let seqs: std::collections::BTreeSet<u64> = records.iter().filter_map(|(v, _, _)| v["seq"].as_u64()).collect();
    assert_eq!(
        seqs.len(),
        10_000,
        "missing: {:?}",
        (0..10_000).filter(|s| !seqs.contains(s)).take(10).collect::<Vec<_>>()
    );
    eprintln!("kafka outage: {} records for 10000 messages ({} duplicates)", records.len(), records.len() - 10_000);
    let (value, key, header) = &records[0];
    assert_eq!(key.as_deref(), Some("kpub"));
    assert_eq!(header.as_deref(), value["topic"].as_str());
    let s = sink(&weir, "k").await;
    assert_eq!((s["metrics"]["failed"].as_u64(), s["metrics"]["dropped"].as_u64()), (Some(0), Some(0)), "{s}");
}

/// A URL rendered from the row that does not parse is the row's fault: the row goes to the dead
/// letter at once, counted as failed, and is never retried; the next row is delivered.
#[tokio::test]
async fn http_sink_refuses_a_url_that_does_not_parse() {
    let server = common::http_server::Server::start(|_, _| (200, vec![])).await;
    let config = format!(
        r#"
[sinks.hook]
type = "http"
url = "http://${{payload.host}}/in"
dead_letter = "letters"
[sinks.letters]
type = "http"
url = "http://{}/letters"
"#,
        server.addr
    );
    let weir = Weir::start_with_rules(&config, &[("hook.sql", r#"INSERT INTO hook SELECT payload FROM "hook/#""#)]);
    let addr = server.addr.to_string();
    publish_qos1(weir.tcp, "hooker", 2, move |i| {
        let host = if i == 0 { "[not a host".to_string() } else { addr.clone() };
        ("hook/1".into(), serde_json::json!({ "host": host }).to_string())
    })
    .await;
    let s = until("both rows settled", &weir, async || {
        let s = sink(&weir, "hook").await;
        (s["metrics"]["success"] == 1 && s["metrics"]["failed"] == 1).then_some(s)
    })
    .await;
    assert_eq!(s["metrics"]["retried"], 0, "{s}");
    // The dead letter's own health checks come as HEAD requests.
    let letter = until("the dead letter", &weir, async || {
        server.answered(200).into_iter().find(|r| r.path == "/letters" && r.method == "POST")
    })
    .await;
    let letter: serde_json::Value = serde_json::from_str(&letter.body).expect("JSON");
    let letter = if letter.is_array() { letter[0].clone() } else { letter };
    assert_eq!(letter["sink"], "hook", "{letter}");
    assert!(letter["row"]["payload"].as_str().is_some_and(|p| p.contains("[not a host")), "{letter}");
    assert!(letter["reason"].as_str().is_some_and(|r| r.contains("invalid")), "{letter}");
}
