//! The connector's configuration, as the pipeline gives it.

use chrono::NaiveDate;
use posbridge_plugin_api::rest::schema::HTTP_URL;
use serde::Deserialize;

/// The production API root; every endpoint lives under `/v1/`.
pub const PRODUCTION_BASE_URL: &str = "https://api.stripe.com";
/// The host of [`PRODUCTION_BASE_URL`], for the egress allow-list.
pub const PRODUCTION_HOST: &str = "api.stripe.com";
/// The largest `limit` of a list call (Stripe: 1 to 100).
pub const MAX_PAGE_SIZE: u32 = 100;

/// Configuration of the Stripe connector.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root without the version prefix; the connector appends `/v1/<endpoint>`.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The secret API key (`sk_live_…`, `sk_test_…` or a restricted `rk_…`), sent as Bearer token.
    #[schemars(extend("x-secret" = true), length(min = 1))]
    pub secret_key: String,
    /// The signing secret of the webhook endpoint (`whsec_…`), used by `verify_webhook`.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub webhook_secret: Option<String>,
    /// Which Stripe object the `payments` stream reads.
    #[serde(default)]
    pub payments_object: PaymentsObject,
    /// `limit` of the list calls, 1 to 100.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 100))]
    pub page_size: u32,
    /// First day (UTC) of the first read when the pipeline gives no `from`; else everything.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// The PaymentMethod `process_payment` confirms with when its input names none.
    #[serde(default)]
    pub default_payment_method: Option<String>,
}

/// The object behind the `payments` stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentsObject {
    /// `GET /v1/payment_intents` (with `expand[]=data.latest_charge`).
    #[default]
    PaymentIntents,
    /// `GET /v1/charges` (older integrations without PaymentIntents).
    Charges,
}

fn default_base_url() -> String {
    PRODUCTION_BASE_URL.into()
}

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

impl Config {
    /// The full URL of an endpoint path such as `payment_intents`.
    pub fn endpoint(&self, path: &str) -> String {
        format!(
            "{}/v1/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_endpoint_and_unknown_fields() {
        let c: Config = serde_json::from_value(json!({"secret_key": "sk_test_1"})).unwrap();
        assert_eq!(c.base_url, PRODUCTION_BASE_URL);
        assert_eq!(c.page_size, 100);
        assert_eq!(c.payments_object, PaymentsObject::PaymentIntents);
        assert_eq!(
            c.endpoint("/payment_intents"),
            "https://api.stripe.com/v1/payment_intents"
        );
        assert!(
            serde_json::from_value::<Config>(json!({"secret_key": "k", "apikey": "x"})).is_err()
        );
        // Retries are the host's (`delivery:`), not the connector's.
        assert!(serde_json::from_value::<Config>(
            json!({"secret_key": "k", "max_network_retries": 2})
        )
        .is_err());
        // URL, key and page size are the schema's to check (the host reports them by path).
        let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        assert_eq!(schema["properties"]["secret_key"]["minLength"], 1);
        assert_eq!(schema["properties"]["page_size"]["maximum"], 100);
        assert_eq!(schema["properties"]["base_url"]["pattern"], HTTP_URL);
    }
}
