//! weir-types: the little that every Weir crate shares, so that none of them has to depend on
//! another for it.
//!
//! - [`QoS`]: an MQTT quality-of-service level, the one type for it on every interface (the
//!   broker, the rules' `qos` column, the MQTT sink's config and its republish path).
//! - [`topic`]: topic names and filters as MQTT 5.0 defines them: validation, `$share`/`$queue`
//!   parsing, and filter matching (the broker's routing and the rules' `=~` and FROM).
//! - [`trie`]: the topic trie that answers "which filters match this topic", used by the
//!   broker's subscription table and by the rules' index of FROM filters alike.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod qos;
pub mod topic;
pub mod trie;

pub use qos::{InvalidQoS, QoS};
