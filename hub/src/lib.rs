//! weir-hub: the broker core of Weir: sockets, sessions, routing, retained messages, `$SYS`
//! and the management API. It hands each message a rule wants to the rule pipeline
//! (`weir-rules`) through the pipeline's one door, and takes a rule's republish back through
//! the `LocalBroker` trait it implements.
//!
//! How the modules fit together, following a message:
//!
//! - [`listener`] accepts sockets (`tcp`, `ws`, and `tls` for `ssl` and `wss`) and gives each
//!   to [`connection`], which runs one
//!   client by phase: handshake, the packet loop, goodbye. [`protocol`] frames its bytes into
//!   MQTT packets (3.1, 3.1.1 and 5.0, all seen as 5.0 packets); [`transport`] is what it runs on.
//! - Everything a connection asks of the node goes through [`broker::Broker`], the front door:
//!   connect (or take a session over), subscribe, unsubscribe, publish with its back-pressure
//!   verdict, disconnect.
//! - A PUBLISH becomes a [`message::Message`]. The broker stores it in [`retain`] if retained,
//!   hands it to the rules if one wants its topic, and asks the [`router`] where it goes: each
//!   destination is a [`router::Route`], today a local [`session`], whose mailbox gets a
//!   [`message::Delivery`].
//! - The connection owning a session drains its mailbox onto the socket within the inflight
//!   window; sessions outlive connections until they expire.
//! - [`store`] keeps on disk what must survive a restart or a crash: retained messages,
//!   persistent sessions and their deliveries, and the rules' input, written ahead of the
//!   publisher's acknowledgement.
//! - [`auth`] decides who may connect (the `[[authentication]]` chain, at CONNECT) and what
//!   they may publish and subscribe to (`[authorization]`, checked by the connection).
//! - [`rate`] holds a listener's per-client `messages_rate` and `bytes_rate`, enforced by
//!   pausing the client's reads.
//! - [`events`] builds the columns of `$events/...` for the rules; [`alarm`] raises and clears
//!   alarms (`$events/sys/alarm_*`, `/api/v5/alarms`); [`sys`] publishes `$SYS` topics; [`metrics`] counts; [`api`] serves `/api/v5/...` with EMQX's paths; [`config`] is
//!   `weir.toml`; [`server`] starts and stops it all, the rule pipeline included.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alarm;
pub mod api;
pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod events;
pub mod listener;
pub mod message;
pub mod metrics;
pub mod protocol;
pub mod rate;
pub mod retain;
pub mod router;
pub mod server;
pub mod session;
pub mod store;
pub mod sys;
pub mod transport;

pub use config::Config;
pub use server::Server;
