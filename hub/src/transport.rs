//! What a connection runs on: a byte stream that reads into the connection's buffer, and that,
//! for TCP, reserves room only once bytes have arrived, so that an idle connection waits without
//! holding a read buffer.

use std::future::Future;
use std::io;

use ntex_bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream};
use tokio::net::TcpStream;

/// A client's byte stream.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits for bytes and appends them to `buf`, giving it at least `room` bytes of space first.
    /// Returns 0 at end of stream. Cancel-safe: nothing is lost if the future is dropped.
    fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> impl Future<Output = io::Result<usize>> + Send;
}

fn make_room(buf: &mut BytesMut, room: usize) {
    if buf.capacity() - buf.len() < room {
        buf.reserve(room);
    }
}

impl Transport for TcpStream {
    async fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
        loop {
            self.readable().await?;
            let grows = buf.capacity() - buf.len() < room;
            make_room(buf, room);
            match self.try_read_buf(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The readiness was stale: right after the CONNECT, it still says readable.
                    // Room reserved for nothing is given back, or every idle connection would
                    // keep a kilobyte.
                    if grows && buf.is_empty() {
                        *buf = BytesMut::new();
                    }
                }
                other => return other,
            }
        }
    }
}

/// The WebSocket bridge: readiness is not observable, so the buffer is reserved up front.
impl Transport for DuplexStream {
    async fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
        make_room(buf, room);
        self.read_buf(buf).await
    }
}

/// TLS: the socket's readiness says nothing of the records rustls has already decrypted, so
/// the buffer is reserved up front, as for WebSocket.
impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    /// As for TCP, an idle connection holds no read buffer: the TLS stream is tried once
    /// without waiting, and when it has nothing (no plaintext, no bytes on the socket), the
    /// buffer made for the try is dropped while the socket is waited on. (`read_buf` is
    /// cancel-safe: a try that finds nothing loses nothing.)
    async fn read_into(&mut self, buf: &mut BytesMut, room: usize) -> io::Result<usize> {
        loop {
            let grows = buf.capacity() - buf.len() < room;
            make_room(buf, room);
            if let Some(read) = read_now(self, buf) {
                return read;
            }
            if grows && buf.is_empty() {
                *buf = BytesMut::new();
            }
            self.get_ref().0.readable().await?;
        }
    }
}

/// What one read of `stream` into `buf` gives without waiting; `None` if it would wait.
fn read_now<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> Option<io::Result<usize>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(stream.read_buf(buf)).poll(&mut cx) {
        std::task::Poll::Ready(read) => Some(read),
        std::task::Poll::Pending => None,
    }
}
