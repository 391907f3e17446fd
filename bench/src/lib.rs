//! weir-bench: Weir's load tool, in the spirit of emqtt-bench, for any MQTT broker; and the raw
//! MQTT client it is built on, which Weir's end-to-end tests use too.
//!
//! - [`client`]: a raw MQTT 3.1.1 and 5.0 client that acknowledges nothing by itself.
//! - [`load`]: what every load shares: options, connecting many clients, frames as a load sees
//!   them.
//! - [`conn`], [`sub`], [`publish`]: the loads (`weir-bench conn|sub|pub`); [`report`]: their
//!   progress lines and `summary:` figures.
//! - [`kafka`]: rows produced straight to Kafka, the ceiling a Kafka sink is measured against.
//!
//! It is kept out of the `weir` binary: the product links neither this client nor
//! hdrhistogram, nor the Kafka producer code the ceiling needs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod conn;
pub mod kafka;
pub mod load;
pub mod publish;
pub mod report;
pub mod stream;
pub mod sub;
