//! weir-hub: the broker core of Weir, and the point where rules and sinks are wired in.
//!
//! How the modules fit together, following a message:
//!
//! - [`listener`] accepts sockets (`tcp`, `ws`) and gives each to [`connection`].
//! - [`connection`] runs one client: [`protocol`] frames bytes into MQTT packets (3.1, 3.1.1 and
//!   5.0, all seen as 5.0 packets), and the connection applies them to its [`session`].
//! - A PUBLISH becomes a [`message::Message`] and goes to [`broker::Broker::publish`], which
//!   stores it in [`retain`] if retained and asks the [`router`] (a topic [`router::trie`]) for
//!   the matching subscriptions; each gets a [`message::Delivery`] in its session's mailbox.
//! - [`rule_engine`] gets every published message whose topic a rule's FROM matches, and runs
//!   the rules of `rules_dir` on them in batches, off the MQTT path; [`events`] builds the
//!   columns of `$events/...` (connects, subscriptions, deliveries, drops) for the rules;
//!   [`tables`] loads the reference tables rules JOIN; [`sinks`] runs the destinations that
//!   `INSERT INTO` rules write into (Kafka, PostgreSQL, SQLite, HTTP, MQTT), each behind a
//!   durable buffer (from `weir-connectors`).
//! - The connection owning a session drains its mailbox onto the socket within the inflight
//!   window; sessions outlive connections until they expire.
//! - [`api`] serves the management API (`/api/v5/...`, EMQX's paths);
//!   [`sys`] publishes `$SYS` topics; [`metrics`] counts; [`config`] is `weir.toml`;
//!   [`server`] starts and stops it all; [`transport`] is what a connection runs on.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod broker;
pub mod config;
pub mod connection;
pub mod events;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod protocol;
pub mod retain;
pub mod router;
pub mod server;
pub mod session;
pub mod sys;
pub mod transport;

pub use config::Config;
pub use server::Server;
