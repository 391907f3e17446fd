//! A TCP proxy on a loopback port that a test can cut and restore, to take a real service
//! (PostgreSQL, the Kafka broker) "down" and back without stopping it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: open connections end.
    cuts: watch::Sender<u64>,
}

impl Proxy {
    /// Forwards a free loopback port to `target`; starts up.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (is_up, cut_rx) = (up.clone(), cuts.subscribe());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !is_up.load(Ordering::Relaxed) {
                    // Down: the connection is refused at once (closed).
                    continue;
                }
                let mut cut = cut_rx.clone();
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, up, cuts }
    }

    /// Takes the service down: open connections are cut and new ones closed at once.
    pub fn cut(&self) {
        self.up.store(false, Ordering::Relaxed);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Brings the service back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::Relaxed);
    }
}
