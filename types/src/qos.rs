//! MQTT's quality-of-service levels.

use serde::Deserialize;

/// An MQTT quality-of-service level. Ordered, so that a delivery takes the lower of the
/// message's and the subscription's with `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize)]
#[serde(try_from = "u8")]
pub enum QoS {
    /// 0: at most once, never acknowledged.
    #[default]
    AtMostOnce,
    /// 1: at least once, acknowledged by PUBACK; may arrive twice.
    AtLeastOnce,
    /// 2: exactly once, through PUBREC, PUBREL and PUBCOMP.
    ExactlyOnce,
}

/// A number that is not a QoS level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a QoS level: use 0, 1 or 2")]
pub struct InvalidQoS(pub u8);

impl QoS {
    /// The level as MQTT numbers it: 0, 1 or 2.
    pub fn level(self) -> u8 {
        match self {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
            QoS::ExactlyOnce => 2,
        }
    }
}

impl TryFrom<u8> for QoS {
    type Error = InvalidQoS;

    fn try_from(level: u8) -> Result<QoS, InvalidQoS> {
        match level {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            other => Err(InvalidQoS(other)),
        }
    }
}

impl From<QoS> for u8 {
    fn from(q: QoS) -> u8 {
        q.level()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_order() {
        for level in 0..=2u8 {
            assert_eq!(QoS::try_from(level).map(u8::from), Ok(level));
        }
        assert_eq!(QoS::try_from(3), Err(InvalidQoS(3)));
        assert!(QoS::AtMostOnce < QoS::AtLeastOnce && QoS::AtLeastOnce < QoS::ExactlyOnce);
        assert_eq!(QoS::ExactlyOnce.min(QoS::AtLeastOnce), QoS::AtLeastOnce);
    }

    #[test]
    fn config_values_are_levels() {
        #[derive(Debug, Deserialize)]
        struct C {
            qos: QoS,
        }
        assert_eq!(toml::from_str::<C>("qos = 2").map(|c| c.qos).ok(), Some(QoS::ExactlyOnce));
        let err = toml::from_str::<C>("qos = 3").unwrap_err().to_string();
        assert!(err.contains("3 is not a QoS level"), "{err}");
    }
}
