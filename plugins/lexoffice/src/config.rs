//! The connector's configuration, as the pipeline gives it.

use posbridge_plugin_api::rest::schema::HTTP_URL;
use serde::Deserialize;

/// The production API root. The connector appends `/v1/<resource>` (see [`Config::endpoint`]),
/// so `https://api.lexware.io` + `/v1/vouchers` is the documented resource URL.
pub const PRODUCTION_BASE_URL: &str = "https://api.lexware.io";
/// The host of [`PRODUCTION_BASE_URL`], for the egress allow-list.
pub const PRODUCTION_HOST: &str = "api.lexware.io";
/// The API version prefix of every resource (`/v1/vouchers`, `/v1/voucherlist`, …).
pub const API_PREFIX: &str = "v1";
/// The largest `size` the paged list endpoints (`voucherlist`, `contacts`) accept.
pub const MAX_PAGE_SIZE: u32 = 250;

/// Whether voucher item amounts are gross or net (the voucher's `taxType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxType {
    /// `amount` is the gross amount of the item (POS prices are gross: the default).
    Gross,
    /// `amount` is the net amount of the item.
    Net,
}

impl TaxType {
    /// The value of the voucher's `taxType` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gross => "gross",
            Self::Net => "net",
        }
    }
}

/// Configuration of the lexoffice connector.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root without the version prefix; the connector appends `/v1/<resource>`.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The Public API key, sent as `Authorization: Bearer <key>`.
    #[schemars(extend("x-secret" = true), length(min = 1))]
    pub api_key: String,
    /// Whether written voucher items carry gross (default) or net amounts.
    #[serde(default = "default_tax_type")]
    pub tax_type: TaxType,
    /// `size` of the list calls when reading, 1 to 250. Reading sales also fetches each voucher
    /// (one request each at 2 requests per second), so a page of 50 takes about 25 s.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 250))]
    pub page_size: u32,
}

fn default_base_url() -> String {
    PRODUCTION_BASE_URL.into()
}

fn default_tax_type() -> TaxType {
    TaxType::Gross
}

fn default_page_size() -> u32 {
    50
}

impl Config {
    /// The full URL of a resource path and query such as `voucherlist?page=0`.
    pub fn endpoint(&self, path_and_query: &str) -> String {
        format!(
            "{}/{API_PREFIX}/{}",
            self.base_url.trim_end_matches('/'),
            path_and_query.trim_start_matches('/')
        )
    }

    /// Checks what the schema cannot express (the URL scheme, the key and the page size are
    /// the schema's: the host reports them with their JSON path before `open`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.base_url.trim_end_matches('/').ends_with("/v1") {
            p.push(format!(
                "base_url {:?} must not end in /v1: the connector adds the version itself",
                self.base_url
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(base: &str) -> Config {
        serde_json::from_value(json!({"base_url": base, "api_key": "k"})).unwrap()
    }

    #[test]
    fn endpoint_composes_base_url_and_version() {
        assert_eq!(
            cfg("https://api.lexware.io/").endpoint("vouchers"),
            "https://api.lexware.io/v1/vouchers"
        );
        assert_eq!(
            cfg("http://127.0.0.1:9000").endpoint("/voucherlist?page=0"),
            "http://127.0.0.1:9000/v1/voucherlist?page=0"
        );
    }

    #[test]
    fn defaults_unknown_fields_and_problems() {
        let c: Config = serde_json::from_value(json!({"api_key": "k"})).unwrap();
        assert_eq!(c.base_url, PRODUCTION_BASE_URL);
        assert_eq!(c.tax_type, TaxType::Gross);
        assert_eq!(c.page_size, 50);
        assert!(c.problems().is_empty());
        assert!(serde_json::from_value::<Config>(json!({"api_key": "k", "apikey": "x"})).is_err());
        let p = cfg("https://api.lexware.io/v1").problems();
        assert!(p.iter().any(|m| m.contains("/v1")), "{p:?}");
    }
}
