//! A client certificate's subject as the client's username or id (`peer_cert_as_username`,
//! `peer_cert_as_clientid`), as EMQX takes them.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::config::{CertField, PeerCertAs};
use super::Tls;
use crate::connection::CertIdentity;

/// What `fields` takes from the certificate the client showed, if it showed one.
pub(super) fn identity(tls: &Tls, fields: PeerCertAs) -> CertIdentity {
    if fields.username.is_none() && fields.client_id.is_none() {
        return CertIdentity::default();
    }
    let Some(der) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        return CertIdentity::default();
    };
    // rustls has checked it against the CA already: one that does not parse here has nothing
    // to give.
    let Ok((_, cert)) = X509Certificate::from_der(der) else { return CertIdentity::default() };
    let subject = cert.subject();
    let take = |field: CertField| match field {
        CertField::Cn => subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string),
        CertField::Dn => Some(subject.to_string()),
    };
    CertIdentity { username: fields.username.and_then(take), client_id: fields.client_id.and_then(take) }
}
