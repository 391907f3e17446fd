//! An ACL rule, as EMQX's `acl.conf` writes `{Permission, Who, Action, Topics}`, here in TOML:
//!
//! ```toml
//! [[rules]]
//! permission = "allow"                 # or "deny"
//! who = { username = "dashboard" }     # or clientid, ipaddr (CIDR), several (all must hold), or "all"
//! action = "subscribe"                 # or "publish", "all"
//! topics = ["$SYS/#", { eq = "#" }]    # filters with ${clientid} / ${username}; eq: literally
//! ```
//!
//! A rule without `topics` covers every topic. A JWT's ACL claim gives rules too (`from_token`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;
use weir_types::topic;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// The action may go ahead.
    Allow,
    /// It may not.
    Deny,
}

impl Permission {
    /// As EMQX's events and logs say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Allow => "allow",
            Permission::Deny => "deny",
        }
    }
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// PUBLISH (and wills).
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// Both.
    All,
}

/// What is being checked: a publish or a subscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// A PUBLISH to a topic name.
    Publish,
    /// A SUBSCRIBE to a filter.
    Subscribe,
}

impl Check {
    /// As EMQX's events say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Publish => "publish",
            Check::Subscribe => "subscribe",
        }
    }
}

/// Whom a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Every client.
    All,
    /// Clients with this username.
    Username(String),
    /// The client with this id.
    Clientid(String),
    /// Clients whose address is in this network.
    Ipaddr(IpNet),
    /// Clients that every one of these fits.
    AllOf(Vec<Who>),
}

/// A topic of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic {
    /// A filter, with `${clientid}` and `${username}` filled in: publishes to names it matches,
    /// and subscriptions to filters it covers.
    Filter(String),
    /// `{ eq = "..." }`: that exact string, wildcards included.
    Eq(String),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What it says when it matches.
    pub permission: Permission,
    /// Whom it is about.
    pub who: Who,
    /// What it is about.
    pub action: Action,
    /// Which topics; `None` for all.
    pub topics: Option<Vec<Topic>>,
}

/// The client a check is for.
#[derive(Debug, Clone, Copy)]
pub struct ClientView<'a> {
    /// Its client id.
    pub client_id: &'a str,
    /// Its username.
    pub username: Option<&'a str>,
    /// Its address.
    pub ip: IpAddr,
}

impl Rule {
    /// What the rule says about `check` of `topic` by `client`, if it matches.
    pub fn decide(&self, client: &ClientView<'_>, check: Check, topic: &str) -> Option<Permission> {
        let action_fits = match self.action {
            Action::All => true,
            Action::Publish => check == Check::Publish,
            Action::Subscribe => check == Check::Subscribe,
        };
        if !action_fits || !self.who.fits(client) {
            return None;
        }
        let topic_fits = match &self.topics {
            None => true,
            Some(topics) => topics.iter().any(|t| t.fits(client, check, topic)),
        };
        topic_fits.then_some(self.permission)
    }

    /// The rules of a JWT's ACL claim: EMQX 5's list of `{"permission", "action", "topic"}`
    /// (or `"topics"`), or the older `{"pub": [...], "sub": [...], "all": [...]}` of allowed topics.
    pub fn from_token(claim: &Value) -> Result<Vec<Rule>, String> {
        let strings = |v: &Value| -> Result<Vec<Topic>, String> {
            match v {
                Value::String(s) => Ok(vec![Topic::Filter(s.clone())]),
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(|s| Topic::Filter(s.to_string()))
                            .ok_or("a topic that is not a string".to_string())
                    })
                    .collect(),
                _ => Err("topics must be a string or a list of strings".into()),
            }
        };
        match claim {
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    let text = |key: &str| item.get(key).and_then(Value::as_str).ok_or(format!("a rule without {key}"));
                    let permission = match text("permission")? {
                        "allow" => Permission::Allow,
                        "deny" => Permission::Deny,
                        other => return Err(format!("permission {other:?}")),
                    };
                    let action = match text("action")? {
                        "publish" | "pub" => Action::Publish,
                        "subscribe" | "sub" => Action::Subscribe,
                        "all" => Action::All,
                        other => return Err(format!("action {other:?}")),
                    };
                    let topics = match (item.get("topic"), item.get("topics")) {
                        (Some(t), _) | (None, Some(t)) => strings(t)?,
                        (None, None) => return Err("a rule without topic".into()),
                    };
                    Ok(Rule { permission, who: Who::All, action, topics: Some(topics) })
                })
                .collect(),
            Value::Object(map) => {
                let mut rules = Vec::new();
                for (key, topics) in map {
                    let action = match key.as_str() {
                        "pub" | "publish" => Action::Publish,
                        "sub" | "subscribe" => Action::Subscribe,
                        "all" => Action::All,
                        other => return Err(format!("unknown key {other:?}")),
                    };
                    rules.push(Rule {
                        permission: Permission::Allow,
                        who: Who::All,
                        action,
                        topics: Some(strings(topics)?),
                    });
                }
                Ok(rules)
            }
            _ => Err("it must be a list of rules or an object of pub/sub/all topics".into()),
        }
    }
}

