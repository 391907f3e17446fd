//! Why incoming bytes are not a packet Weir takes: what ntex-mqtt's decoder says, or what Weir's
//! own checks before it find (`frame`, `properties`). The decoder has no way to say "protocol
//! error" or "Topic Alias invalid", which MQTT 5 answers with reason codes of their own.

use ntex_mqtt::error::DecodeError;

/// A refused inbound packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// From the decoder or the framing: malformed (0x81), too large (0x95), ...
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A protocol error (0x82): what the packet did.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A Topic Alias of 0 (0x94).
    #[error("Topic Alias 0")]
    TopicAliasZero,
}

impl InboundError {
    /// A malformed packet.
    pub(super) fn malformed() -> InboundError {
        InboundError::Decode(DecodeError::MalformedPacket)
    }
}
