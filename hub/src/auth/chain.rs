//! The authentication chain: `[[authentication]]` in order, as EMQX runs it.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::builtin::BuiltIn;
use super::config::{AuthnConfig, AuthnEntry, FlappingConfig};
use super::flapping::Flapping;
use super::http::HttpAuthn;
use super::jwt::JwtAuthn;
use super::postgres::PgAuthn;
use super::{AuthError, Credentials, Grant, Outcome, Refused};
use crate::metrics::Metrics;
use crate::store::Store;

/// The longest a check that has no deadline of its own may take (the built-in database's hash,
/// a JWT's signature): a slow one is skipped (ignore), never waited on forever.
const LOCAL_DEADLINE: Duration = Duration::from_secs(5);

/// One authenticator of the chain.
enum Authenticator {
    BuiltIn(Arc<BuiltIn>),
    Jwt(JwtAuthn),
    Http(HttpAuthn),
    Postgres(PgAuthn),
}

impl Authenticator {
    async fn check(&self, c: &Credentials) -> Outcome {
        let (deadline, outcome) = match self {
            Authenticator::BuiltIn(b) => (LOCAL_DEADLINE, tokio::time::timeout(LOCAL_DEADLINE, b.check(c)).await),
            Authenticator::Jwt(j) => (LOCAL_DEADLINE, tokio::time::timeout(LOCAL_DEADLINE, j.check(c)).await),
            Authenticator::Http(h) => (h.deadline(), tokio::time::timeout(h.deadline(), h.check(c)).await),
            Authenticator::Postgres(p) => (p.deadline(), tokio::time::timeout(p.deadline(), p.check(c)).await),
        };
        outcome.unwrap_or_else(|_| Outcome::Unavailable(format!("no answer within {} ms", deadline.as_millis())))
    }
}

/// The node's authenticators, and the failures counted per address.
pub struct Authn {
    /// The authenticators in order, each with its name in logs (EMQX's authenticator id).
    chain: Vec<(&'static str, Authenticator)>,
    /// The built-in database, for the API and `weir ctl users`.
    builtin: Option<Arc<BuiltIn>>,
    flapping: Option<Flapping>,
}

impl Authn {
    /// Nobody is asked for credentials.
    pub fn anonymous() -> Authn {
        Authn { chain: Vec::new(), builtin: None, flapping: None }
    }

    /// The chain `entries` configure; `users` are those the store kept for the built-in
    /// database, which keeps its changes in `store`.
    pub fn new(
        entries: &[AuthnEntry],
        flapping: &FlappingConfig,
        users: Vec<(String, Vec<u8>)>,
        store: Option<Store>,
    ) -> Result<Authn, AuthError> {
        let mut chain = Vec::new();
        let mut builtin = None;
        let mut users = Some(users);
        for entry in entries.iter().filter(|e| e.enable) {
            let authenticator = match &entry.kind {
                AuthnConfig::BuiltIn(cfg) => {
                    let kept = users.take().ok_or_else(|| {
                        AuthError::Invalid("authentication: built_in_database is listed twice".into())
                    })?;
                    let b = Arc::new(BuiltIn::new(cfg, kept, store.clone())?);
                    builtin = Some(b.clone());
                    Authenticator::BuiltIn(b)
                }
                AuthnConfig::Jwt(cfg) => Authenticator::Jwt(JwtAuthn::new(cfg)?),
                AuthnConfig::Http(cfg) => Authenticator::Http(HttpAuthn::new(cfg)?),
                AuthnConfig::Postgres(cfg) => Authenticator::Postgres(PgAuthn::new(cfg)?),
            };
            info!(authenticator = entry.kind.id(), "authentication enabled");
            chain.push((entry.kind.id(), authenticator));
        }
        let flapping = (!chain.is_empty() && flapping.enable).then(|| Flapping::new(flapping));
        Ok(Authn { chain, builtin, flapping })
    }

    /// Whether clients are let in without credentials: no authenticator is configured.
    pub fn allows_anonymous(&self) -> bool {
        self.chain.is_empty()
    }

    /// The built-in database, if the chain has one.
    pub fn builtin(&self) -> Option<&Arc<BuiltIn>> {
        self.builtin.as_ref()
    }

    /// Runs the chain for `c`: the first authenticator that allows or denies decides; when all
    /// ignore, the client is refused.
    pub async fn authenticate(&self, c: &Credentials, metrics: &super::Counters) -> Result<Grant, Refused> {
        if self.chain.is_empty() {
            return Ok(Grant::default());
        }
        if self.flapping.as_ref().is_some_and(|f| f.banned(c.peer)) {
            Metrics::incr(&metrics.authentication_failure);
            return Err(Refused::Banned);
        }
        let mut ignored = Vec::new();
        for (id, authenticator) in &self.chain {
            match authenticator.check(c).await {
                Outcome::Allow(grant) => {
                    debug!(client_id = %c.client_id, authenticator = id, "authenticated");
                    Metrics::incr(&metrics.authentication_success);
                    return Ok(grant);
                }
                Outcome::Deny(why) => return Err(self.failed(c, metrics, format!("{id}: {why}"))),
                Outcome::Ignore(why) => ignored.push(format!("{id}: {why}")),
                Outcome::Unavailable(why) => {
                    warn!(authenticator = id, client_id = %c.client_id, reason = %why, "authenticator skipped: its backend did not answer");
                    ignored.push(format!("{id}: {why}"));
                }
            }
        }
        Err(self.failed(c, metrics, format!("no authenticator accepted the client ({})", ignored.join("; "))))
    }

    fn failed(&self, c: &Credentials, metrics: &super::Counters, why: String) -> Refused {
        Metrics::incr(&metrics.authentication_failure);
        if let Some(f) = &self.flapping {
            f.failed(c.peer);
        }
        Refused::BadCredentials(why)
    }
}
