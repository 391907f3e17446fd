//! `weir.toml`: one struct per component, every key optional, unknown keys rejected.
//!
//! Environment variables override the file: `WEIR_<SECTION>__<KEY>` (double underscore between
//! levels), for example `WEIR_LISTENERS__TCP__BIND=0.0.0.0:1884` or `WEIR_MQTT__MAX_MQUEUE_LEN=5000`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use weir_connectors::sinks::SinkConfig;
use weir_rules::tables::load::TableConfig;
use weir_types::QoS;

use crate::rate::{Rate, Rates};

/// Why a configuration could not be loaded. Each variant says which file or key is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The TOML does not parse, or a key is unknown or has a bad value.
    #[error("invalid config {origin}: {message}")]
    Invalid {
        /// The file (or `(defaults)`).
        origin: String,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A `WEIR_...` variable does not fit the config's shape.
    #[error("invalid environment override {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The whole configuration of one `weir` node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where durable state lives (retained messages, sink buffers, the default SQLite database).
    pub data_dir: PathBuf,
    /// Directory of `*.sql` rule files.
    pub rules_dir: PathBuf,
    /// `[node]`: this node's identity.
    pub node: NodeConfig,
    /// `[listeners.*]`: where MQTT is served.
    pub listeners: ListenersConfig,
    /// `[api]`: the management API.
    pub api: ApiConfig,
    /// `[mqtt]`: protocol limits and session behaviour.
    pub mqtt: MqttConfig,
    /// `[sys_topics]`: `$SYS` publication.
    pub sys_topics: SysTopicsConfig,
    /// `[retainer]`: the bounds of the retained messages.
    pub retainer: RetainerConfig,
    /// Reference tables that rules JOIN, by name: `[tables.devices]`.
    pub tables: BTreeMap<String, TableConfig>,
    /// Destinations that rules write into (`INSERT INTO <name>`), by name: `[sinks.alerts]`.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// `[alarms]`: what raises an alarm, and how often it is checked.
    pub alarms: AlarmConfig,
    /// `[durability]`: how acknowledgements wait for the disk.
    pub durability: crate::store::DurabilityConfig,
    /// `[[authentication]]`: the authenticators, tried in order. None: anyone may connect.
    pub authentication: Vec<crate::auth::config::AuthnEntry>,
    /// `[flapping_detect]`: addresses whose logins keep failing are banned for a while.
    pub flapping_detect: crate::auth::config::FlappingConfig,
    /// `[authorization]`: who may publish and subscribe to what.
    pub authorization: crate::auth::acl::AuthzConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            rules_dir: PathBuf::from("sql"),
            node: NodeConfig::default(),
            listeners: ListenersConfig::default(),
            api: ApiConfig::default(),
            mqtt: MqttConfig::default(),
            sys_topics: SysTopicsConfig::default(),
            retainer: RetainerConfig::default(),
            tables: BTreeMap::new(),
            sinks: BTreeMap::new(),
            alarms: AlarmConfig::default(),
            durability: crate::store::DurabilityConfig::default(),
            authentication: Vec::new(),
            flapping_detect: crate::auth::config::FlappingConfig::default(),
            authorization: crate::auth::acl::AuthzConfig::default(),
        }
    }
}

/// When the node raises alarms (`hub/src/alarm/monitor.rs` lists them). Watermarks are
/// percentages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// Seconds between two checks.
    pub check_interval: u64,
    /// A sink buffer this full raises `sink_buffer_high/<sink>`.
    pub sink_buffer_high_watermark: u8,
    /// A rule failing on more than this share of what it matched raises `rule_failing/<rule>`.
    pub rule_failure_watermark: u8,
    /// Connections past this share of the listeners' `max_connections` raise `connections_high`.
    pub connections_high_watermark: u8,
    /// System memory in use past this share raises `high_system_memory_usage` (EMQX's
    /// `sysmon.os.sysmem_high_watermark`, 70%).
    pub sysmem_high_watermark: u8,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            check_interval: 5,
            sink_buffer_high_watermark: 80,
            rule_failure_watermark: 50,
            connections_high_watermark: 80,
            sysmem_high_watermark: 70,
        }
    }
}

/// Identity of this node, as it appears in `$SYS` topics and the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's name, in `$SYS/brokers/<name>/...`, events and the API.
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: "weir@127.0.0.1".into() }
    }
}

/// Connections per listener by default (EMQX 4's `max_connections`).
pub(crate) const MAX_CONNECTIONS: usize = 1_024_000;

