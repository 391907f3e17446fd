//! MQTT over TLS (`[listeners.ssl]`) with the real tools: `mosquitto_pub`/`mosquitto_sub` with
//! `--cafile`, `--cert` and `--key`, and `openssl s_client` for the protocol versions, against
//! certificates that `openssl` makes for the test.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::{listener_with, Pki};
use common::Weir;

/// The TLS listener's address.
fn ssl_addr(weir: &Weir) -> SocketAddr {
    weir.listener_addr("ssl")
}

/// Runs `cmd` for at most `limit`; returns whether it succeeded, and what it printed.
fn outcome(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `mosquitto_pub` over TLS to `addr`, trusting the test CA, with `args`.
fn mosquitto_pub(pki: &Pki, addr: SocketAddr, args: &[&str]) -> (bool, String) {
    outcome(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-q", "1", "-t", "secure/t"])
            .arg("--cafile")
            .arg(pki.path("ca.pem"))
            .args(args),
        Duration::from_secs(10),
    )
}

/// `mosquitto_sub` over TLS on `secure/#`, trusting `pki`'s CA, until `count` messages (20 s at
/// most); subscribed once this returns.
fn mosquitto_sub(pki: &Pki, addr: SocketAddr, count: u32) -> std::process::Child {
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-q", "1", "-t", "secure/#", "-W", "20"])
        .args(["-C", &count.to_string(), "--cafile"])
        .arg(pki.path("ca.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_millis(700));
    sub
}

fn s_client(addr: SocketAddr, version: &str, ca: &Path) -> (bool, String) {
    outcome(
        Command::new("openssl").args(["s_client", "-connect", &addr.to_string(), version, "-CAfile"]).arg(ca),
        Duration::from_secs(10),
    )
}

#[test]
fn mosquitto_clients_talk_over_tls_1_2_and_1_3_only() {
    let pki = Pki::new();
    let weir = Weir::start_with(&pki.listener(""));
    let addr = ssl_addr(&weir);
    let sub = mosquitto_sub(&pki, addr, 1);
    let (ok, out) = mosquitto_pub(&pki, addr, &["-m", "over tls"]);
    assert!(ok, "{out}");
    let got = sub.wait_with_output().expect("mosquitto_sub ends after one message");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "over tls");
    for (version, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (_, out) = s_client(addr, version, &pki.path("ca.pem"));
        assert!(out.contains(&format!("Protocol  : {name}")) || out.contains(&format!("{name}, Cipher")), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    }
    let (ok, out) = s_client(addr, "-tls1_1", &pki.path("ca.pem"));
    assert!(!ok && out.contains("alert"), "the server refuses TLS 1.1 with an alert: {out}");
    // A client that does not trust the server's CA is refused by its own side.
    let (ok, _) = outcome(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-t", "t", "-m", "x"])
            .arg("--cafile")
            .arg(pki.path("client.pem")),
        Duration::from_secs(10),
    );
    assert!(!ok);
}

#[test]
fn verify_peer_with_fail_if_no_peer_cert_lets_in_only_clients_with_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let extra = format!(
        "ssl_options.cacertfile = {:?}\nssl_options.verify = \"verify_peer\"\nssl_options.fail_if_no_peer_cert = true",
        pki.path("ca.pem")
    );
    let weir = Weir::start_with(&pki.listener(&extra));
    let addr = ssl_addr(&weir);
    let (ok, out) = mosquitto_pub(&pki, addr, &["-m", "no certificate"]);
    assert!(!ok, "refused without a client certificate: {out}");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with_cert = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), "-m", "mine"];
    let (ok, out) = mosquitto_pub(&pki, addr, &with_cert);
    assert!(ok, "{out}\n{}", weir.log());
    // A certificate the CA did not sign is refused even where none is required.
    let (server_cert, server_key) = (pki.path("server.pem"), pki.path("server.key"));
    let self_made = ["--cert", server_cert.to_str().unwrap(), "--key", server_key.to_str().unwrap(), "-m", "x"];
    let (ok, _) = mosquitto_pub(&pki, addr, &self_made);
    assert!(!ok, "the server's certificate is not a client certificate");
}

