//! Certificates for the TLS tests, made with the `openssl` command: a CA, a server certificate
//! for 127.0.0.1 and a client certificate, and the `[listeners.ssl]`/`[listeners.wss]` tables
//! that use them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, in a directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("a directory");
        let sh = r#"set -e
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
            key ca.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=weir-test-ca
            for who in server client; do
              key $who.key
              openssl req -new -key $who.key -out $who.csr -subj /CN=$who
            done
            printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
            printf 'extendedKeyUsage=clientAuth\n' >client.ext
            for who in server client; do
              openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile $who.ext -out $who.pem 2>/dev/null
            done"#;
        let ok = Command::new("sh").args(["-c", sh]).current_dir(dir.path()).status().expect("sh");
        assert!(ok.success(), "openssl made the test certificates");
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `[listeners.ssl]` with the server's certificate, and `extra` lines (in that table: its
    /// `ssl_options` as dotted keys).
    pub fn listener(&self, extra: &str) -> String {
        listener_with(&self.path("server.pem"), &self.path("server.key"), extra)
    }
}

pub fn listener_with(cert: &Path, key: &Path, extra: &str) -> String {
    format!("[listeners.ssl]\nbind = \"127.0.0.1:0\"\nssl_options.certfile = {cert:?}\nssl_options.keyfile = {key:?}\n{extra}\n")
}

impl Pki {
    /// The base64 SHA-256 of the server key's SubjectPublicKeyInfo: what Chromium's
    /// `--ignore-certificate-errors-spki-list` trusts.
    pub fn server_spki_sha256(&self) -> String {
        let sh = "openssl pkey -in server.key -pubout -outform der | openssl dgst -sha256 -binary | base64";
        let out = Command::new("sh").args(["-c", sh]).current_dir(self.dir.path()).output().expect("sh");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `[listeners.wss]` with the server's certificate.
    pub fn wss_listener(&self) -> String {
        format!(
            "[listeners.wss]\nbind = \"127.0.0.1:0\"\nssl_options.certfile = {:?}\nssl_options.keyfile = {:?}\n",
            self.path("server.pem"),
            self.path("server.key")
        )
    }
}
