//! The session state machine: the input is everything a client sends on one connection, played
//! against a live broker through an in-memory stream.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_hub::broker::Broker;
use weir_hub::{connection, Config};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn broker() -> Arc<Broker> {
    static BROKER: OnceLock<Arc<Broker>> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            let mut config = Config::default();
            config.mqtt.idle_timeout = 1;
            Broker::new(config, None)
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer = "127.0.0.1:1".parse().expect("addr");
        let serve =
            tokio::spawn(connection::serve(broker(), server, peer, peer, None, weir_hub::rate::Rates::default(), Default::default()));
        let _ = client.write_all(&data).await;
        let _ = client.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), client.read_to_end(&mut sink)).await;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(2), serve).await;
    });
});
