//! TLS from Weir to the systems it writes into, against the real services: PostgreSQL with
//! `sslmode=verify-full` (the test PostgreSQL has TLS on), an HTTPS server that asks for a client
//! certificate (Python's `http.server` with `ssl`), a second Weir as the MQTT bridge's broker,
//! with TLS and a password, and Kafka (tansu) behind a TLS-terminating proxy.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pki::Pki;
use common::raw::{connect_packet, subscribe, Raw};
use common::sinks::{count, sink, until};
use common::tansu::Tansu;
use common::{postgres_url, psql, publish_qos1, tls_proxy, Weir};
use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

#[tokio::test]
async fn postgresql_over_verify_full_delivers_and_a_wrong_ca_does_not() {
    let url = postgres_url();
    let ca = std::env::var("TEST_POSTGRES_CA").expect("TEST_POSTGRES_CA: run the tests with scripts/test.sh");
    let other_ca = Pki::new();
    psql(&url, "DROP TABLE IF EXISTS tls_good, tls_bad; CREATE TABLE tls_good (n text); CREATE TABLE tls_bad (n text)");
    let config = format!(
        "[sinks.good]\ntype = \"postgres\"\nurl = \"{url}?sslmode=verify-full&sslrootcert={ca}\"\ntable = \"tls_good\"\n\
         [sinks.bad]\ntype = \"postgres\"\nurl = \"{url}?sslmode=verify-full&sslrootcert={}\"\ntable = \"tls_bad\"\nmax_retry_backoff_ms = 200\n",
        other_ca.path("ca.pem").display()
    );
    let rules = [
        ("good.sql", r#"INSERT INTO good SELECT payload AS n FROM "pg/#""#),
        ("bad.sql", r#"INSERT INTO bad SELECT payload AS n FROM "pg/#""#),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    publish_qos1(weir.tcp, "pg-pub", 5, |i| ("pg/1".into(), format!("m{i}"))).await;
    until("rows over TLS", &weir, async || (count(&url, "tls_good") == 5).then_some(())).await;
    until("the bad CA to be refused", &weir, async || {
        (sink(&weir, "bad").await["status"] == "disconnected").then_some(())
    })
    .await;
    assert_eq!(count(&url, "tls_bad"), 0);
}

/// An HTTPS server on a free port that requires a client certificate from `pki`'s CA; prints
/// each request's path and body, one per line.
fn https_server(pki: &Pki) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        print(self.path, body, flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.load_verify_locations(sys.argv[3])
ctx.verify_mode = ssl.CERT_REQUIRED
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .args([pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = lines.next().expect("a port").expect("a line").trim().parse().expect("a port number");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, port, rx)
}

#[tokio::test]
async fn the_http_sink_shows_its_client_certificate_to_an_https_server() {
    let pki = Pki::new();
    let (mut server, port, requests) = https_server(&pki);
    let ssl = |with_cert: bool| {
        let cert = if with_cert {
            format!(", certfile = {:?}, keyfile = {:?}", pki.path("client.pem"), pki.path("client.key"))
        } else {
            String::new()
        };
        format!("ssl = {{ cacertfile = {:?}{cert} }}", pki.path("ca.pem"))
    };
    let config = format!(
        "[sinks.good]\ntype = \"http\"\nurl = \"https://127.0.0.1:{port}/good\"\n{}\n\
         [sinks.nocert]\ntype = \"http\"\nurl = \"https://127.0.0.1:{port}/nocert\"\n{}\nmax_retry_backoff_ms = 200\n",
        ssl(true),
        ssl(false)
    );
    let rules = [
        ("good.sql", r#"INSERT INTO good SELECT payload FROM "h/#""#),
        ("nocert.sql", r#"INSERT INTO nocert SELECT payload FROM "h/#""#),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    publish_qos1(weir.tcp, "h-pub", 1, |_| ("h/1".into(), "hello".into())).await;
    let got = requests.recv_timeout(Duration::from_secs(20)).expect("a request over mutual TLS");
    assert!(got.starts_with("/good ") && got.contains("hello"), "{got}");
    until("the sink without a certificate to fail", &weir, async || {
        (sink(&weir, "nocert").await["metrics"]["failed"].as_u64() > Some(0)
            || sink(&weir, "nocert").await["status"] == "disconnected")
            .then_some(())
    })
    .await;
    assert!(requests.recv_timeout(Duration::from_millis(500)).is_err(), "nothing came without a certificate");
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn the_mqtt_bridge_logs_in_over_tls() {
    let pki = Pki::new();
    let users = pki.path("users.csv");
    std::fs::write(&users, "user_id,password,is_superuser\nbridge,s3cret,false\nreader,r,false\n").unwrap();
    let auth = format!(
        "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\nbootstrap_file = {users:?}\n"
    );
    let remote = Weir::start_with(&(pki.listener("") + &auth));
    let mut reader = {
        let c = v5::Connect {
            username: Some(ByteString::from("reader")),
            password: Some(Bytes::from_static(b"r")),
            ..connect_packet("reader")
        };
        let (mut raw, ack) = Raw::connect(remote.tcp, c).await;
        assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
        raw.send(subscribe(1, "fwd/#", QoS::AtLeastOnce)).await;
        raw.recv().await.expect("SUBACK");
        raw
    };
    let config = format!(
        "[sinks.bridge]\ntype = \"mqtt\"\nserver = \"{}\"\ntopic = \"fwd/${{topic}}\"\nqos = 1\npayload = \"${{payload}}\"\n\
         username = \"bridge\"\npassword = \"s3cret\"\nssl = {{ cacertfile = {:?} }}\n",
        remote.listener_addr("ssl"),
        pki.path("ca.pem")
    );
    let weir =
        Weir::start_with_rules(&config, &[("bridge.sql", r#"INSERT INTO bridge SELECT topic, payload FROM "site/#""#)]);
    publish_qos1(weir.tcp, "site-pub", 1, |_| ("site/1".into(), "over tls".into())).await;
    let (p, payload) = reader.recv_publish().await;
    assert_eq!((&*p.topic, &payload[..]), ("fwd/site/1", &b"over tls"[..]));
    assert!(remote.log_has(&["client connected", "username=bridge"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_over_tls_is_acknowledged_and_plain_text_to_a_tls_port_is_not() {
    let pki = Pki::new();
    let listener = tls_proxy::bind().await;
    let tls_addr = listener.local_addr().unwrap();
    let tansu = Tansu::start_advertising(Some(tls_addr));
    tls_proxy::serve(listener, &pki.path("server.pem"), &pki.path("server.key"), tansu.addr);
    let config = format!(
        "[sinks.k]\ntype = \"kafka\"\nbrokers = \"{tls_addr}\"\ntopic = \"tls-rows\"\nssl = {{ cacertfile = {:?} }}\n\
         [sinks.plain]\ntype = \"kafka\"\nbrokers = \"{tls_addr}\"\ntopic = \"tls-rows\"\nmax_retry_backoff_ms = 200\n",
        pki.path("ca.pem")
    );
    let rules = [
        ("k.sql", r#"INSERT INTO k SELECT payload FROM "k/#""#),
        ("plain.sql", r#"INSERT INTO plain SELECT payload FROM "k/#""#),
    ];
    let weir = Weir::start_with_rules(&config, &rules);
    publish_qos1(weir.tcp, "k-pub", 20, |i| ("k/1".into(), format!("m{i}"))).await;
    until("Kafka to acknowledge 20 records over TLS", &weir, async || {
        (sink(&weir, "k").await["metrics"]["success"] == 20).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink(&weir, "plain").await["metrics"]["success"], 0, "plain text to a TLS port");
}
