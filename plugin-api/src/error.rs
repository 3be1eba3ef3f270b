//! The typed error a connector returns, and its mapping to and from the ABI.

use std::time::Duration;

use abi_stable::std_types::RString;

use crate::abi::{error_kind, FfiError};

/// What went wrong in a connector. The kind tells the host what to do next:
/// `Transient` and `RateLimited` are retried with backoff, everything else is not.
///
/// ```
/// use posbridge_plugin_api::ConnectorError;
/// let err = ConnectorError::RateLimited { retry_after: Some(std::time::Duration::from_secs(1)), message: "429".into() };
/// assert!(err.is_retryable());
/// assert!(!ConnectorError::Auth("bad key".into()).is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The configuration is wrong (a value the schema could not catch).
    #[error("configuration error: {0}")]
    Config(String),
    /// Credentials were refused by the vendor.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The vendor asked us to slow down.
    #[error("rate limited: {message}")]
    RateLimited {
        /// How long to wait before the next request, when the vendor said.
        retry_after: Option<Duration>,
        /// What the vendor answered.
        message: String,
    },
    /// A failure that may pass on retry (5xx, timeout, dropped connection).
    #[error("transient error: {0}")]
    Transient(String),
    /// A failure that will not pass on retry (4xx, invalid data).
    #[error("permanent error: {0}")]
    Permanent(String),
    /// A defect in the connector (including a panic caught at the boundary).
    #[error("connector bug: {0}")]
    Bug(String),
    /// The host cancelled the work.
    #[error("cancelled")]
    Cancelled,
}

impl ConnectorError {
    /// Whether the host should retry the call after a backoff.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// A short name of the kind, as shown in logs and dead-letter reasons.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Auth(_) => "auth",
            Self::RateLimited { .. } => "rate_limited",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
            Self::Bug(_) => "bug",
            Self::Cancelled => "cancelled",
        }
    }
}

#[doc(hidden)] // the ABI side, for the SDK and the host
impl From<ConnectorError> for FfiError {
    fn from(e: ConnectorError) -> Self {
        let (kind, message, retry) = match e {
            ConnectorError::Config(m) => (error_kind::CONFIG, m, 0),
            ConnectorError::Auth(m) => (error_kind::AUTH, m, 0),
            ConnectorError::RateLimited {
                retry_after,
                message,
            } => (
                error_kind::RATE_LIMITED,
                message,
                retry_after.map(|d| d.as_millis() as u64).unwrap_or(0),
            ),
            ConnectorError::Transient(m) => (error_kind::TRANSIENT, m, 0),
            ConnectorError::Permanent(m) => (error_kind::PERMANENT, m, 0),
            ConnectorError::Bug(m) => (error_kind::BUG, m, 0),
            ConnectorError::Cancelled => (error_kind::CANCELLED, String::new(), 0),
        };
        FfiError {
            kind,
            message: RString::from(message),
            retry_after_ms: retry,
        }
    }
}

#[doc(hidden)] // the ABI side, for the SDK and the host
impl From<FfiError> for ConnectorError {
    fn from(e: FfiError) -> Self {
        let m = e.message.into_string();
        match e.kind {
            error_kind::CONFIG => Self::Config(m),
            error_kind::AUTH => Self::Auth(m),
            error_kind::RATE_LIMITED => Self::RateLimited {
                retry_after: (e.retry_after_ms > 0)
                    .then(|| Duration::from_millis(e.retry_after_ms)),
                message: m,
            },
            error_kind::TRANSIENT => Self::Transient(m),
            error_kind::PERMANENT => Self::Permanent(m),
            error_kind::CANCELLED => Self::Cancelled,
            _ => Self::Bug(m),
        }
    }
}

impl From<serde_json::Error> for ConnectorError {
    fn from(e: serde_json::Error) -> Self {
        Self::Permanent(format!("invalid JSON: {e}"))
    }
}
