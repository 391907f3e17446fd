//! weir-connectors: how Weir talks to the systems around it. Rows cross this crate as JSON
//! objects; it knows nothing of MQTT or of rules.
//!
//! - [`query`]: the rows of an SQL query on PostgreSQL or SQLite (reference tables for JOIN).
//!
//! The sink contract, the delivery driver with its durable buffer, and one module per
//! destination (Kafka, PostgreSQL, SQLite, HTTP, MQTT) arrive with issue 4.

pub mod query;
