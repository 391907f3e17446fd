//! Authentication, end to end: the built-in database (bootstrap CSV, bcrypt, `weir ctl users`),
//! flapping bans, JWT (HMAC with an expiry mid-test, RSA from a PEM and from a JWKS file), the
//! HTTP authenticator against a real HTTP server, and the PostgreSQL authenticator against the
//! test PostgreSQL. Failed logins get CONNACK 0x86 (v5) and 0x04 (v3, seen with mosquitto_pub).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::http::API_KEY;
use common::http_server::Server as HttpServer;
use common::raw::{connect_packet, publish, Frame, Packet, Raw};
use common::{postgres_url, psql, Weir};
use ntex_bytes::{ByteString, Bytes};
use ntex_mqtt::v5::codec as v5;
use ntex_mqtt::QoS;

/// A CONNECT with credentials.
fn login(client_id: &str, username: &str, password: &str) -> v5::Connect {
    v5::Connect {
        username: Some(ByteString::from(username.to_string())),
        password: Some(Bytes::copy_from_slice(password.as_bytes())),
        ..connect_packet(client_id)
    }
}

async fn connack(addr: SocketAddr, v5: bool, c: v5::Connect) -> v5::ConnectAckReason {
    Raw::connect_as(addr, v5, c).await.1.reason_code
}

/// A built-in database seeded from a CSV in `dir`: alice (superuser) and bob, bcrypt cost 4.
fn builtin(dir: &Path) -> String {
    let csv = dir.join("users.csv");
    std::fs::write(&csv, "user_id,password,is_superuser\nalice,wonderland,true\nbob,builder,false\n").unwrap();
    format!(
        "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\n\
         password_hash_algorithm = {{ name = \"bcrypt\", salt_rounds = 4 }}\nbootstrap_file = {csv:?}\n"
    )
}

/// `mosquitto_pub` (MQTT 3.1.1) with `user` and `password`: whether it published, and what it said.
fn mosquitto_pub(weir: &Weir, user: &str, password: &str) -> (bool, String) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &weir.port(), "-V", "mqttv311", "-q", "1", "-t", "t/1", "-m", "x"])
        .args(["-u", user, "-P", password])
        .output()
        .expect("mosquitto_pub");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn built_in_users_log_in_and_wrong_credentials_get_0x86_in_v5_and_0x04_in_v3() {
    let dir = tempfile::tempdir().unwrap();
    let weir = Weir::start_with(&builtin(dir.path()));
    let addr = weir.tcp;
    assert_eq!(connack(addr, true, login("c1", "alice", "wonderland")).await, v5::ConnectAckReason::Success);
    assert_eq!(connack(addr, false, login("c2", "bob", "builder")).await, v5::ConnectAckReason::Success);
    for (user, password) in [("alice", "wrong"), ("nobody", "x"), ("bob", "")] {
        let rc = connack(addr, true, login("c3", user, password)).await;
        assert_eq!(rc, v5::ConnectAckReason::BadUserNameOrPassword, "{user}");
    }
    // No credentials at all: anonymous is off once an authenticator is configured.
    assert_eq!(connack(addr, true, connect_packet("c4")).await, v5::ConnectAckReason::BadUserNameOrPassword);
    let (ok, said) = mosquitto_pub(&weir, "bob", "wrong");
    assert!(!ok && said.to_lowercase().contains("bad user name or password"), "{said}");
    let (ok, said) = mosquitto_pub(&weir, "bob", "builder");
    assert!(ok, "{said}");
    assert!(weir.log_has(&["CONNECT refused: not authenticated", "wrong password"]));
    let (_, metrics) = common::http::get(weir.api.unwrap(), "/api/v5/prometheus/stats").await;
    assert!(metrics.contains("emqx_authentication_failure 5"), "{metrics}");
}

fn ctl(weir: &Weir, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["ctl", "--api", &format!("http://{}", weir.api.unwrap()), "--key", API_KEY, "users"])
        .args(args)
        .output()
        .expect("weir ctl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn weir_ctl_adds_lists_and_deletes_users_which_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let weir = Weir::start_with(&builtin(dir.path()));
    assert_eq!(ctl(&weir, &["add", "carol", "c4rol", "--superuser"]), (true, "added carol\n".into()));
    let (ok, said) = ctl(&weir, &["add", "carol", "again"]);
    assert!(!ok && said.contains("already exists"), "{said}");
    assert_eq!(ctl(&weir, &["list"]), (true, "alice superuser\nbob\ncarol superuser\n".into()));
    assert_eq!(connack(weir.tcp, true, login("c1", "carol", "c4rol")).await, v5::ConnectAckReason::Success);
    assert_eq!(ctl(&weir, &["delete", "bob"]), (true, "deleted bob\n".into()));
    let weir = Weir::restart(weir.kill9());
    assert_eq!(connack(weir.tcp, true, login("c1", "carol", "c4rol")).await, v5::ConnectAckReason::Success);
    // As in EMQX, the bootstrap file brings back at start the users of it that the store lacks.
    assert_eq!(connack(weir.tcp, true, login("c2", "bob", "builder")).await, v5::ConnectAckReason::Success);
    let (ok, said) = ctl(&weir, &["delete", "nobody"]);
    assert!(!ok && said.contains("does not exist"), "{said}");
}

