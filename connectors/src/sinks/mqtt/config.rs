//! `[sinks.<name>]` with `type = "mqtt"`.

use serde::Deserialize;
use weir_types::QoS;

/// An MQTT destination: into this broker (no `server`) or another (`server = "host:port"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Topic template.
    pub topic: String,
    /// 0, 1 or 2.
    #[serde(default)]
    pub qos: QoS,
    /// Whether the messages are retained.
    #[serde(default)]
    pub retain: bool,
    /// Payload template (default `${.}`: the row as JSON).
    pub payload: Option<String>,
    /// A remote broker, `host:port`: the sink is then a bridge.
    pub server: Option<String>,
    /// The bridge's client id (default `weir-bridge-<sink name>`).
    pub clientid: Option<String>,
    /// The bridge's user name on the remote broker.
    pub username: Option<String>,
    /// The bridge's password on the remote broker.
    pub password: Option<String>,
    /// TLS to the remote broker (`ssl = { cacertfile = ..., ... }`; see `crate::tls`).
    pub ssl: Option<crate::tls::ClientTls>,
}
