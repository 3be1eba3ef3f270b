//! The connector's configuration, as the pipeline file gives it.

use chrono::NaiveDate;
use posbridge_plugin_api::rest::schema::{CURRENCY_CODE, HTTP_URL};
use serde::Deserialize;

/// A shop uuid: RFC 3986 unreserved characters only.
pub const SHOP_UUID: &str = r"^[A-Za-z0-9._~-]+$";

/// Kenzup's production API root.
pub const PRODUCTION_BASE_URL: &str = "https://app.kenzup.com";
/// The production host, for the manifest's egress list.
pub const PRODUCTION_HOST: &str = "app.kenzup.com";
/// The vendor's largest `items_per_page`.
pub const MAX_ITEMS_PER_PAGE: u32 = 10_000;

/// Configuration of the Kenzup connector (see `docs/connectors/kenzup.md`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KenzupConfig {
    /// API root without `/api/v1`; the sandbox's URL in tests.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The client id Kenz'up assigned (`client_id=` in the signature).
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The client's RSA private key (PEM, PKCS#8 or PKCS#1, at least 2048 bits).
    #[schemars(extend("x-secret" = true), length(min = 1))]
    pub private_key_pem: String,
    /// The shops to export; each is one partition of the cursor. A uuid goes into the signed
    /// path as it is, so it may only hold characters a path carries unescaped.
    #[schemars(length(min = 1), inner(regex(pattern = SHOP_UUID)))]
    pub shop_uuids: Vec<String>,
    /// Rows per Kenzup page (vendor default 1000, maximum 10000).
    #[serde(default = "default_items_per_page")]
    #[schemars(range(min = 1, max = 10000))]
    pub items_per_page: u32,
    /// Days before the last completed window end that a new pass starts again.
    #[serde(default = "default_overlap_days")]
    pub overlap_days: u32,
    /// First day read when there is no cursor and the run gives no `from`.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// ISO 4217 code of every sale: the export names no currency (default `MAD`).
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = CURRENCY_CODE))]
    pub currency: String,
}

fn default_currency() -> String {
    crate::mapping::DEFAULT_CURRENCY.to_string()
}

fn default_base_url() -> String {
    PRODUCTION_BASE_URL.to_string()
}

fn default_items_per_page() -> u32 {
    1000
}

fn default_overlap_days() -> u32 {
    1
}

impl KenzupConfig {
    /// `base_url` without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The authority (`host[:port]`) of `base_url`, as the HTTP `Host` header carries it.
    pub fn authority(&self) -> &str {
        crate::client::authority_and_path(self.base()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: serde_json::Value) -> Result<KenzupConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_and_authority() {
        let c = cfg(serde_json::json!({
            "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": ["s1"]
        }))
        .unwrap();
        assert_eq!(c.base_url, PRODUCTION_BASE_URL);
        assert_eq!(c.items_per_page, 1000);
        assert_eq!(c.overlap_days, 1);
        assert_eq!(c.currency, "MAD");
        assert_eq!(c.authority(), PRODUCTION_HOST);
        let c = KenzupConfig {
            base_url: "http://127.0.0.1:8123/".into(),
            ..c
        };
        assert_eq!(c.authority(), "127.0.0.1:8123");
        assert_eq!(c.base(), "http://127.0.0.1:8123");
    }

    #[test]
    fn rejects_unknown_fields_and_the_schema_carries_the_checks() {
        assert!(cfg(serde_json::json!({
            "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": ["s1"], "shop_uuid": "s1"
        }))
        .is_err());
        // Checked by the host against the schema, reported with their JSON path.
        let schema = serde_json::to_value(schemars::schema_for!(KenzupConfig)).unwrap();
        let p = &schema["properties"];
        assert_eq!(p["items_per_page"]["maximum"], MAX_ITEMS_PER_PAGE);
        assert_eq!(p["shop_uuids"]["minItems"], 1);
        assert_eq!(p["shop_uuids"]["items"]["pattern"], SHOP_UUID);
        assert_eq!(p["client_id"]["minLength"], 1);
        assert_eq!(p["currency"]["pattern"], CURRENCY_CODE);
        assert_eq!(p["base_url"]["pattern"], HTTP_URL);
    }
}