impl Who {
    fn fits(&self, c: &ClientView<'_>) -> bool {
        match self {
            Who::All => true,
            Who::Username(u) => c.username == Some(u.as_str()),
            Who::Clientid(id) => c.client_id == id,
            Who::Ipaddr(net) => net.contains(&c.ip),
            Who::AllOf(all) => all.iter().all(|w| w.fits(c)),
        }
    }
}

impl Topic {
    fn fits(&self, c: &ClientView<'_>, check: Check, topic: &str) -> bool {
        match self {
            Topic::Eq(t) => t == topic,
            Topic::Filter(f) => {
                let Some(filter) = fill(f, c) else { return false };
                match check {
                    Check::Publish => topic::matches(&filter, topic),
                    Check::Subscribe => covers(&filter, topic),
                }
            }
        }
    }
}

/// `filter` with `${clientid}` and `${username}` filled in; `None` if it needs a username the
/// client has not got.
fn fill(filter: &str, c: &ClientView<'_>) -> Option<String> {
    if !filter.contains("${") {
        return Some(filter.to_string());
    }
    let mut out = filter.replace("${clientid}", c.client_id);
    if out.contains("${username}") {
        out = out.replace("${username}", c.username?);
    }
    Some(out)
}

/// Whether every topic that `sub` matches, `rule` matches too: a rule's filter covers a
/// subscription level by level, `+` any one level (`+` included), `#` all the rest.
pub fn covers(rule: &str, sub: &str) -> bool {
    // A subscription may not reach `$`-topics through a rule's leading wildcard.
    if sub.starts_with('$') && (rule.starts_with('+') || rule.starts_with('#')) {
        return false;
    }
    let mut r = rule.split('/');
    let mut s = sub.split('/');
    loop {
        match (r.next(), s.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b && a != "+" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> ClientView<'static> {
        ClientView { client_id: "dev-1", username: Some("alice"), ip: "10.1.2.3".parse().unwrap() }
    }

    #[test]
    fn a_rule_filter_covers_narrower_subscriptions_only() {
        assert!(covers("a/#", "a/b/+"));
        assert!(covers("a/+", "a/+"));
        assert!(covers("a/+/c", "a/b/c"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("#", "$SYS/x"));
        assert!(covers("$SYS/#", "$SYS/x"));
        assert!(!covers("a/b", "a/b/c"));
    }

    #[test]
    fn placeholders_and_eq_match_as_emqx_does() {
        let rule = |topics: Vec<Topic>| Rule {
            permission: Permission::Allow,
            who: Who::All,
            action: Action::All,
            topics: Some(topics),
        };
        let own = rule(vec![Topic::Filter("dev/${clientid}/#".into())]);
        assert_eq!(own.decide(&client(), Check::Publish, "dev/dev-1/temp"), Some(Permission::Allow));
        assert_eq!(own.decide(&client(), Check::Publish, "dev/dev-2/temp"), None);
        let eq = rule(vec![Topic::Eq("#".into())]);
        assert_eq!(eq.decide(&client(), Check::Subscribe, "#"), Some(Permission::Allow));
        assert_eq!(eq.decide(&client(), Check::Subscribe, "a/#"), None);
        let nameless = ClientView { username: None, ..client() };
        let by_name = rule(vec![Topic::Filter("u/${username}".into())]);
        assert_eq!(by_name.decide(&nameless, Check::Publish, "u/"), None);
    }

    #[test]
    fn who_and_action_narrow_a_rule() {
        let net = Rule {
            permission: Permission::Deny,
            who: Who::AllOf(vec![Who::Ipaddr("10.1.0.0/16".parse().unwrap()), Who::Username("alice".into())]),
            action: Action::Subscribe,
            topics: None,
        };
        assert_eq!(net.decide(&client(), Check::Subscribe, "x"), Some(Permission::Deny));
        assert_eq!(net.decide(&client(), Check::Publish, "x"), None);
        let elsewhere = ClientView { ip: "10.2.0.1".parse().unwrap(), ..client() };
        assert_eq!(net.decide(&elsewhere, Check::Subscribe, "x"), None);
    }

    #[test]
    fn token_acls_in_both_of_emqx_s_shapes() {
        let new = serde_json::json!([{ "permission": "deny", "action": "subscribe", "topic": "#" }]);
        let rules = Rule::from_token(&new).unwrap();
        assert_eq!(rules[0].decide(&client(), Check::Subscribe, "#"), Some(Permission::Deny));
        let old = serde_json::json!({ "pub": ["t/${clientid}"], "sub": "s/#" });
        let rules = Rule::from_token(&old).unwrap();
        assert!(rules.iter().any(|r| r.decide(&client(), Check::Publish, "t/dev-1") == Some(Permission::Allow)));
        assert!(
            Rule::from_token(&serde_json::json!([{ "permission": "maybe", "action": "all", "topic": "x" }])).is_err()
        );
    }
}
