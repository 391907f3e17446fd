//! Who may connect, and what they may do.
//!
//! - `config`: `[[authentication]]` (the chain) and `[flapping_detect]`.
//! - [`chain::Authn`]: runs the authenticators in order, each within its deadline and the slow
//!   ones off the MQTT workers; the first to allow or deny decides, and when every one ignores
//!   the client is refused. With no authenticator, anyone may connect.
//! - One file per authenticator: `builtin` (users in the store, seeded from a CSV), `jwt`,
//!   `http` and `postgres`, and `hash` for EMQX's password hashes they share.
//! - `flapping`: failed logins counted per client address, which is banned past a limit.
//! - `acl`: authorization, `[authorization]` with its file source, and what a JWT carries.

pub mod acl;
pub mod builtin;
pub mod chain;
pub mod config;
mod flapping;
pub mod hash;
mod http;
mod jwt;
mod postgres;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ntex_bytes::Bytes;

pub use chain::Authn;

/// A node's authentication and authorization, built at start from its config.
pub struct Access {
    /// Who may connect.
    pub authn: Authn,
    /// What they may do.
    pub authz: acl::Authz,
    /// Their counters, named as EMQX's.
    pub counters: Counters,
}

/// Authentication's and authorization's counters: apart from the broker's [`crate::metrics::Metrics`],
/// whose counters every PUBLISH touches, so that these rarely written ones share no cache line
/// with them.
#[derive(Debug, Default)]
pub struct Counters {
    /// Logins an authenticator allowed (`authentication.success`).
    pub authentication_success: std::sync::atomic::AtomicU64,
    /// Logins refused, banned addresses included (`authentication.failure`).
    pub authentication_failure: std::sync::atomic::AtomicU64,
    /// Publishes and subscriptions allowed (`authorization.allow`), where there was something to
    /// check (a source, a token's rules, or `no_match = "deny"`).
    pub authorization_allow: std::sync::atomic::AtomicU64,
    /// Publishes and subscriptions denied (`authorization.deny`).
    pub authorization_deny: std::sync::atomic::AtomicU64,
    /// Decisions taken from a client's cache (`authorization.cache_hit`).
    pub authorization_cache_hit: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("anonymous", &self.authn.allows_anonymous()).finish_non_exhaustive()
    }
}

impl Access {
    /// Anyone may connect and do anything: the config has neither section.
    pub fn open_to_all() -> Access {
        Access { authn: Authn::anonymous(), authz: acl::Authz::allow_all(), counters: Counters::default() }
    }

    /// What `config` sets up; `users` are the built-in users the store kept, `store` where
    /// changes to them go.
    pub fn new(
        config: &crate::Config,
        users: Vec<(String, Vec<u8>)>,
        store: Option<crate::store::Store>,
    ) -> Result<Access, AuthError> {
        Ok(Access {
            authn: Authn::new(&config.authentication, &config.flapping_detect, users, store)?,
            authz: acl::Authz::new(&config.authorization)?,
            counters: Counters::default(),
        })
    }
}

/// What a client presents when it connects.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Its client id (assigned by the broker if it sent none).
    pub client_id: String,
    /// Its CONNECT's username, or what its certificate gave.
    pub username: Option<String>,
    /// Its CONNECT's password.
    pub password: Option<Bytes>,
    /// Its address.
    pub peer: IpAddr,
}

impl Credentials {
    /// The placeholders authenticators may use, as `${name}`.
    pub const PLACEHOLDERS: [&'static str; 4] = ["clientid", "username", "password", "peerhost"];

    /// `template` with `${clientid}`, `${username}`, `${password}` and `${peerhost}` filled in
    /// (missing ones become empty).
    pub fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            match self.value_of(&rest[start + 2..start + len]) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..=start + len]),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A placeholder's value; `None` for names Weir does not know (left as written).
    pub fn value_of(&self, name: &str) -> Option<String> {
        Some(match name {
            "clientid" => self.client_id.clone(),
            "username" => self.username.clone().unwrap_or_default(),
            "password" => self.password.as_deref().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default(),
            "peerhost" => self.peer.to_string(),
            _ => return None,
        })
    }
}

/// What an authenticator says.
#[derive(Debug)]
pub enum Outcome {
    /// The client may connect.
    Allow(Grant),
    /// It may not; the chain stops.
    Deny(String),
    /// This authenticator cannot say (unknown user, no token, a backend down): the next one
    /// decides.
    Ignore(String),
    /// Its backend could not answer (down, too slow, a reply it cannot read): as `Ignore`, but
    /// logged as a warning.
    Unavailable(String),
}

/// What an accepted client was granted.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Superusers pass every authorization check.
    pub superuser: bool,
    /// Rules carried by its token, checked before the `[authorization]` sources.
    pub acl: Option<Arc<[acl::Rule]>>,
    /// When its token expires: the connection is closed then.
    pub expires_at: Option<SystemTime>,
}

/// Why a client was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Its credentials did not pass: CONNACK 0x86 (v5), 0x04 (v3).
    BadCredentials(String),
    /// Its address is banned for failing too often: CONNACK 0x8A (v5), 0x05 (v3).
    Banned,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::BadCredentials(why) => write!(f, "{why}"),
            Refused::Banned => write!(f, "the address is banned for repeated failed logins ([flapping_detect])"),
        }
    }
}

/// Why the authentication or authorization config cannot be used: a startup error.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file it names could not be read or parsed.
    #[error("{what} {path}: {message}")]
    File {
        /// Which setting names it.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A setting's value cannot be used.
    #[error("{0}")]
    Invalid(String),
}
