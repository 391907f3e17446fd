//! weir-connectors: how Weir talks to the systems around it. It delivers rows, JSON objects, and
//! knows nothing of MQTT sessions or of rules.
//!
//! - [`row`]: rows as they travel ([`row::RowBatch`], from the rules to a destination) and as
//!   destinations read them ([`row::Row`]).
//! - [`sink`]: the contract a destination implements (write a batch, check health).
//! - [`driver`]: the one delivery loop: durable buffer → batches → destination → confirm, and
//!   its settings ([`driver::DeliveryConfig`]).
//! - [`buffer`]: the durable buffer, a checksummed segment log under the data directory.
//! - [`sinks`]: `[sinks.<name>]` ([`sinks::SinkConfig`]), one folder per destination (`http`,
//!   `kafka`, `mqtt`, `postgres`, `sqlite`), and [`sinks::start`] to run one from its config.
//! - [`template`]: EMQX's `${field}` templates.
//! - [`tls`]: outgoing TLS (`ssl = { ... }`), shared by the sinks that speak it.
//! - [`metrics`]: a sink's counters, named as EMQX's.
//! - [`query`]: the rows of an SQL query on PostgreSQL or SQLite (reference tables for JOIN).
//! - `testing` (feature `testing`): a destination in memory, for the tests of other crates.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buffer;
pub mod driver;
pub mod metrics;
pub mod query;
pub mod row;
pub mod sink;
pub mod sinks;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
