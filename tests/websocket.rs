//! MQTT over WebSocket as browsers use it: MQTT.js in headless Chromium talks to a TCP client
//! through the broker.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::pki::Pki;
use common::raw::{publish, subscribe, Frame, Packet, Raw};
use common::Weir;
use ntex_mqtt::QoS;

/// Headless Chromium, killed on drop.
struct Browser {
    child: Child,
    /// A fresh profile per run; removed when the browser is.
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `url` in headless Chromium, with `extra` flags.
fn open_page(url: &str, extra: &[String]) -> Browser {
    let profile = tempfile::tempdir().expect("profile dir");
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium must be installed (scripts/test.sh installs it)");
    Browser { child, _profile: profile }
}

#[tokio::test]
async fn mqtt_js_in_chromium_receives_what_a_tcp_client_publishes() {
    let weir = Weir::start();
    for version in [5, 4] {
        browser_round_trip(&weir, version, &format!("ws://127.0.0.1:{}/mqtt", weir.ws.port()), &[]).await;
    }
}

/// `[listeners.wss]`: the page's MQTT.js connects over `wss://`, trusting the test server's
/// certificate (by its key, as Chromium allows a profile to).
#[tokio::test]
async fn mqtt_js_in_chromium_talks_over_wss() {
    let pki = Pki::new();
    let weir = Weir::start_with(&pki.wss_listener());
    let url = format!("wss://127.0.0.1:{}/mqtt", weir.listener_addr("wss").port());
    let trust = format!("--ignore-certificate-errors-spki-list={}", pki.server_spki_sha256());
    browser_round_trip(&weir, 5, &url, &[trust]).await;
}

/// Opens the page with MQTT.js speaking `version` (4 = 3.1.1, 5) to `broker` (a `ws://` or
/// `wss://` URL), publishes to it from TCP and checks what the page reports having received.
async fn browser_round_trip(weir: &Weir, version: u8, broker: &str, flags: &[String]) {
    let mut tcp = Raw::client(weir.tcp, &format!("tcp-side-{version}")).await;
    tcp.send(subscribe(1, "browser/#", QoS::AtLeastOnce)).await;
    assert!(matches!(tcp.recv().await, Some(Frame::Packet(Packet::SubscribeAck(_)))));

    let page = std::fs::canonicalize("tests/browser/page.html").expect("page");
    let url = format!("file://{}?v={version}&url={broker}", page.display());
    let _browser = open_page(&url, flags);

    // Wait for the page to say it is subscribed (Chromium's start can be slow on a busy machine).
    let mut ready = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !ready && tokio::time::Instant::now() < deadline {
        if let Ok(Some(Frame::Publish(p, body))) = tcp.recv_within(Duration::from_secs(1)).await {
            if let Some(id) = p.packet_id {
                tcp.send(common::raw::puback(id)).await;
            }
            ready = &*p.topic == "browser/ready" && &body[..] == b"subscribed";
        }
    }
    assert!(ready, "the page never connected; broker log:\n{}", weir.log());
    let page_id = format!("client_id=browser-page-v{version} ");
    let level = format!("proto_ver={version}");
    assert!(weir.log_has(&[&page_id, &level]), "the page connected with MQTT level {version}");

    tcp.publish(publish("browser/in", QoS::AtLeastOnce, Some(1)), b"hello from tcp").await;
    loop {
        match tcp.recv().await {
            Some(Frame::Publish(p, body)) if &*p.topic == "browser/echo" => {
                assert_eq!(&body[..], b"got browser/in: hello from tcp");
                break;
            }
            Some(Frame::Publish(p, _)) => {
                if let Some(id) = p.packet_id {
                    tcp.send(common::raw::puback(id)).await;
                }
            }
            Some(_) => {}
            None => panic!("broker closed the TCP client"),
        }
    }
}

#[tokio::test]
async fn websocket_listener_refuses_other_paths() {
    let weir = Weir::start();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket"])
        .args(["-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
        .arg(format!("http://127.0.0.1:{}/elsewhere", weir.ws.port()))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}
