//! What can go wrong with a payment operation, with a stable code and HTTP status for the API.

use posbridge_plugin_api::ConnectorError;

use super::SealedError;
use crate::plugins::ConfigViolation;
use crate::state::StateError;

/// A failed payment operation. Messages carry no secret (connector errors are redacted by the
/// connector handle).
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// A provider of the BEEP! API that has no connector yet.
    #[error("PSP provider {provider:?} is not supported yet; supported: {}", supported.join(", "))]
    ProviderNotSupportedYet {
        provider: String,
        supported: Vec<String>,
    },
    /// A name that is no provider at all.
    #[error("unknown PSP provider {provider:?}; supported: {}", supported.join(", "))]
    UnknownProvider {
        provider: String,
        supported: Vec<String>,
    },
    /// The provider's connector is not in the plugin folders.
    #[error("the {connector} connector is not loaded (is its library in the plugin folder?)")]
    ConnectorNotLoaded { connector: String },
    /// The config breaks the connector's schema.
    #[error("invalid PSP config: {}", violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidConfig { violations: Vec<ConfigViolation> },
    /// The connector's check refused the config (e.g. the key is wrong).
    #[error("the {provider} check failed: {message}")]
    CheckFailed { provider: String, message: String },
    /// No PSP was configured for the store.
    #[error("no PSP is configured for store {store_id:?}; configure one first")]
    NotConfigured { store_id: String },
    /// The client's idempotency key is missing or malformed.
    #[error("invalid idempotency key: {0}")]
    InvalidKey(String),
    /// The request body is not what the operation takes.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The key was used before for a different request.
    #[error("idempotency key {key:?} was already used for a different request; use a new key for a new payment")]
    KeyReused { key: String },
    /// A request with the same key is being processed.
    #[error("a request with idempotency key {key:?} is still being processed; try again shortly")]
    InProgress { key: String },
    /// The PSP (or its connector) refused or failed.
    #[error("{0}")]
    Psp(ConnectorError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The sealed store failed.
    #[error(transparent)]
    Sealed(#[from] SealedError),
}

impl PaymentError {
    /// A stable code for the API's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProviderNotSupportedYet { .. } => "provider_not_supported",
            Self::UnknownProvider { .. } => "unknown_provider",
            Self::ConnectorNotLoaded { .. } => "connector_not_loaded",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::CheckFailed { .. } => "psp_check_failed",
            Self::NotConfigured { .. } => "psp_not_configured",
            Self::InvalidKey(_) => "invalid_idempotency_key",
            Self::InvalidInput(_) => "invalid_input",
            Self::KeyReused { .. } => "idempotency_key_reused",
            Self::InProgress { .. } => "idempotency_key_in_use",
            Self::Psp(ConnectorError::Auth(_)) => "psp_auth",
            Self::Psp(ConnectorError::RateLimited { .. }) => "psp_rate_limited",
            Self::Psp(ConnectorError::Transient(_)) | Self::Psp(ConnectorError::Cancelled) => {
                "psp_unavailable"
            }
            Self::Psp(ConnectorError::Config(_)) | Self::Psp(ConnectorError::Permanent(_)) => {
                "psp_refused"
            }
            Self::Psp(ConnectorError::Bug(_)) | Self::State(_) | Self::Sealed(_) => "internal",
        }
    }

    /// The HTTP status the API answers it with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::ProviderNotSupportedYet { .. }
            | Self::UnknownProvider { .. }
            | Self::InvalidConfig { .. }
            | Self::InvalidKey(_)
            | Self::InvalidInput(_) => 400,
            Self::CheckFailed { .. } => 422,
            Self::NotConfigured { .. } => 409,
            Self::KeyReused { .. } | Self::InProgress { .. } => 409,
            Self::Psp(ConnectorError::Auth(_)) => 502,
            Self::Psp(ConnectorError::RateLimited { .. }) => 429,
            Self::Psp(ConnectorError::Transient(_)) | Self::Psp(ConnectorError::Cancelled) => 503,
            Self::Psp(ConnectorError::Config(_)) | Self::Psp(ConnectorError::Permanent(_)) => 422,
            Self::ConnectorNotLoaded { .. }
            | Self::Psp(ConnectorError::Bug(_))
            | Self::State(_)
            | Self::Sealed(_) => 500,
        }
    }
}
