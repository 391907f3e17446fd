//! A published message as the rules read it. The broker's message type implements
//! [`Published`], so the pipeline takes the broker's messages as they are, shared with their
//! deliveries, without copying them and without knowing the broker.

use std::sync::Arc;
use std::time::SystemTime;

use weir_types::QoS;

use crate::value::Value;

/// What the rules read of a published message: EMQX's `message.publish` columns.
pub trait Published: std::fmt::Debug + Send + Sync + 'static {
    /// The topic it was published to.
    fn topic(&self) -> &str;
    /// Its payload.
    fn payload(&self) -> &[u8];
    /// The QoS it was published with.
    fn qos(&self) -> QoS;
    /// The client that published it; `None` for a message the broker made itself.
    fn publisher(&self) -> Option<&str>;
    /// The RETAIN flag it was published with.
    fn retain(&self) -> bool;
    /// When the broker received it.
    fn received_at(&self) -> SystemTime;
    /// The MQTT sink that republished it, if one did: the rules writing into that sink do not
    /// see it, so that a rule never loops on its own output.
    fn origin(&self) -> Option<&str>;
    /// `pub_props` as EMQX shows them (`User-Property`, `Content-Type`, ...), if it has any.
    /// Built only when a rule reads them.
    fn properties(&self) -> Option<Value>;
    /// Its id in the broker's write-ahead, if the broker kept it on disk before acknowledging
    /// it: the pipeline says when the rules are done with it (see
    /// [`InputLog`](super::write_ahead::InputLog)).
    fn write_ahead(&self) -> Option<u64> {
        None
    }
}

/// A message on its way to the rules, shared with the broker.
pub type Message = Arc<dyn Published>;
