//! A subscriber that reads slowly holds its publishers back for `backpressure_timeout` at most.
//! Alone in its test binary: it compares rates, which other tests running beside it would skew.

mod common;

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::raw::{connect_packet, puback, subscribe, Frame, Raw};
use common::Weir;
use ntex_mqtt::QoS;

/// Ten QoS 1 publishers on `load/<i>`, as fast as their acknowledgements come; returns the
/// acknowledgements so far and a flag that stops them.
fn load(weir: &Weir) -> (Arc<AtomicUsize>, Arc<AtomicBool>) {
    let (acked, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    for i in 0..10 {
        let mut opts = rumqttc::MqttOptions::new(format!("loader-{i}"), "127.0.0.1", weir.tcp.port());
        opts.set_inflight(50);
        let (client, mut events) = rumqttc::AsyncClient::new(opts, 50);
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let topic = format!("load/{i}");
            while client.publish(&topic, rumqttc::QoS::AtLeastOnce, false, vec![b'x'; 64]).await.is_ok() {}
        });
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
                    Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
        });
    }
    (acked, stop)
}

/// The acknowledgements per second of the load over three windows of a second, sorted.
async fn rates(acked: &AtomicUsize) -> Vec<usize> {
    let mut rates = Vec::new();
    for _ in 0..3 {
        let before = acked.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        rates.push(acked.load(Ordering::Relaxed) - before);
    }
    rates.sort_unstable();
    rates
}

/// A subscriber that takes one message a second holds ten publishers back only for
/// `backpressure_timeout`: after it, their rate is back to at least 90% of what it is without
/// that subscriber. The rate without it is measured before it comes and after it leaves (the
/// median of those six windows), so that the machine's drift over the test counts on both sides;
/// the rate beside it is the best of three windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_acking_once_a_second_cannot_hold_publishers_back() {
    let weir = Weir::start_with("[mqtt]\nbackpressure_timeout = 300\n");
    let (acked, stop) = load(&weir);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut alone = rates(&acked).await;
    let mut connect = connect_packet("sloth");
    connect.receive_max = NonZeroU16::new(1);
    let (mut sloth, _) = Raw::connect(weir.tcp, connect).await;
    sloth.send(subscribe(1, "load/#", QoS::AtLeastOnce)).await;
    let taking = tokio::spawn(async move {
        while let Ok(Some(frame)) = sloth.recv_within(Duration::from_secs(5)).await {
            if let Frame::Publish(p, _) = frame {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sloth.send(puback(p.packet_id.expect("QoS 1"))).await;
            }
        }
    });
    // Held back at first, then past the timeout its queue drops its oldest messages instead.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let beside = rates(&acked).await;
    // It leaves (its socket closes, and its clean session ends with it).
    taking.abort();
    tokio::time::sleep(Duration::from_secs(1)).await;
    alone.extend(rates(&acked).await);
    stop.store(true, Ordering::Relaxed);
    alone.sort_unstable();
    eprintln!("load alone {alone:?} msgs/s, beside a subscriber taking one a second {beside:?}");
    let (median, best) = ((alone[2] + alone[3]) / 2, beside[2]);
    assert!(median > 0, "the publishers ran: {alone:?}");
    assert!(best * 10 >= median * 9, "with the slow subscriber {beside:?} msgs/s, without {alone:?}\n{}", weir.log());
    assert!(weir.log_has(&["sloth", "stays behind"]), "the subscriber is named as stalled:\n{}", weir.log());
}
