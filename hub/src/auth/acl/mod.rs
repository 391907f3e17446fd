//! Authorization, as EMQX's `[authorization]`: superusers pass; then the rules a client's token
//! carries; then each source in order (today the `file` source, `file.rs`); the first rule that
//! matches decides, and `no_match` decides when none does. Results are cached per client
//! (`cache.rs`), within `max_size` and `ttl`, and dropped when the rules change.

mod cache;
pub mod file;
pub mod rule;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use cache::AclCache;
pub use rule::{Check, ClientView, Permission, Rule};

use super::{AuthError, Grant};
use file::FileSource;

/// What happens to a client whose publish or subscribe is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DenyAction {
    /// The action is refused (PUBACK or SUBACK 0x87 in v5), the client stays.
    #[default]
    Ignore,
    /// The client is disconnected (DISCONNECT 0x87 in v5).
    Disconnect,
}

/// `[authorization.cache]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether results are cached.
    pub enable: bool,
    /// Results kept per client.
    pub max_size: usize,
    /// Seconds a result is kept.
    pub ttl: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enable: true, max_size: 32, ttl: 60 }
    }
}

/// One of `[[authorization.sources]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// Rules in a TOML file.
    File {
        /// `false` keeps it in the config but out of the checks.
        #[serde(default = "yes")]
        enable: bool,
        /// The file.
        path: PathBuf,
    },
}

fn yes() -> bool {
    true
}

/// `[authorization]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzConfig {
    /// What is decided when no rule matches: `"allow"` (EMQX's default) or `"deny"`.
    pub no_match: Permission,
    /// What happens to a client that was denied.
    pub deny_action: DenyAction,
    /// The per-client cache.
    pub cache: CacheConfig,
    /// The sources, in order.
    pub sources: Vec<SourceConfig>,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig {
            no_match: Permission::Allow,
            deny_action: DenyAction::Ignore,
            cache: CacheConfig::default(),
            sources: Vec::new(),
        }
    }
}

/// A decision, and what made it (`authz_source` in `$events/client_check_authz_complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub permission: Permission,
    /// `"superuser"`, `"client_info"` (the token's rules), `"file"`, `"default"` (`no_match`), or
    /// `"cache"`.
    pub source: &'static str,
}

/// The node's authorization.
pub struct Authz {
    /// What is decided when no rule matches.
    pub no_match: Permission,
    /// What happens to a client that was denied.
    pub deny_action: DenyAction,
    cache: CacheConfig,
    files: Vec<FileSource>,
    /// Bumped when any source's rules change: cached results older than it are not used.
    generation: Arc<AtomicU64>,
}

impl Authz {
    /// The sources `cfg` names, read now: a source that cannot be read is a startup error.
    pub fn new(cfg: &AuthzConfig) -> Result<Authz, AuthError> {
        let generation = Arc::new(AtomicU64::new(0));
        let mut files = Vec::new();
        for source in &cfg.sources {
            match source {
                SourceConfig::File { enable: false, .. } => {}
                SourceConfig::File { path, .. } => files.push(FileSource::load(path, generation.clone())?),
            }
        }
        Ok(Authz { no_match: cfg.no_match, deny_action: cfg.deny_action, cache: cfg.cache.clone(), files, generation })
    }

    /// No source, and `no_match = "allow"`.
    pub fn allow_all() -> Authz {
        Authz {
            no_match: Permission::Allow,
            deny_action: DenyAction::Ignore,
            cache: CacheConfig::default(),
            files: Vec::new(),
            generation: Arc::default(),
        }
    }

    /// Whether there is anything to check: with no source, `no_match` allows and no token
    /// carries rules, every action is allowed without looking.
    pub fn allows_all(&self, grant: &Grant) -> bool {
        grant.superuser || (self.files.is_empty() && grant.acl.is_none() && self.no_match == Permission::Allow)
    }

    /// Reads the sources' files again where they changed; run every [`file::RELOAD_CHECK`].
    pub fn reload_if_changed(&self) {
        for f in &self.files {
            f.reload_if_changed();
        }
    }

    /// How often [`Authz::reload_if_changed`] should run; `None` when there is no file.
    pub fn reload_every(&self) -> Option<Duration> {
        (!self.files.is_empty()).then_some(file::RELOAD_CHECK)
    }

    /// Decides `check` of `topic` for `client`, through `cache` if it is on.
    pub fn check(
        &self,
        client: &ClientView<'_>,
        grant: &Grant,
        cache: &mut Option<Box<AclCache>>,
        check: Check,
        topic: &str,
    ) -> Decision {
        if grant.superuser {
            return Decision { permission: Permission::Allow, source: "superuser" };
        }
        let generation = self.generation.load(Ordering::Relaxed);
        if self.cache.enable && self.cache.max_size > 0 {
            if let Some(permission) = cache.as_mut().and_then(|c| c.get(generation, check, topic)) {
                return Decision { permission, source: "cache" };
            }
        }
        let decision = self.decide(client, grant, check, topic);
        if self.cache.enable && self.cache.max_size > 0 {
            let ttl = Duration::from_secs(self.cache.ttl);
            cache.get_or_insert_with(|| Box::new(AclCache::new(self.cache.max_size, ttl))).put(
                generation,
                check,
                topic,
                decision.permission,
            );
        }
        decision
    }

    fn decide(&self, client: &ClientView<'_>, grant: &Grant, check: Check, topic: &str) -> Decision {
        if let Some(acl) = &grant.acl {
            if let Some(permission) = acl.iter().find_map(|r| r.decide(client, check, topic)) {
                return Decision { permission, source: "client_info" };
            }
        }
        for f in &self.files {
            if let Some(permission) = f.rules().iter().find_map(|r| r.decide(client, check, topic)) {
                return Decision { permission, source: "file" };
            }
        }
        Decision { permission: self.no_match, source: "default" }
    }
}
