//! The socket: reads sized to the traffic, and writes of everything encoded in one go.

use std::future::Future;
use std::io::IoSlice;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use ntex_bytes::{BytePages, BytesMut};
use tokio::io::AsyncWriteExt;

use super::goodbye::Exit;
use super::handshake::MIN_READ;
use super::Connection;
use crate::metrics::Metrics;
use crate::session::Kick;
use crate::transport::Transport;

/// The largest room given to one socket read.
const MAX_READ: usize = 64 * 1024;

impl<S: Transport> Connection<S> {
    /// Handles the `n` bytes just read, adapts the next read's size, and gives the buffer back
    /// when a quiet connection has nothing left in it.
    pub(super) fn after_read(&mut self, n: usize) -> Result<(), Exit> {
        Metrics::add(&self.broker.metrics.bytes_received, n as u64);
        self.last_recv = Instant::now();
        self.now_wall = SystemTime::now();
        self.read_hint = if n >= self.read_hint {
            (self.read_hint * 2).min(MAX_READ)
        } else if n < self.read_hint / 4 {
            (self.read_hint / 2).max(MIN_READ)
        } else {
            self.read_hint
        };
        self.handle_input()?;
        if let Some(limiter) = &mut self.limiter {
            limiter.spend(n as u64);
        }
        if self.rbuf.is_empty() && self.read_hint == MIN_READ {
            self.rbuf = BytesMut::new();
        }
        Ok(())
    }

    /// Waits until the store keeps what this burst's acknowledgements promise, within
    /// `send_timeout`, watching for a kick. Otherwise the encoded packets are dropped unsent:
    /// nothing is acknowledged that was not kept.
    pub(super) async fn wait_until_kept(&mut self) -> Result<(), Exit> {
        let send_timeout = Duration::from_millis(self.broker.config.mqtt.send_timeout.get());
        let broker = self.broker.clone();
        let outcome = tokio::select! {
            kept = broker.kept(&mut self.burst) => kept.map_err(|e| Exit::NotKept(e.to_string())),
            kicked = &mut self.kick => Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            () = tokio::time::sleep(send_timeout) => {
                Err(Exit::NotKept(format!("the store did not commit within send_timeout ({} ms)", send_timeout.as_millis())))
            }
        };
        if outcome.is_err() {
            self.out = None;
        }
        outcome
    }

    /// Writes the encoded packets (see [`write_out`]), with no deadline: the goodbye, which
    /// bounds it itself.
    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        write_out(&mut self.stream, &mut self.out, &self.broker.metrics).await
    }

    /// Writes the encoded packets within `[mqtt] send_timeout`, while watching for a kick: a
    /// client that stops reading is dropped, and a takeover or a shutdown never waits on its
    /// socket.
    pub(super) async fn flush_or_leave(&mut self) -> Result<(), Exit> {
        if self.out.as_ref().is_none_or(BytePages::is_empty) {
            return Ok(());
        }
        let send_timeout = Duration::from_millis(self.broker.config.mqtt.send_timeout.get());
        let (stream, out, metrics) = (&mut self.stream, &mut self.out, &self.broker.metrics);
        let mut write = std::pin::pin!(write_out(stream, out, metrics));
        // Most writes complete at once: those need no timer (making one reads the runtime's
        // shared handle, which costs the busiest path).
        if let Poll::Ready(written) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            return written.map_err(|e| Exit::PeerGone(e.to_string()));
        }
        tokio::select! {
            written = write => written.map_err(|e| Exit::PeerGone(e.to_string())),
            kicked = &mut self.kick => Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            () = tokio::time::sleep(send_timeout) => Err(Exit::SendTimeout(send_timeout)),
        }
    }
}

/// Writes the encoded packets `out` with vectored writes (payload pages are not copied), then
/// releases the pages so that an idle connection holds none.
async fn write_out<S: Transport>(
    stream: &mut S,
    out: &mut Option<BytePages>,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let Some(written) = out else { return Ok(()) };
    Metrics::add(&metrics.bytes_sent, written.len() as u64);
    while !written.is_empty() {
        // The slice array is built on each poll's stack: kept across the await, it would
        // make every connection's task a kilobyte larger.
        let pages = &*written;
        let n = std::future::poll_fn(|cx| {
            let mut iov = [IoSlice::new(&[]); 64];
            let mut count = 0;
            for (slot, chunk) in iov.iter_mut().zip(pages.iter()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            std::pin::Pin::new(&mut *stream).poll_write_vectored(cx, &iov[..count])
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written.advance_to(n);
    }
    // Dropped, the page list goes back to the thread's cache for the next connection that writes.
    *out = None;
    stream.flush().await
}
