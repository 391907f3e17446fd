//! The TLS server configuration made from a TLS listener's files, and kept fresh: when a
//! file changes, new connections get the new certificate while the open ones go on.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use super::config::{SslOptions, Verify};

/// Why the TLS listener could not be set up; each names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("[listeners.{listener}.ssl_options] {key} = {path}: {why}")]
    File {
        /// The listener.
        listener: &'static str,
        /// The config key that names the file.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A key the others need is missing.
    #[error("[listeners.{0}.ssl_options] {1}")]
    Missing(&'static str, &'static str),
    /// rustls refused the combination (a key that does not match the certificate, say).
    #[error("[listeners.{0}.ssl_options] certfile and keyfile do not make a TLS server: {1}")]
    Config(&'static str, String),
}

/// Reads `files` into a TLS server: the listener's name goes into every error.
struct Reader<'a> {
    files: &'a SslOptions,
}

impl Reader<'_> {
    fn file_error(&self, key: &'static str, path: &Path, why: impl std::fmt::Display) -> TlsError {
        TlsError::File { listener: self.files.listener, key, path: path.display().to_string(), why: why.to_string() }
    }

    fn certificates(&self, key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| self.file_error(key, path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.file_error(key, path, e))?;
        if certs.is_empty() {
            return Err(self.file_error(key, path, "no PEM certificate in it"));
        }
        Ok(certs)
    }

    /// The acceptor: the certificate chain and key, TLS 1.2 and 1.3, and the client verifier
    /// `verify` asks for.
    fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let (files, listener) = (self.files, self.files.listener);
        let certfile = files.certfile.as_deref().ok_or(TlsError::Missing(listener, "certfile is not set"))?;
        let keyfile =
            files.keyfile.as_deref().ok_or(TlsError::Missing(listener, "keyfile is not set (certfile is)"))?;
        let chain = self.certificates("certfile", certfile)?;
        let key = PrivateKeyDer::from_pem_file(keyfile).map_err(|e| self.file_error("keyfile", keyfile, e))?;
        let refused = |e: &dyn std::fmt::Display| TlsError::Config(listener, e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| refused(&e))?;
        let builder = match files.verify {
            Verify::VerifyNone => builder.with_no_client_auth(),
            Verify::VerifyPeer => {
                let cafile = files
                    .cacertfile
                    .as_deref()
                    .ok_or(TlsError::Missing(listener, "verify = \"verify_peer\" needs cacertfile"))?;
                let mut roots = RootCertStore::empty();
                for ca in self.certificates("cacertfile", cafile)? {
                    roots.add(ca).map_err(|e| self.file_error("cacertfile", cafile, e))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if files.fail_if_no_peer_cert { verifier } else { verifier.allow_unauthenticated() };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| refused(&e))?)
            }
        };
        let server = builder.with_single_cert(chain, key).map_err(|e| refused(&e))?;
        Ok(TlsAcceptor::from(Arc::new(server)))
    }
}

/// How often the files are looked at for a change.
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// When and how large each file was, as last seen: a change reloads.
type Fingerprint = Vec<Option<(SystemTime, u64)>>;

/// The TLS acceptor in force for a listener, made again when its files change.
pub struct Certificates {
    files: SslOptions,
    /// What new connections are accepted with; open ones keep the one they were accepted with.
    current: RwLock<TlsAcceptor>,
    /// The files as they were when `current` was made (or last failed to be).
    seen: Mutex<Fingerprint>,
}

impl Certificates {
    /// Reads `files`, or says which one is at fault.
    pub fn load(files: SslOptions) -> Result<Arc<Certificates>, TlsError> {
        let seen = fingerprint(&files);
        let current = Reader { files: &files }.acceptor()?;
        Ok(Arc::new(Certificates { files, current: RwLock::new(current), seen: Mutex::new(seen) }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }

    /// Looks at the files every `LOOK_EVERY` until `shutdown` turns true, and makes the
    /// acceptor again when one changed. Files that do not make a server (a certificate written
    /// before its key, say) are logged, and the acceptor in force stays until they do.
    pub async fn keep_fresh(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(LOOK_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
        }
    }

    fn reload_if_changed(&self) {
        let now = fingerprint(&self.files);
        if *self.seen.lock() == now {
            return;
        }
        *self.seen.lock() = now;
        let listener = self.files.listener;
        match (Reader { files: &self.files }).acceptor() {
            Ok(fresh) => {
                *self.current.write() = fresh;
                info!(listener, "TLS certificates reloaded: new connections use them");
            }
            Err(e) => warn!(listener, error = %e, "TLS files changed but do not load: keeping the ones in force"),
        }
    }
}

fn fingerprint(files: &SslOptions) -> Fingerprint {
    [&files.certfile, &files.keyfile, &files.cacertfile]
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(p.as_deref()?).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}