/// The MQTT listeners.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersConfig {
    /// `[listeners.tcp]`.
    pub tcp: TcpListenerConfig,
    /// `[listeners.ws]`.
    pub ws: WsListenerConfig,
    /// `[listeners.ssl]`: MQTT over TLS, once it has a certificate.
    pub ssl: crate::listener::tls::SslListenerConfig,
    /// `[listeners.wss]`: MQTT over WebSocket over TLS, once it has a certificate.
    pub wss: crate::listener::tls::WssListenerConfig,
}

/// Plain MQTT over TCP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpListenerConfig {
    /// Whether it listens at all.
    pub enable: bool,
    /// The address and port it listens on (port 0: any free one).
    pub bind: SocketAddr,
    /// Connections open at once on this listener; past it, a new socket is closed at once
    /// (logged). EMQX 4's default.
    pub max_connections: usize,
    /// PUBLISH packets each client may send (EMQX's `messages_rate`): `"infinity"`, or
    /// `"1000/s"`, `"500/10s"`; past it, the client's reads pause (see [`crate::rate`]).
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub messages_rate: Option<Rate>,
    /// Bytes each client may send (EMQX's `bytes_rate`): `"infinity"`, or `"1MB/s"`, `"64KB/s"`.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub bytes_rate: Option<Rate>,
}

impl Default for TcpListenerConfig {
    fn default() -> Self {
        TcpListenerConfig {
            enable: true,
            bind: ([0, 0, 0, 0], 1883).into(),
            max_connections: MAX_CONNECTIONS,
            messages_rate: None,
            bytes_rate: None,
        }
    }
}

impl TcpListenerConfig {
    /// The per-client limits of this listener.
    pub fn rates(&self) -> Rates {
        Rates { messages: self.messages_rate, bytes: self.bytes_rate }
    }
}

/// MQTT over WebSocket (subprotocol `mqtt`), as browsers speak it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsListenerConfig {
    /// Whether it listens at all.
    pub enable: bool,
    /// The address and port it listens on (port 0: any free one).
    pub bind: SocketAddr,
    /// The HTTP path that upgrades to MQTT; any other path is answered 404.
    pub path: String,
    /// Connections open at once on this listener, as for TCP.
    pub max_connections: usize,
    /// Seconds the HTTP upgrade may take before the socket is closed.
    pub handshake_timeout: u64,
    /// The largest WebSocket frame, and message, taken (bytes): keep it above
    /// `[mqtt] max_packet_size`. A larger one closes the connection before it is buffered.
    pub max_frame_size: usize,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub messages_rate: Option<Rate>,
    /// As for TCP.
    #[serde(deserialize_with = "crate::rate::deserialize")]
    pub bytes_rate: Option<Rate>,
}

impl WsListenerConfig {
    /// The per-client limits of this listener.
    pub fn rates(&self) -> Rates {
        Rates { messages: self.messages_rate, bytes: self.bytes_rate }
    }
}

impl Default for WsListenerConfig {
    fn default() -> Self {
        WsListenerConfig {
            enable: true,
            bind: ([0, 0, 0, 0], 8083).into(),
            path: "/mqtt".into(),
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: 15,
            max_frame_size: 2 * 1024 * 1024,
            messages_rate: None,
            bytes_rate: None,
        }
    }
}

/// The management HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Whether it is served at all.
    pub enable: bool,
    /// The address and port it listens on.
    pub bind: SocketAddr,
    /// `key:secret` that the API accepts as basic auth, to make API keys with and for scripts;
    /// without it (and with no API key made), only Prometheus's route can be used.
    pub bootstrap_key: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { enable: true, bind: ([127, 0, 0, 1], 18083).into(), bootstrap_key: None }
    }
}

