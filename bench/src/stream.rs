//! The client's socket: plain TCP, or TLS over it (rustls with ring) when `--cafile` names the
//! CA that signed the broker's certificate.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A connection's byte stream.
pub enum Stream {
    /// MQTT over TCP.
    Plain(TcpStream),
    /// MQTT over TLS (boxed: the TLS state is large, and most loads are plain).
    Tls(Box<TlsStream<TcpStream>>),
}

/// How to open TLS connections: the CA to trust, and the name to check the broker's
/// certificate against.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl Tls {
    /// Trusts the CA certificates of the PEM file `cafile`; checks the broker's certificate
    /// against `host` (a name or an IP address).
    pub fn new(cafile: &Path, host: &str) -> anyhow::Result<Tls> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(cafile).map_err(|e| anyhow::anyhow!("--cafile {}: {e}", cafile.display()))?
        {
            roots.add(cert.map_err(|e| anyhow::anyhow!("--cafile {}: {e}", cafile.display()))?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).map_err(|e| anyhow::anyhow!("--host {host}: {e}"))?;
        Ok(Tls { connector: TlsConnector::from(Arc::new(config)), name })
    }
}

impl Stream {
    /// Connects to `addr`, over TLS if `tls` says how.
    pub async fn connect(addr: SocketAddr, tls: Option<&Tls>) -> io::Result<Stream> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Stream::Plain(tcp)),
            Some(t) => Ok(Stream::Tls(Box::new(t.connector.connect(t.name.clone(), tcp).await?))),
        }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    /// Reads into `buf`, waiting for bytes; 0 at the end.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    /// Reads what is there without waiting: `WouldBlock` if nothing is.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.try_read(buf),
            Stream::Tls(s) => {
                let mut read = ReadBuf::new(buf);
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(&mut **s).poll_read(&mut cx, &mut read) {
                    Poll::Ready(Ok(())) => Ok(read.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }
}
