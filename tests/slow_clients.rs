//! Clients that stop reading: every write to them has a deadline (`send_timeout`), a takeover
//! of their client id does not wait for their socket, and nobody else's CONNECT waits at all.

mod common;

use std::time::Duration;

use common::raw::{publish, subscribe, Raw};
use common::Weir;

use ntex_mqtt::QoS;

/// Subscribes `id` to `flood/#` and then reads nothing, while another client publishes 40 MB to
/// it: the broker's writes to it block once the socket buffers are full.
async fn stuck_subscriber(weir: &Weir, id: &str) -> Raw {
    let mut stuck = Raw::client(weir.tcp, id).await;
    stuck.send(subscribe(1, "flood/#", QoS::AtMostOnce)).await;
    let _ = stuck.recv().await;
    let mut publisher = Raw::client(weir.tcp, &format!("{id}-flooder")).await;
    let payload = vec![b'x'; 64 * 1024];
    for _ in 0..640 {
        publisher.publish(publish("flood/x", QoS::AtMostOnce, None), &payload).await;
    }
    stuck
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_is_dropped_after_send_timeout() {
    let weir = Weir::start_with("[mqtt]\nsend_timeout = 500\nbackpressure_timeout = 100\n");
    let _stuck = stuck_subscriber(&weir, "deaf").await;
    assert!(weir.log_has(&["deaf", "send_timeout"]), "the client is disconnected for send_timeout:\n{}", weir.log());
    // Its session was let go: the same id connects again at once.
    let again = tokio::time::timeout(Duration::from_secs(2), Raw::client(weir.tcp, "deaf")).await;
    assert!(again.is_ok(), "the session was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_does_not_wait_for_a_stuck_socket() {
    // A long send_timeout: only the kick can free the old connection.
    let weir = Weir::start_with("[mqtt]\nsend_timeout = 120000\nbackpressure_timeout = 100\n");
    let _stuck = stuck_subscriber(&weir, "dup").await;
    // Another client id is not held up by anything that happens to `dup`.
    let other = tokio::time::timeout(Duration::from_secs(2), Raw::client(weir.tcp, "someone-else")).await;
    assert!(other.is_ok());
    let taken = tokio::time::timeout(Duration::from_secs(2), Raw::client(weir.tcp, "dup")).await;
    assert!(taken.is_ok(), "the takeover went through while the old socket was stuck:\n{}", weir.log());
    assert!(!weir.log().contains("did not let go in time"), "the old connection let go at once:\n{}", weir.log());
}
