//! The `file` source: rules in a TOML file (`rule.rs` shows the shape), first match wins. The
//! file is read again when it changes; a broken edit is reported with its line and column and
//! the rules in force stay.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use parking_lot::RwLock;
use serde::Deserialize;
use tracing::{error, info};
use weir_types::topic;

use super::rule::{Action, Permission, Rule, Topic, Who};
use crate::auth::AuthError;

/// How often the file is looked at for a change.
pub(super) const RELOAD_CHECK: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AclFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    permission: Permission,
    #[serde(default)]
    who: Option<WhoSpec>,
    #[serde(default = "all_actions")]
    action: Action,
    #[serde(default)]
    topics: Option<Vec<TopicSpec>>,
}

fn all_actions() -> Action {
    Action::All
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WhoSpec {
    Word(String),
    Table(WhoTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhoTable {
    username: Option<String>,
    clientid: Option<String>,
    ipaddr: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TopicSpec {
    Filter(String),
    Eq { eq: String },
}

/// Parses an ACL file's text; errors say where (`rules[N]`, or the line and column).
pub fn parse(text: &str) -> Result<Vec<Rule>, String> {
    let file: AclFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.rules.into_iter().enumerate().map(|(n, spec)| rule_of(spec).map_err(|e| format!("rules[{n}]: {e}"))).collect()
}

fn rule_of(spec: RuleSpec) -> Result<Rule, String> {
    let who = match spec.who {
        None => Who::All,
        Some(WhoSpec::Word(w)) if w == "all" => Who::All,
        Some(WhoSpec::Word(w)) => {
            return Err(format!("who = {w:?}: it is \"all\" or a table of username, clientid, ipaddr"))
        }
        Some(WhoSpec::Table(t)) => {
            let mut all = Vec::new();
            if let Some(u) = t.username {
                all.push(Who::Username(u));
            }
            if let Some(c) = t.clientid {
                all.push(Who::Clientid(c));
            }
            if let Some(ip) = t.ipaddr {
                let net = match ip.parse::<IpNet>() {
                    Ok(net) => net,
                    Err(_) => IpNet::from(
                        ip.parse::<IpAddr>().map_err(|_| format!("ipaddr {ip:?} is not an address or CIDR"))?,
                    ),
                };
                all.push(Who::Ipaddr(net));
            }
            match all.len() {
                0 => return Err("who = {} names no one".into()),
                1 => all.remove(0),
                _ => Who::AllOf(all),
            }
        }
    };
    let topics = match spec.topics {
        None => None,
        Some(specs) => Some(
            specs
                .into_iter()
                .map(|t| match t {
                    TopicSpec::Eq { eq } => Ok(Topic::Eq(eq)),
                    TopicSpec::Filter(f) => {
                        topic::validate_filter(&f).map_err(|e| format!("topic {f:?}: {e}"))?;
                        Ok(Topic::Filter(f))
                    }
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Rule { permission: spec.permission, who, action: spec.action, topics })
}

/// The rules of one file, as last read.
pub struct FileSource {
    path: PathBuf,
    rules: RwLock<Arc<[Rule]>>,
    modified: RwLock<Option<SystemTime>>,
    /// Bumped at each reload, so that cached results from older rules are not used.
    pub(super) generation: Arc<AtomicU64>,
}

impl FileSource {
    /// Reads `path`: a startup error if it cannot be read or parsed.
    pub fn load(path: &Path, generation: Arc<AtomicU64>) -> Result<FileSource, AuthError> {
        let modified = modified(path);
        let rules = read(path).map_err(|message| AuthError::File {
            what: "authorization source file",
            path: path.display().to_string(),
            message,
        })?;
        info!(file = %path.display(), rules = rules.len(), "ACL file loaded");
        Ok(FileSource {
            path: path.to_path_buf(),
            rules: RwLock::new(rules.into()),
            modified: RwLock::new(modified),
            generation,
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<[Rule]> {
        self.rules.read().clone()
    }

    /// Reads the file again if it changed since it was last read.
    pub fn reload_if_changed(&self) {
        let now = modified(&self.path);
        if now == *self.modified.read() {
            return;
        }
        *self.modified.write() = now;
        match read(&self.path) {
            Ok(rules) => {
                info!(file = %self.path.display(), rules = rules.len(), "ACL file changed: reloaded");
                *self.rules.write() = rules.into();
                self.generation.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                error!(file = %self.path.display(), error = %e, "ACL file changed but cannot be used: keeping the rules in force")
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<Vec<Rule>, String> {
    parse(&std::fs::read_to_string(path).map_err(|e| e.to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::acl::rule::{Check, ClientView};

    #[test]
    fn emqx_s_default_acl_in_toml() {
        let rules = parse(
            r##"
            [[rules]]
            permission = "allow"
            who = { username = "dashboard" }
            action = "subscribe"
            topics = ["$SYS/#"]

            [[rules]]
            permission = "allow"
            who = { ipaddr = "127.0.0.1" }
            topics = ["$SYS/#", "#"]

            [[rules]]
            permission = "deny"
            who = "all"
            action = "subscribe"
            topics = ["$SYS/#", { eq = "#" }]

            [[rules]]
            permission = "allow"
            "##,
        )
        .unwrap();
        let first = |c: &ClientView, check, t: &str| rules.iter().find_map(|r| r.decide(c, check, t));
        let remote = ClientView { client_id: "c", username: None, ip: "10.0.0.9".parse().unwrap() };
        assert_eq!(first(&remote, Check::Subscribe, "#"), Some(Permission::Deny));
        assert_eq!(first(&remote, Check::Subscribe, "$SYS/brokers"), Some(Permission::Deny));
        assert_eq!(first(&remote, Check::Subscribe, "a/#"), Some(Permission::Allow));
        let local = ClientView { ip: "127.0.0.1".parse().unwrap(), ..remote };
        assert_eq!(first(&local, Check::Subscribe, "#"), Some(Permission::Allow));
    }

    #[test]
    fn mistakes_are_named_with_where_they_are() {
        let err = parse("[[rules]]\npermission = \"allow\"\nwho = \"everyone\"").unwrap_err();
        assert!(err.contains("rules[0]") && err.contains("everyone"), "{err}");
        let err = parse("[[rules]]\npermission = \"maybe\"").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = parse("[[rules]]\npermission = \"deny\"\ntopics = [\"a/#/b\"]").unwrap_err();
        assert!(err.contains("a/#/b"), "{err}");
        let err = parse("[[rules]]\npermission = \"deny\"\nwho = { ipaddr = \"10.0.0.300\" }").unwrap_err();
        assert!(err.contains("10.0.0.300"), "{err}");
    }
}