#[tokio::test]
async fn an_address_whose_logins_keep_failing_is_banned() {
    let dir = tempfile::tempdir().unwrap();
    let extra = builtin(dir.path()) + "[flapping_detect]\nmax_count = 3\nwindow_time = 60\nban_time = 60\n";
    let weir = Weir::start_with(&extra);
    for _ in 0..3 {
        assert_eq!(
            connack(weir.tcp, true, login("c", "bob", "nope")).await,
            v5::ConnectAckReason::BadUserNameOrPassword
        );
    }
    // The right password does not help while the address is banned.
    assert_eq!(connack(weir.tcp, true, login("c", "bob", "builder")).await, v5::ConnectAckReason::Banned);
    assert_eq!(connack(weir.tcp, false, login("c", "bob", "builder")).await, v5::ConnectAckReason::NotAuthorized);
    assert!(weir.log_has(&["address banned"]));
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(b"k3y"))
        .unwrap()
}

#[tokio::test]
async fn a_jwt_lets_its_client_in_until_it_expires_and_carries_its_acl() {
    let extra =
        "[[authentication]]\nmechanism = \"jwt\"\nsecret = \"k3y\"\nverify_claims = { sub = \"${clientid}\" }\n";
    let weir = Weir::start_with(extra);
    let acl = serde_json::json!([{ "permission": "deny", "action": "publish", "topic": "private/#" }]);
    let token = hs256(serde_json::json!({ "sub": "dev-1", "exp": now() + 3, "acl": acl }));
    let (mut raw, ack) = Raw::connect(weir.tcp, login("dev-1", "", &token)).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    raw.publish(publish("private/x", QoS::AtLeastOnce, Some(1)), b"x").await;
    match raw.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => assert_eq!(a.reason_code, v5::PublishAckReason::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    // Another client id than the token's subject is refused.
    assert_eq!(connack(weir.tcp, true, login("dev-2", "", &token)).await, v5::ConnectAckReason::BadUserNameOrPassword);
    // At its expiry the broker closes the connection with 0x87.
    match raw.recv_within(Duration::from_secs(6)).await {
        Ok(Some(Frame::Packet(Packet::Disconnect(d)))) => {
            assert_eq!(d.reason_code, v5::DisconnectReasonCode::NotAuthorized)
        }
        other => panic!("expected DISCONNECT at the token's expiry, got {other:?}"),
    }
    assert_eq!(connack(weir.tcp, true, login("dev-1", "", &token)).await, v5::ConnectAckReason::BadUserNameOrPassword);
}

/// An RSA key made by `openssl` in `dir`: the private and public PEM files.
fn rsa_key(dir: &Path) -> (Vec<u8>, std::path::PathBuf) {
    let key = dir.join("key.pem");
    let public = dir.join("public.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
        && Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .unwrap()
            .success();
    assert!(ok, "openssl made the key");
    (std::fs::read(&key).unwrap(), public)
}

/// The JWKS of the key, with `kid`.
fn jwks(dir: &Path, kid: &str) -> std::path::PathBuf {
    let out =
        Command::new("openssl").args(["rsa", "-noout", "-modulus", "-in"]).arg(dir.join("key.pem")).output().unwrap();
    let modulus = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches("Modulus=").to_string();
    let bytes: Vec<u8> =
        (0..modulus.len()).step_by(2).map(|i| u8::from_str_radix(&modulus[i..i + 2], 16).unwrap()).collect();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let set = serde_json::json!({ "keys": [{ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": n, "e": "AQAB" }] });
    let path = dir.join("jwks.json");
    std::fs::write(&path, set.to_string()).unwrap();
    path
}

#[tokio::test]
async fn rsa_tokens_are_checked_with_a_pem_public_key_and_with_a_jwks_file() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = rsa_key(dir.path());
    let jwks = jwks(dir.path(), "k1");
    let sign = |kid: Option<&str>| {
        let header = jsonwebtoken::Header {
            kid: kid.map(String::from),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256)
        };
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap();
        jsonwebtoken::encode(&header, &serde_json::json!({ "exp": now() + 60 }), &key).unwrap()
    };
    let by_pem =
        format!("[[authentication]]\nmechanism = \"jwt\"\nalgorithm = \"public-key\"\npublic_key = {public:?}\n");
    let weir = Weir::start_with(&by_pem);
    assert_eq!(connack(weir.tcp, true, login("a", "", &sign(None))).await, v5::ConnectAckReason::Success);
    assert_eq!(
        connack(weir.tcp, true, login("a", "", &hs256(serde_json::json!({})))).await,
        v5::ConnectAckReason::BadUserNameOrPassword
    );
    drop(weir);
    let by_jwks = format!("[[authentication]]\nmechanism = \"jwt\"\nuse_jwks = true\njwks_file = {jwks:?}\n");
    let weir = Weir::start_with(&by_jwks);
    assert_eq!(connack(weir.tcp, true, login("a", "", &sign(Some("k1")))).await, v5::ConnectAckReason::Success);
    assert_eq!(
        connack(weir.tcp, true, login("a", "", &sign(Some("k2")))).await,
        v5::ConnectAckReason::BadUserNameOrPassword
    );
}

#[tokio::test]
async fn the_http_authenticator_follows_emqx_s_answers_and_a_service_that_is_down_is_skipped() {
    let service = HttpServer::start_json(|_, r| {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        let answer = match (body["username"].as_str(), body["password"].as_str()) {
            (Some("dave"), Some("good")) => {
                r#"{"result": "allow", "is_superuser": false, "acl": [{"permission": "deny", "action": "publish", "topic": "private/#"}]}"#
            }
            (Some("dave"), _) => r#"{"result": "deny"}"#,
            _ => r#"{"result": "ignore"}"#,
        };
        (200, answer.to_string())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let http = |url: &str| {
        format!(
            "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"http\"\nurl = \"{url}\"\nrequest_timeout = 2\n\
             body = {{ username = \"${{username}}\", password = \"${{password}}\", clientid = \"${{clientid}}\" }}\n"
        )
    };
    let weir = Weir::start_with(&(http(&format!("http://{}/auth", service.addr)) + &builtin(dir.path())));
    let (mut dave, ack) = Raw::connect(weir.tcp, login("c1", "dave", "good")).await;
    assert_eq!(ack.reason_code, v5::ConnectAckReason::Success);
    // The service's answer carried an ACL: it is the client's.
    dave.publish(publish("private/x", QoS::AtLeastOnce, Some(1)), b"x").await;
    match dave.recv().await {
        Some(Frame::Packet(Packet::PublishAck(a))) => assert_eq!(a.reason_code, v5::PublishAckReason::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    drop(dave);
    assert_eq!(connack(weir.tcp, true, login("c1", "dave", "bad")).await, v5::ConnectAckReason::BadUserNameOrPassword);
    // "ignore": the built-in database decides.
    assert_eq!(connack(weir.tcp, true, login("c1", "bob", "builder")).await, v5::ConnectAckReason::Success);
    let seen = service.answered(200);
    assert!(seen.iter().any(|r| r.body.contains("\"clientid\":\"c1\"") && r.method == "POST"), "{seen:?}");
    drop(weir);
    // A service that does not answer is skipped (logged), and the next authenticator decides.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let weir = Weir::start_with(&(http(&format!("http://{closed}/auth")) + &builtin(dir.path())));
    assert_eq!(connack(weir.tcp, true, login("c1", "bob", "builder")).await, v5::ConnectAckReason::Success);
    assert!(weir.log_has(&["authenticator skipped"]));
}

#[tokio::test]
async fn the_postgresql_authenticator_binds_the_client_s_values_as_parameters() {
    let url = postgres_url();
    psql(
        &url,
        "DROP TABLE IF EXISTS authn_users; CREATE TABLE authn_users (username text, password_hash text, salt text, is_superuser boolean);\
         INSERT INTO authn_users VALUES ('erin', encode(sha256('s3cretsalt1'::bytea), 'hex'), 'salt1', false)",
    );
    let extra = format!(
        "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"postgresql\"\nurl = \"{url}\"\n\
         query = \"SELECT password_hash, salt, is_superuser FROM authn_users WHERE username = ${{username}} LIMIT 1\"\n\
         password_hash_algorithm = {{ name = \"sha256\", salt_position = \"suffix\" }}\n"
    );
    let weir = Weir::start_with(&extra);
    assert_eq!(connack(weir.tcp, true, login("c", "erin", "s3cret")).await, v5::ConnectAckReason::Success);
    assert_eq!(connack(weir.tcp, true, login("c", "erin", "s3cre")).await, v5::ConnectAckReason::BadUserNameOrPassword);
    // A username written as SQL is a value, not SQL: no row, refused.
    let injection = "x' OR '1'='1";
    assert_eq!(
        connack(weir.tcp, true, login("c", injection, "s3cret")).await,
        v5::ConnectAckReason::BadUserNameOrPassword
    );
}
