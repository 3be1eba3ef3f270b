//! # posbridge connector: Stripe
//!
//! Stripe as a source of `payments` (PaymentIntents or Charges), `refunds`, `payouts` and
//! `balance_transactions`, and as actions: `process_payment`, `refund_payment` (both with an
//! `Idempotency-Key`) and `verify_webhook` (a `Stripe-Signature` check, since a plugin cannot
//! listen on a port). The contract with the vendor and with the sandbox simulator is
//! `docs/connectors/stripe.md`.

mod actions;
mod amount;
mod client;
mod config;
mod cursor;
mod error;
mod records;
mod source;
mod webhook;

use posbridge_plugin_api::{
    Actions, CheckReport, Connector, ConnectorError, Host, Manifest, Page, ReadRequest, Source,
    StreamDecl,
};
use serde_json::Value;

pub use amount::{from_minor, stripe_decimals, to_minor, AmountError};
pub use config::{Config, PaymentsObject};
pub use error::{ApiError, StripeError, StripeErrors};
pub use webhook::{verify as verify_webhook_signature, WebhookError, TOLERANCE_SECS};

use client::Client;

/// The Stripe connector.
pub struct Stripe {
    client: Client,
}

impl Connector for Stripe {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "stripe",
            env!("CARGO_PKG_VERSION"),
            "Stripe",
            "Stripe payments: reads payments, refunds, payouts and balance transactions; takes payments and refunds; verifies webhooks",
        )
        .stream(StreamDecl::read("payments"))
        .stream(StreamDecl::read("refunds"))
        .stream(StreamDecl::read("payouts"))
        .stream(StreamDecl::read("balance_transactions"))
        .action(
            "process_payment",
            "Creates and confirms a PaymentIntent: {amount, currency, idempotency_key (or sale_id), description?, metadata?, payment_method?}",
        )
        .action(
            "refund_payment",
            "Refunds a payment: {payment_id, amount?, idempotency_key or reference (required with amount), currency?, reason?, metadata?}",
        )
        .action(
            "verify_webhook",
            "Verifies a webhook's Stripe-Signature and returns the event: {payload, signature_header, secret?}",
        )
        .egress_host(config::PRODUCTION_HOST)
        .egress_config_field("base_url")
        // Stripe's documented default: 100 read/write operations per second in live mode.
        .rate_limit(100, 1)
    }

    /// The host has validated the config against its schema (URL, key, page size).
    fn open(config: Config, host: Host) -> Result<Self, ConnectorError> {
        Ok(Self {
            client: Client::new(host, config),
        })
    }

    /// `GET /v1/balance`: the cheapest call every key (restricted ones with balance read) may make.
    fn check(&self) -> Result<CheckReport, ConnectorError> {
        let body = self.client.get("balance", &Vec::new(), "balance")?;
        let currencies: Vec<String> = body
            .get("available")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|b| b.get("currency").and_then(Value::as_str))
                    .map(str::to_ascii_uppercase)
                    .collect()
            })
            .unwrap_or_default();
        let mode = if body.get("livemode").and_then(Value::as_bool) == Some(true) {
            "live"
        } else {
            "test"
        };
        Ok(CheckReport::ok(format!(
            "stripe: secret key accepted ({mode} mode), balance in {}",
            if currencies.is_empty() {
                "no currency yet".to_string()
            } else {
                currencies.join(", ")
            }
        )))
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn actions(&self) -> Option<&dyn Actions> {
        Some(self)
    }
}

impl Source for Stripe {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        source::read(&self.client, request)
    }
}

impl Actions for Stripe {
    fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError> {
        match name {
            "process_payment" => Ok(actions::process_payment(&self.client, input)?),
            "refund_payment" => Ok(actions::refund_payment(&self.client, input)?),
            "verify_webhook" => actions::verify_webhook(&self.client, input),
            other => Err(ConnectorError::Config(format!(
                "stripe has no action {other:?} (it has process_payment, refund_payment, verify_webhook)"
            ))),
        }
    }
}

posbridge_plugin_api::export_connector!(Stripe);

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::sdk::export::full_manifest;

    #[test]
    fn manifest_declares_streams_actions_secrets_and_egress() {
        let m = full_manifest::<Stripe>();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        assert_eq!(m.name, "stripe");
        for s in ["payments", "refunds", "payouts", "balance_transactions"] {
            assert!(m.find_stream(s).is_some_and(|d| d.read && !d.write), "{s}");
        }
        assert_eq!(m.kinds(), vec!["source", "actions"]);
        let names: Vec<&str> = m.actions.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["process_payment", "refund_payment", "verify_webhook"]
        );
        assert_eq!(
            m.secrets,
            vec!["secret_key".to_string(), "webhook_secret".to_string()]
        );
        assert_eq!(m.egress_hosts, vec!["api.stripe.com".to_string()]);
        assert_eq!(m.egress_config_fields, vec!["base_url".to_string()]);
    }
}
