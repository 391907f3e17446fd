//! Outgoing TLS, as EMQX's `ssl = { ... }` of a connector: which CA to trust, the client
//! certificate to show, whether to check the server at all. The HTTP sink and the MQTT bridge
//! take a rustls configuration made here (ring, as everywhere in Weir); Kafka takes the same
//! keys as librdkafka's `ssl.*` properties. PostgreSQL takes them in its URL
//! (`sslmode=verify-full&sslrootcert=...`), as libpq does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

/// Whether the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// Against `cacertfile` (or the system's roots) and the server's name.
    #[default]
    VerifyPeer,
    /// Not at all: the connection is encrypted, but anyone can pretend to be the server.
    VerifyNone,
}

fn yes() -> bool {
    true
}

/// A sink's `ssl = { ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// `false` keeps the table but connects in the clear (where the URL does not say `https`).
    #[serde(default = "yes")]
    pub enable: bool,
    /// PEM file of the CAs to trust; the system's roots when absent.
    pub cacertfile: Option<PathBuf>,
    /// PEM file of the client certificate chain, for servers that ask for one.
    pub certfile: Option<PathBuf>,
    /// PEM file of its private key.
    pub keyfile: Option<PathBuf>,
    /// `"verify_peer"` (the default) or `"verify_none"`.
    #[serde(default)]
    pub verify: Verify,
}

impl ClientTls {
    /// A rustls client configuration with `alpn` protocols; errors name the key and the file.
    pub fn rustls(&self, alpn: &[&[u8]]) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match self.verify {
            Verify::VerifyNone => builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyServer(provider))),
            Verify::VerifyPeer => builder.with_root_certificates(self.roots()?),
        };
        let mut config = match (&self.certfile, &self.keyfile) {
            (Some(cert), Some(key)) => {
                let chain = read_certs("certfile", cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("keyfile", key, e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("ssl.certfile and ssl.keyfile: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("ssl: certfile and keyfile go together".into()),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        match &self.cacertfile {
            Some(path) => {
                for cert in read_certs("cacertfile", path)? {
                    roots.add(cert).map_err(|e| file_error("cacertfile", path, e))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err("ssl: no cacertfile, and the system has no CA certificates".into());
                }
            }
        }
        Ok(roots)
    }

    /// librdkafka's `ssl.*` properties for these keys.
    pub fn kafka_properties(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        let mut out = Vec::new();
        if let Some(ca) = &self.cacertfile {
            out.push(("ssl.ca.location", path(ca)));
        }
        if let Some(cert) = &self.certfile {
            out.push(("ssl.certificate.location", path(cert)));
        }
        if let Some(key) = &self.keyfile {
            out.push(("ssl.key.location", path(key)));
        }
        let verify = self.verify == Verify::VerifyPeer;
        out.push(("enable.ssl.certificate.verification", verify.to_string()));
        // librdkafka checks the broker's name unless this is empty.
        out.push(("ssl.endpoint.identification.algorithm", if verify { "https" } else { "none" }.to_string()));
        out
    }
}

fn file_error(key: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("ssl.{key} = {}: {e}", path.display())
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// `verify = "verify_none"`: any certificate is taken, though the handshake's signatures are
/// still checked.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(text: &str) -> ClientTls {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn files_that_cannot_be_used_are_named_with_their_key() {
        let err = tls("cacertfile = \"/nowhere/ca.pem\"").rustls(&[]).unwrap_err();
        assert!(err.contains("ssl.cacertfile = /nowhere/ca.pem"), "{err}");
        let err = tls("certfile = \"/nowhere/c.pem\"").rustls(&[]).unwrap_err();
        assert!(err.contains("go together"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = tls(&format!("cacertfile = {empty:?}")).rustls(&[]).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        assert!(tls("verify = \"verify_none\"").rustls(&[b"h2"]).is_ok());
    }

    #[test]
    fn kafka_gets_librdkafka_s_names() {
        let props = tls("cacertfile = \"/ca.pem\"\nverify = \"verify_none\"").kafka_properties();
        assert!(props.contains(&("ssl.ca.location", "/ca.pem".to_string())));
        assert!(props.contains(&("enable.ssl.certificate.verification", "false".to_string())));
    }
}