#[test]
fn mutual_tls_and_a_password_both_have_to_pass() {
    let pki = Pki::new();
    let users = pki.path("users.csv");
    std::fs::write(&users, "user_id,password,is_superuser\nbob,builder,false\n").expect("users");
    let extra = format!(
        "ssl_options.cacertfile = {:?}\nssl_options.verify = \"verify_peer\"\nssl_options.fail_if_no_peer_cert = true\n\
         [[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\nbootstrap_file = {users:?}",
        pki.path("ca.pem")
    );
    let weir = Weir::start_with(&pki.listener(&extra));
    let addr = ssl_addr(&weir);
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let tls = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), "-m", "x"];
    let (ok, out) = mosquitto_pub(&pki, addr, &[&tls[..], &["-u", "bob", "-P", "wrong"]].concat());
    assert!(!ok && out.to_lowercase().contains("bad user name or password"), "{out}");
    let (ok, out) = mosquitto_pub(&pki, addr, &[&tls[..], &["-u", "bob", "-P", "builder"]].concat());
    assert!(ok, "{out}");
    let (ok, _) = mosquitto_pub(&pki, addr, &["-u", "bob", "-P", "builder", "-m", "x"]);
    assert!(!ok, "the right password without a client certificate");
}

#[test]
fn a_certificate_file_that_is_missing_stops_the_start_with_its_key_and_path() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("a directory");
    let config = dir.path().join("weir.toml");
    let text = format!(
        "data_dir = {:?}\nrules_dir = {:?}\n[listeners.tcp]\nbind = \"127.0.0.1:0\"\n[listeners.ws]\nenable = false\n[api]\nenable = false\n[listeners.ssl]\nbind = \"127.0.0.1:0\"\n[listeners.ssl.ssl_options]\ncertfile = \"/nowhere/server.pem\"\nkeyfile = {:?}\n",
        dir.path().join("data"),
        dir.path().join("sql"),
        pki.path("server.key"),
    );
    std::fs::write(&config, text).expect("config");
    let (ok, out) = outcome(
        Command::new(env!("CARGO_BIN_EXE_weir")).args(["serve", "--config"]).arg(&config),
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(out.contains("[listeners.ssl.ssl_options] certfile = /nowhere/server.pem"), "{out}");
}

#[test]
fn new_certificates_are_taken_when_their_files_change_and_open_connections_stay() {
    let (old, new) = (Pki::new(), Pki::new());
    let live = tempfile::tempdir().expect("a directory");
    let (cert, key) = (live.path().join("server.pem"), live.path().join("server.key"));
    let install = |pki: &Pki| {
        std::fs::copy(pki.path("server.key"), &key).expect("key");
        std::fs::copy(pki.path("server.pem"), &cert).expect("cert");
    };
    install(&old);
    let weir = Weir::start_with(&listener_with(&cert, &key, ""));
    let addr = ssl_addr(&weir);
    let sub = mosquitto_sub(&old, addr, 2);
    assert!(mosquitto_pub(&old, addr, &["-m", "before"]).0);
    // The clock's granularity may hide a rewrite within the same instant from the size alone.
    std::thread::sleep(Duration::from_millis(50));
    install(&new);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !weir.log().contains("TLS certificates reloaded") {
        assert!(Instant::now() < deadline, "no reload; log:\n{}", weir.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The files may have been caught half-written (a new key, the old certificate): the
    // next look takes the pair.
    let mut after = mosquitto_pub(&new, addr, &["-m", "after"]);
    while !after.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        after = mosquitto_pub(&new, addr, &["-m", "after"]);
    }
    assert!(after.0, "the new CA's clients get in: {}\n{}", after.1, weir.log());
    assert!(!mosquitto_pub(&old, addr, &["-m", "x"]).0, "the old certificate is gone for new connections");
    let got = sub.wait_with_output().expect("mosquitto_sub ends after two messages");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "before\nafter", "the open connection stayed");
}

#[test]
fn the_client_certificate_names_the_client_where_the_listener_says_so() {
    let pki = Pki::new();
    let extra = format!(
        "ssl_options.cacertfile = {:?}\nssl_options.verify = \"verify_peer\"\npeer_cert_as_clientid = \"cn\"\npeer_cert_as_username = \"dn\"",
        pki.path("ca.pem")
    );
    let weir = Weir::start_with(&pki.listener(&extra));
    let addr = ssl_addr(&weir);
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let args = ["-i", "what-it-says", "-u", "who-it-says", "--cert", cert.to_str().unwrap()];
    let (ok, out) = mosquitto_pub(&pki, addr, &[&args[..], &["--key", key.to_str().unwrap(), "-m", "x"]].concat());
    assert!(ok, "{out}");
    assert!(
        weir.log_has(&["client connected", "client_id=client ", "username=CN=client "]),
        "the certificate's CN is the client id and its DN the username; log:\n{}",
        weir.log()
    );
    assert!(!weir.log().contains("what-it-says"), "{}", weir.log());
}
