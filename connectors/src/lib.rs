//! weir-connectors: how Weir talks to the systems around it. Rows cross this crate as JSON
//! objects; it knows nothing of MQTT sessions or of rules.
//!
//! - [`config`]: `[sinks.<name>]`, a destination and how rows reach it.
//! - [`sink`]: the contract a destination implements (write a batch, check health).
//! - [`driver`]: the one delivery loop: durable buffer → batches → destination → confirm.
//! - [`buffer`]: the durable buffer, a checksummed segment log under the data directory.
//! - [`row`]: a row as sinks see it, a JSON object read back from the buffer.
//! - [`template`]: EMQX's `${field}` templates.
//! - [`metrics`]: a sink's counters, named as EMQX's.
//! - [`sinks`]: one module per destination, and [`sinks::start`] to run one from its config.
//! - [`query`]: the rows of an SQL query on PostgreSQL or SQLite (reference tables for JOIN).

pub mod buffer;
pub mod config;
pub mod driver;
pub mod metrics;
pub mod query;
pub mod row;
pub mod sink;
pub mod sinks;
pub mod template;
