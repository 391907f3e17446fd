//! Subscribing and unsubscribing a session: the router's table, the session's own record of
//! its subscriptions, and the retained messages a new subscription brings.

use std::sync::Arc;

use ntex_mqtt::v5::codec::RetainHandling;
use weir_types::topic::{self, TopicError};
use weir_types::QoS;

use super::Broker;
use crate::message::Delivery;
use crate::router::Subscriber;
use crate::session::{Session, SubOptions};

/// Why a subscription was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter is not a valid topic filter (or `$share/...` form).
    #[error("invalid topic filter: {0}")]
    Filter(#[from] TopicError),
    /// No Local on a shared subscription, which MQTT 5.0 (3.8.3.1) makes a protocol error.
    #[error("No Local on a shared subscription")]
    NoLocalOnShared,
    /// The filter has more levels than `max_topic_levels`.
    #[error("a filter of {levels} levels, over max_topic_levels ({max})")]
    TooManyLevels {
        /// The filter's levels.
        levels: usize,
        /// `max_topic_levels`.
        max: usize,
    },
    /// The session holds `max_subscriptions` already.
    #[error("the session holds max_subscriptions ({max}) subscriptions already")]
    Quota {
        /// `max_subscriptions`.
        max: usize,
    },
}

impl Broker {
    /// Subscribes `session` to `raw`, the filter as the client wrote it (`$share/<group>/...`
    /// and `$queue/...` included), with `opts`, its QoS already capped; replaces an existing
    /// subscription to it. Retained messages matching it are queued for the session as Retain
    /// Handling says (never for a shared subscription, MQTT 5.0 4.8.2). Returns the QoS granted.
    pub fn subscribe(&self, session: &Arc<Session>, raw: &str, opts: SubOptions) -> Result<QoS, SubscribeError> {
        let parsed = topic::parse_subscription(raw)?;
        if parsed.group.is_some() && opts.no_local {
            return Err(SubscribeError::NoLocalOnShared);
        }
        let cfg = &self.config.mqtt;
        let levels = parsed.filter.bytes().filter(|&b| b == b'/').count() + 1;
        if levels > cfg.max_topic_levels {
            return Err(SubscribeError::TooManyLevels { levels, max: cfg.max_topic_levels });
        }
        {
            let st = session.state.lock();
            if st.subscriptions.len() >= cfg.max_subscriptions && !st.subscriptions.contains_key(raw) {
                return Err(SubscribeError::Quota { max: cfg.max_subscriptions });
            }
        }
        let existed = self.router.subscribe(parsed.filter, parsed.group, Subscriber { session: session.clone(), opts });
        session.state.lock().subscriptions.insert(raw.to_string(), opts);
        let wants_retained = match opts.retain_handling {
            RetainHandling::AtSubscribe => true,
            RetainHandling::AtSubscribeNew => !existed,
            RetainHandling::NoAtSubscribe => false,
        };
        if wants_retained && parsed.group.is_none() {
            for msg in self.retained.matching(parsed.filter) {
                let d = Delivery {
                    qos: msg.qos.min(opts.qos),
                    msg,
                    retain: true,
                    subscription_id: opts.subscription_id,
                    share: None,
                    stored: None,
                };
                self.enqueue_detached(session, d);
            }
        }
        Ok(opts.qos)
    }

    /// Subscribes a session taken back from the store to `raw` again, with no retained messages:
    /// it had them when it first subscribed.
    pub(super) fn restore_subscription(
        &self,
        session: &Arc<Session>,
        raw: &str,
        opts: SubOptions,
    ) -> Result<(), TopicError> {
        let parsed = topic::parse_subscription(raw)?;
        self.router.subscribe(parsed.filter, parsed.group, Subscriber { session: session.clone(), opts });
        session.state.lock().subscriptions.insert(raw.to_string(), opts);
        Ok(())
    }

    /// Removes `session`'s subscription to `raw`; returns whether it had one.
    pub fn unsubscribe(&self, session: &Session, raw: &str) -> Result<bool, TopicError> {
        let parsed = topic::parse_subscription(raw)?;
        session.state.lock().subscriptions.remove(raw);
        Ok(self.router.unsubscribe(parsed.filter, parsed.group, session.uid))
    }

    /// Removes every subscription of a session that ends.
    pub(super) fn unsubscribe_all(&self, session: &Session) {
        let subscriptions = std::mem::take(&mut session.state.lock().subscriptions);
        for raw in subscriptions.keys() {
            if let Ok(parsed) = topic::parse_subscription(raw) {
                self.router.unsubscribe(parsed.filter, parsed.group, session.uid);
            }
        }
    }
}
