//! The contract every destination implements; the driver ([`crate::driver`]) does the rest
//! (buffering, batching, retries, health, metrics), the same way for all of them.

use std::future::Future;
use std::time::Duration;

use crate::row::Row;

/// Why a batch was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The destination cannot take it now (down, overloaded, timed out): the batch is retried,
    /// after `retry_after` when the destination said so (HTTP `Retry-After`).
    #[error("{reason}")]
    Transient {
        /// What went wrong, for the log.
        reason: String,
        /// How long the destination asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The destination refused the rows themselves (a type error, a constraint): retrying
    /// would fail again. The driver narrows a refused batch down to the rows at fault.
    #[error("{reason}")]
    Rejected {
        /// Why, as the destination said it.
        reason: String,
    },
    /// Most likely the rows' fault, but it could pass (a Kafka topic named by the row that does
    /// not exist yet): retried a few times, then treated as [`WriteError::Rejected`].
    #[error("{reason}")]
    Suspect {
        /// What went wrong, for the log.
        reason: String,
    },
}

impl WriteError {
    /// A failure worth retrying.
    pub fn transient(reason: impl ToString) -> WriteError {
        WriteError::Transient { reason: reason.to_string(), retry_after: None }
    }

    /// A refusal of the rows themselves.
    pub fn rejected(reason: impl ToString) -> WriteError {
        WriteError::Rejected { reason: reason.to_string() }
    }

    /// A failure that is most likely the rows' fault.
    pub fn suspect(reason: impl ToString) -> WriteError {
        WriteError::Suspect { reason: reason.to_string() }
    }
}

/// Why a destination failed its health check: it is down, or cannot take rows yet. The rows
/// wait in the buffer meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct CheckError {
    /// What the check found, for the log and the API.
    pub reason: String,
}

impl CheckError {
    /// A failed check, with what it found.
    pub fn new(reason: impl ToString) -> CheckError {
        CheckError { reason: reason.to_string() }
    }
}

impl From<WriteError> for CheckError {
    fn from(e: WriteError) -> CheckError {
        CheckError::new(e)
    }
}

/// A destination.
pub trait Sink: Send + Sync + 'static {
    /// Delivers `rows`; `Ok` means the destination has confirmed every one of them.
    fn write(&self, rows: &[Row]) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Whether the destination can be reached now. It never drops a connection that buffered
    /// rows are waiting on, nor the rows.
    fn check(&self) -> impl Future<Output = Result<(), CheckError>> + Send;
}

/// The state of a sink's destination, as EMQX reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not yet reached since the start.
    Connecting = 0,
    /// The last write or check succeeded.
    Connected = 1,
    /// The last write or check failed; rows wait in the buffer.
    Disconnected = 2,
}

impl Health {
    /// The health stored as `as u8`; unknown values read as connecting.
    pub fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Connected,
            2 => Health::Disconnected,
            _ => Health::Connecting,
        }
    }

    /// The status as EMQX's API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Connecting => "connecting",
            Health::Connected => "connected",
            Health::Disconnected => "disconnected",
        }
    }
}
