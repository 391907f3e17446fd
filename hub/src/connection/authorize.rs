//! Authorization of a client's PUBLISH and SUBSCRIBE, through its cache, with the event and
//! counters EMQX has; a denial either refuses the one action or, with
//! `deny_action = "disconnect"`, ends the connection.

use std::time::{Instant, SystemTime};

use tracing::info;
use weir_rules::event_kind::EventKind;

use super::goodbye::Exit;
use super::{Connection, Granted};
use crate::auth::acl::{Check, ClientView, DenyAction, Permission};
use crate::auth::Grant;
use crate::metrics::Metrics;
use crate::transport::Transport;

impl<S: Transport> Connection<S> {
    /// Keeps what authentication granted, if authorization will have to look at it.
    pub(super) fn grant(&mut self, grant: Grant) {
        let expires = grant.expires_at.map(|at| {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            Instant::now() + left
        });
        if expires.is_none() && self.broker.access.authz.allows_all(&grant) {
            return;
        }
        self.access = Some(Box::new(Granted { grant, cache: None, expires }));
    }

    /// Whether the client may `check` `topic`; `Err` when a denial ends the connection.
    pub(super) fn authorized(&mut self, check: Check, topic: &str) -> Result<bool, Exit> {
        let authz = &self.broker.access.authz;
        let decision = match self.access.as_deref_mut() {
            // Nothing to check: allowed without looking, and not counted (a counter shared by
            // every connection would cost each PUBLISH a contended write).
            None => {
                self.event(EventKind::ClientCheckAuthzComplete, |i| {
                    i.authorized(topic, check.as_str(), "allow", "default")
                });
                return Ok(true);
            }
            Some(granted) => {
                let client = ClientView {
                    client_id: &self.client_id,
                    username: self.info.username.as_deref(),
                    ip: self.peer.ip(),
                };
                authz.check(&client, &granted.grant, &mut granted.cache, check, topic)
            }
        };
        let (permission, source) = (decision.permission, decision.source);
        let metrics = &self.broker.access.counters;
        if source == "cache" {
            Metrics::incr(&metrics.authorization_cache_hit);
        }
        self.event(EventKind::ClientCheckAuthzComplete, |i| {
            i.authorized(topic, check.as_str(), permission.as_str(), source)
        });
        if permission == Permission::Allow {
            Metrics::incr(&metrics.authorization_allow);
            return Ok(true);
        }
        Metrics::incr(&metrics.authorization_deny);
        info!(client_id = %self.client_id, topic, action = check.as_str(), source, "not authorized");
        match authz.deny_action {
            DenyAction::Ignore => Ok(false),
            DenyAction::Disconnect => {
                Err(Exit::NotAuthorized(format!("{} to {topic} is not authorized", check.as_str())))
            }
        }
    }
}
