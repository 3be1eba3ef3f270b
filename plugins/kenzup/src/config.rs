//! The connector's configuration, as the pipeline file gives it.

use chrono::NaiveDate;
use posbridge_plugin_api::ConnectorError;
use serde::Deserialize;

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
    pub base_url: String,
    /// The client id Kenz'up assigned (`client_id=` in the signature).
    pub client_id: String,
    /// The client's RSA private key (PEM, PKCS#8 or PKCS#1, at least 2048 bits).
    #[schemars(extend("x-secret" = true))]
    pub private_key_pem: String,
    /// The shops to export; each is one partition of the cursor.
    #[schemars(length(min = 1))]
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
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
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
    /// Checks what the schema cannot: shops present, page size in range, a usable base URL.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |m: String| Err(ConnectorError::Config(format!("kenzup: {m}")));
        if self.client_id.trim().is_empty() {
            return bad("client_id is empty".into());
        }
        if self.shop_uuids.is_empty() || self.shop_uuids.iter().any(|s| s.trim().is_empty()) {
            return bad("shop_uuids must list at least one non-empty shop uuid".into());
        }
        // Shop uuids go into the signed path as they are, so they must need no escaping.
        if let Some(bad_shop) = self.shop_uuids.iter().find(|s| {
            !s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        }) {
            return bad(format!(
                "shop uuid {bad_shop:?} has characters a URL path cannot carry"
            ));
        }
        if self.items_per_page == 0 || self.items_per_page > MAX_ITEMS_PER_PAGE {
            return bad(format!(
                "items_per_page {} is outside 1..={MAX_ITEMS_PER_PAGE}",
                self.items_per_page
            ));
        }
        if !(self.currency.len() == 3 && self.currency.chars().all(|c| c.is_ascii_uppercase())) {
            return bad(format!(
                "currency {:?} is not an ISO 4217 code (three capital letters)",
                self.currency
            ));
        }
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return bad(format!(
                "base_url {:?} is not an http(s) URL",
                self.base_url
            ));
        }
        Ok(())
    }

    /// `base_url` without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The authority (`host[:port]`) of `base_url`, as the HTTP `Host` header carries it.
    pub fn authority(&self) -> &str {
        let rest = self
            .base()
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(self.base());
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // Drop userinfo if someone put credentials in the URL.
        authority
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or(authority)
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
        assert!(c.validate().is_ok());
        let c = KenzupConfig {
            base_url: "http://127.0.0.1:8123/".into(),
            ..c
        };
        assert_eq!(c.authority(), "127.0.0.1:8123");
        assert_eq!(c.base(), "http://127.0.0.1:8123");
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(cfg(serde_json::json!({
            "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": ["s1"], "shop_uuid": "s1"
        }))
        .is_err());
        let c = cfg(serde_json::json!({
            "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": ["s1"], "items_per_page": 10001
        }))
        .unwrap();
        assert!(matches!(c.validate(), Err(ConnectorError::Config(_))));
        let c = cfg(serde_json::json!({
            "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": []
        }))
        .unwrap();
        assert!(matches!(c.validate(), Err(ConnectorError::Config(_))));
        for currency in ["eur", "EURO", ""] {
            let c = cfg(serde_json::json!({
                "client_id": "POS_1", "private_key_pem": "x", "shop_uuids": ["s1"], "currency": currency
            }))
            .unwrap();
            assert!(
                matches!(c.validate(), Err(ConnectorError::Config(m)) if m.contains("currency")),
                "{currency:?}"
            );
        }
    }
}