/// Protocol limits and session behaviour; defaults are EMQX's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Largest packet accepted from a client, and advertised to v5 clients (bytes).
    pub max_packet_size: u32,
    /// Messages held per session beyond its inflight window; the oldest is dropped past this.
    pub max_mqueue_len: usize,
    /// Unacknowledged QoS 1/2 messages in flight to one client (capped by its Receive Maximum).
    pub max_inflight: u16,
    /// Incoming QoS 2 messages awaiting PUBREL per client.
    pub max_awaiting_rel: usize,
    /// Topic aliases a v5 client may use towards the broker.
    pub max_topic_alias: u16,
    /// Highest QoS granted to a subscription.
    pub max_qos_allowed: QoS,
    /// Session expiry for v3 clients that connect with `clean_session = false` (seconds).
    pub session_expiry_interval: u32,
    /// Seconds a new socket may take to send CONNECT.
    pub idle_timeout: u64,
    /// A client is dropped after `keepalive × keepalive_multiplier` seconds of silence.
    pub keepalive_multiplier: f64,
    /// If set, overrides the keep alive of MQTT 5 clients (sent as Server Keep Alive).
    pub server_keepalive: Option<u16>,
    /// Whether QoS 0 messages are queued for offline persistent sessions.
    pub mqueue_store_qos0: bool,
    /// When a connected subscriber's queue is full, publishers to it pause (stop being read) for
    /// at most this many milliseconds before its queue falls back to dropping the oldest message.
    /// 0 never pauses publishers: a full queue always drops, as EMQX does.
    pub backpressure_timeout: u64,
    /// Milliseconds a write to a client may stay blocked (the client reads nothing) before the
    /// client is disconnected. EMQX's `send_timeout`, 15 s. Never 0.
    pub send_timeout: std::num::NonZeroU64,
    /// The longest client id accepted (bytes); a longer one is refused with CONNACK 0x85.
    pub max_clientid_len: usize,
    /// The most levels a topic name or filter may have; more is refused (PUBLISH: DISCONNECT
    /// 0x90; SUBSCRIBE: SUBACK 0x8F).
    pub max_topic_levels: usize,
    /// Subscriptions one session may hold; past it, SUBACK 0x97 (Quota exceeded). EMQX's
    /// default is no limit; Weir's is finite, as every resource a client can grow has a bound.
    pub max_subscriptions: usize,
    /// The longest MQTT 5 Session Expiry Interval honoured (seconds); a longer one is cut to it,
    /// and CONNACK says so.
    pub max_session_expiry_interval: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            max_packet_size: 1024 * 1024,
            max_mqueue_len: 1000,
            max_inflight: 32,
            max_awaiting_rel: 100,
            max_topic_alias: 65535,
            max_qos_allowed: QoS::ExactlyOnce,
            session_expiry_interval: 2 * 3600,
            idle_timeout: 15,
            keepalive_multiplier: 1.5,
            server_keepalive: None,
            mqueue_store_qos0: true,
            backpressure_timeout: 1000,
            send_timeout: std::num::NonZeroU64::new(15_000).unwrap_or(std::num::NonZeroU64::MIN),
            max_clientid_len: 65535,
            max_topic_levels: 128,
            max_subscriptions: 10_000,
            max_session_expiry_interval: 7 * 24 * 3600,
        }
    }
}

/// The bounds of the retained messages, with EMQX's names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetainerConfig {
    /// Topics with a retained message, at most; a message that would retain on a new topic past
    /// it is routed but not retained (logged). EMQX's default is no limit (0); Weir's is finite.
    pub max_retained_messages: usize,
    /// The largest payload retained (bytes); a larger one is routed but not retained. EMQX's 1 MB.
    pub max_payload_size: usize,
}

impl Default for RetainerConfig {
    fn default() -> Self {
        RetainerConfig { max_retained_messages: 1_000_000, max_payload_size: 1024 * 1024 }
    }
}

/// `$SYS/brokers/<node>/...` publication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SysTopicsConfig {
    /// Seconds between two publications; 0 turns `$SYS` off.
    pub sys_msg_interval: u64,
}

impl Default for SysTopicsConfig {
    fn default() -> Self {
        SysTopicsConfig { sys_msg_interval: 60 }
    }
}

impl Config {
    /// Loads `path` (or the defaults when `None`), then applies `WEIR_*` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => {
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.to_path_buf(), source })?
            }
            None => String::new(),
        };
        let origin = path.map_or_else(|| "(defaults)".to_string(), |p| p.display().to_string());
        Self::from_toml_with_env(&text, &origin, std::env::vars())
    }

    /// Parses TOML text and applies overrides from `env` (pairs of name and value).
    pub fn from_toml_with_env(
        text: &str,
        origin: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        for (var, value) in env {
            let Some(path) = var.strip_prefix("WEIR_") else {
                continue;
            };
            // Variables that are flags of the CLI (`weir ctl --key` is WEIR_API_KEY), not config keys.
            if matches!(path, "CONFIG" | "LOG" | "API_KEY") {
                continue;
            }
            apply_env(&mut doc, &var, path, &value)?;
        }
        Config::deserialize(toml::Value::Table(doc))
            .map_err(|e| ConfigError::Invalid { origin: origin.to_string(), message: e.to_string() })
    }
}

