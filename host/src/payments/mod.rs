//! Card payments through a payment service provider (PSP), per store: `configure_psp`, then
//! `process_payment` / `refund_payment`, idempotent by the client's key.
//!
//! - [`providers`]: which PSPs there are and which one is supported (stripe).
//! - [`SealedStore`]: where a store's PSP config is kept encrypted (the `serve` vault backs it).
//! - [`idempotency`]: a client's key → the request's fingerprint and its first answer, in the
//!   state store, so the same key twice charges once and answers the first result.
//! - [`Payments`]: the three operations. They block (the connector's calls do): call them from
//!   a blocking thread (`tokio::task::spawn_blocking`).

mod error;
pub mod idempotency;
pub mod providers;
mod sealed;

use std::sync::Arc;

use serde_json::{json, Value};

pub use error::PaymentError;
pub use idempotency::{fingerprint, IdempotentAnswer};
pub use providers::{SUPPORTED_PROVIDERS, UNSUPPORTED_PROVIDERS};
pub use sealed::{MemorySealedStore, SealedError, SealedStore};

use crate::plugins::{ConnectorHandle, OpenError, OpenOptions, Registry};
use crate::state::StateStore;

/// The purpose a store's PSP config is sealed under.
pub const PSP_PURPOSE: &str = "psp";

/// The longest client idempotency key (Stripe takes up to 255 characters, and the store id is
/// put in front of it).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// What `configure_psp` answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PspConfigured {
    /// The store.
    pub store_id: String,
    /// The provider now configured.
    pub provider: String,
    /// The connector's check message (e.g. "secret key accepted (test mode)").
    pub check: String,
}

/// The payment operations, backed by the loaded connectors, the sealed configs and the state
/// store.
#[derive(Clone)]
pub struct Payments {
    registry: Arc<Registry>,
    sealed: Arc<dyn SealedStore>,
    state: Arc<dyn StateStore>,
}

/// The two operations a client key can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Payment,
    Refund,
}

impl Operation {
    /// The connector action that carries it out.
    fn action(self) -> &'static str {
        match self {
            Self::Payment => "process_payment",
            Self::Refund => "refund_payment",
        }
    }
}

impl Payments {
    /// The operations over these connectors, sealed configs and state.
    pub fn new(
        registry: Arc<Registry>,
        sealed: Arc<dyn SealedStore>,
        state: Arc<dyn StateStore>,
    ) -> Self {
        Self {
            registry,
            sealed,
            state,
        }
    }

    /// Sets a store's PSP: the provider must be supported, the config must pass the connector's
    /// JSON Schema (errors name the JSON path) and its check (the credentials work); then it is
    /// sealed, replacing any earlier one.
    pub fn configure_psp(
        &self,
        store_id: &str,
        provider: &str,
        config: &Value,
    ) -> Result<PspConfigured, PaymentError> {
        let connector = providers::connector_of(provider)?;
        let handle = self.open(connector, config)?;
        let report = handle.check().map_err(PaymentError::Psp)?;
        if !report.ok {
            return Err(PaymentError::CheckFailed {
                provider: connector.to_string(),
                message: handle.redactor().redact(&report.message),
            });
        }
        self.sealed.put(
            store_id,
            PSP_PURPOSE,
            &json!({"provider": connector, "config": config}),
        )?;
        tracing::info!(store = store_id, provider = connector, "PSP configured");
        Ok(PspConfigured {
            store_id: store_id.to_string(),
            provider: connector.to_string(),
            check: handle.redactor().redact(&report.message),
        })
    }

    /// The provider configured for a store, if any.
    pub fn provider(&self, store_id: &str) -> Result<Option<String>, PaymentError> {
        Ok(self.sealed.get(store_id, PSP_PURPOSE)?.and_then(|v| {
            v.get("provider")
                .and_then(Value::as_str)
                .map(str::to_string)
        }))
    }

    /// Takes a payment (the connector's `process_payment` input, without `idempotency_key`):
    /// the same `idempotency_key` again answers the first result and charges nothing.
    pub fn process_payment(
        &self,
        store_id: &str,
        idempotency_key: &str,
        input: &Value,
    ) -> Result<IdempotentAnswer, PaymentError> {
        self.operate(Operation::Payment, store_id, idempotency_key, input)
    }

    /// Refunds a payment (the connector's `refund_payment` input, without `idempotency_key`),
    /// idempotent like [`Payments::process_payment`].
    pub fn refund_payment(
        &self,
        store_id: &str,
        idempotency_key: &str,
        input: &Value,
    ) -> Result<IdempotentAnswer, PaymentError> {
        self.operate(Operation::Refund, store_id, idempotency_key, input)
    }

    fn operate(
        &self,
        op: Operation,
        store_id: &str,
        key: &str,
        input: &Value,
    ) -> Result<IdempotentAnswer, PaymentError> {
        idempotency::check_key(key)?;
        let Some(fields) = input.as_object() else {
            return Err(PaymentError::InvalidInput(format!(
                "{}: the input must be a JSON object",
                op.action()
            )));
        };
        if fields.contains_key("idempotency_key") {
            return Err(PaymentError::InvalidInput(format!(
                "{}: give the idempotency key once, as the request's key, not in the input",
                op.action()
            )));
        }
        let sealed =
            self.sealed
                .get(store_id, PSP_PURPOSE)?
                .ok_or_else(|| PaymentError::NotConfigured {
                    store_id: store_id.to_string(),
                })?;
        let print = fingerprint(op.action(), input);
        idempotency::once(&*self.state, store_id, key, &print, || {
            let connector = sealed["provider"].as_str().unwrap_or_default();
            let handle = self.open(connector, &sealed["config"])?;
            let mut input = input.clone();
            // The PSP gets a key too: a call retried after a lost answer is done once there.
            input["idempotency_key"] = json!(idempotency::psp_key(store_id, key));
            handle
                .action(op.action(), &input)
                .map_err(PaymentError::Psp)
        })
    }

    fn open(&self, connector: &str, config: &Value) -> Result<ConnectorHandle, PaymentError> {
        self.registry
            .open(connector, config, OpenOptions::default())
            .map_err(|e| match e {
                OpenError::InvalidConfig { violations, .. } => {
                    PaymentError::InvalidConfig { violations }
                }
                OpenError::UnknownConnector { .. } => PaymentError::ConnectorNotLoaded {
                    connector: connector.to_string(),
                },
                OpenError::Plugin(e) => PaymentError::Psp(e),
            })
    }
}