/// Sets `a__b__c = value` in the document; the value is read as TOML (number, bool...) or else as a string.
fn apply_env(doc: &mut toml::Table, var: &str, path: &str, value: &str) -> Result<(), ConfigError> {
    let keys: Vec<String> = path.split("__").map(|k| k.to_ascii_lowercase()).collect();
    let (last, parents) =
        keys.split_last().ok_or_else(|| ConfigError::Env { var: var.to_string(), message: "empty key".into() })?;
    let mut table = doc;
    for key in parents {
        let entry = table.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::Env { var: var.to_string(), message: format!("`{key}` is not a table") })?;
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    table.insert(last.clone(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_emqx_ports() {
        let c = Config::from_toml_with_env("", "t", std::iter::empty()).unwrap();
        assert_eq!(c.listeners.tcp.bind.port(), 1883);
        assert_eq!(c.listeners.ws.bind.port(), 8083);
        assert_eq!(c.listeners.ws.path, "/mqtt");
        assert_eq!(c.api.bind.port(), 18083);
        assert_eq!(c.mqtt.max_mqueue_len, 1000);
        assert_eq!(c.durability, crate::store::DurabilityConfig { mode: crate::store::Mode::Sync, interval: 100 });
    }

    #[test]
    fn durability_takes_a_mode_and_an_interval() {
        let toml = "[durability]\nmode = \"async\"\ninterval = 20";
        let d = Config::from_toml_with_env(toml, "t", std::iter::empty()).unwrap().durability;
        assert_eq!((d.mode, d.interval), (crate::store::Mode::Async, 20));
        let err = Config::from_toml_with_env("[durability]\nmode = \"fast\"", "w.toml", std::iter::empty());
        let err = err.unwrap_err().to_string();
        assert!(err.contains("fast") && err.contains("w.toml"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml_with_env("[listeners.tcp]\nbnd = \"1.2.3.4:1\"", "w.toml", std::iter::empty())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnd"), "{err}");
        assert!(err.contains("w.toml"), "{err}");
    }

    #[test]
    fn env_overrides_file() {
        let env = vec![
            ("WEIR_LISTENERS__TCP__BIND".to_string(), "127.0.0.1:1999".to_string()),
            ("WEIR_MQTT__MAX_MQUEUE_LEN".to_string(), "7".to_string()),
            ("WEIR_DATA_DIR".to_string(), "/tmp/x".to_string()),
        ];
        let c = Config::from_toml_with_env("[mqtt]\nmax_mqueue_len = 3", "t", env.into_iter()).unwrap();
        assert_eq!(c.listeners.tcp.bind.port(), 1999);
        assert_eq!(c.mqtt.max_mqueue_len, 7);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn listener_rates_read_emqx_notation_and_name_the_key_when_wrong() {
        let parse = |text: &str| Config::from_toml_with_env(text, "t", std::iter::empty());
        let c = parse("[listeners.tcp]\nmessages_rate = \"1000/s\"\nbytes_rate = \"infinity\"").unwrap();
        assert_eq!(c.listeners.tcp.rates().messages.map(|r| r.amount), Some(1000.0));
        assert_eq!(c.listeners.tcp.rates().bytes, None);
        assert_eq!(parse("").unwrap().listeners.ws.rates(), crate::rate::Rates::default());
        let err = parse("[listeners.ws]\nbytes_rate = \"lots\"").unwrap_err().to_string();
        assert!(err.contains("bytes_rate") && err.contains("lots"), "{err}");
    }

    #[test]
    fn unknown_env_key_is_named() {
        let env = vec![("WEIR_MQTT__NOPE".to_string(), "1".to_string())];
        let err = Config::from_toml_with_env("", "t", env.into_iter()).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn tables_name_their_missing_and_unknown_keys() {
        let parse = |text: &str| Config::from_toml_with_env(text, "t", std::iter::empty());
        let ok = parse("[tables.devices]\ntype = \"csv\"\npath = \"d.csv\"").unwrap();
        assert_eq!(ok.tables["devices"].refresh(), 60);
        let err = parse("[tables.devices]\ntype = \"csv\"").unwrap_err().to_string();
        assert!(err.contains("path"), "{err}");
        let err = parse("[tables.devices]\ntype = \"csv\"\npath = \"d.csv\"\nfile = 1").unwrap_err().to_string();
        assert!(err.contains("file"), "{err}");
        let err = parse("[tables.devices]\ntype = \"excel\"").unwrap_err().to_string();
        assert!(err.contains("excel"), "{err}");
    }
}
