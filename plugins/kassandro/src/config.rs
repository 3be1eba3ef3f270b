//! The connector's configuration, as the pipeline gives it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use posbridge_plugin_api::rest::schema::{HTTP_URL, NOT_BLANK};
use serde::Deserialize;

/// The production API root (the `/v1.0` prefix is added, see [`Config::api_root`]).
pub const PRODUCTION_BASE_URL: &str = "https://devapi.kassandro.at";
/// The host of [`PRODUCTION_BASE_URL`], for the egress allow-list.
pub const PRODUCTION_HOST: &str = "devapi.kassandro.at";
/// The version prefix every endpoint lives under (the document's table: `devapi.kassandro.at/v1.0/`).
pub const API_PREFIX: &str = "v1.0";
/// The largest `limit` the receipts list accepts (the document's default).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Configuration of the Kassandro connector.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root without the version prefix; the connector appends `/v1.0/<endpoint>`.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The API key created in my.kassandro.
    #[schemars(extend("x-secret" = true), regex(pattern = NOT_BLANK))]
    pub api_key: String,
    /// Kassa-ID whose cash-register token writes receipts; reading does not need it.
    #[serde(default)]
    pub cash_register_id: Option<u64>,
    /// Days before the last synced day that an incremental read starts again.
    #[serde(default = "default_overlap_days")]
    pub overlap_days: u32,
    /// First business day of the first read when the pipeline gives no `from`.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// `limit` of the receipts list, 1 to 1000.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub page_size: u32,
    /// Store of a register whose `/cashregisters` entry names no `locationId`, by Kassa-ID
    /// (`{"2": "graz"}`); registers not listed go to `default_store_id`.
    #[serde(default)]
    #[schemars(extend("propertyNames" = {"pattern": "^[0-9]+$"}))]
    pub register_stores: BTreeMap<String, String>,
    /// Store of registers that name no location and are not in `register_stores`.
    #[serde(default = "default_store_id")]
    #[schemars(regex(pattern = NOT_BLANK))]
    pub default_store_id: String,
    /// Canonical payment method → the Kassandro payment method name to write
    /// (`{"card": "Bankomat"}`). Unlisted methods take the register's name that normalises to
    /// the method, else the German default (`Bar`, `Karte`, `Gutschein`, `Rechnung`).
    #[serde(default)]
    #[schemars(extend("additionalProperties" = {"type": "string", "pattern": "\\S"}))]
    pub payment_methods: BTreeMap<String, String>,
    /// Rounding of the tax derived per rate when a receipt carries no VAT amounts.
    #[serde(default)]
    pub tax_rounding: TaxRounding,
    /// Which token a `gettoken` answer means when it carries a bare `token` without a type.
    #[serde(default)]
    pub untyped_token: UntypedToken,
    /// Fetch the next page of receipts while this one is read and mapped, so waiting on the
    /// API and mapping overlap (at most two requests at once, both through the host's rate
    /// limit). `false`: one request at a time.
    #[serde(default = "default_read_ahead")]
    pub read_ahead: bool,
}

/// How a derived tax amount is rounded to the cent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxRounding {
    /// Half away from zero ("kaufmännisch"), what Austrian and German receipts print.
    #[default]
    HalfUp,
    /// Half to even (banker's rounding).
    HalfEven,
}

/// The kind of a `token` field in `gettoken`'s answer that names no type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UntypedToken {
    /// The account token: the API key belongs to the account, and `gettoken` names no register.
    #[default]
    Account,
    /// The cash-register token of `cash_register_id`.
    CashRegister,
}

fn default_base_url() -> String {
    PRODUCTION_BASE_URL.into()
}

fn default_store_id() -> String {
    "default".into()
}

fn default_overlap_days() -> u32 {
    1
}

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

fn default_read_ahead() -> bool {
    true
}

impl Config {
    /// The root every endpoint path (`receipts/count`) is joined to: `base_url` with the
    /// version prefix.
    pub fn api_root(&self) -> String {
        format!("{}/{API_PREFIX}", self.base_url.trim_end_matches('/'))
    }

    /// The store of a register whose entry names no location: `register_stores`, else
    /// `default_store_id`.
    pub fn store_of_unlocated(&self, register: u64) -> String {
        self.register_stores
            .get(&register.to_string())
            .unwrap_or(&self.default_store_id)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(base: &str) -> Config {
        serde_json::from_value(serde_json::json!({"base_url": base, "api_key": "k"})).unwrap()
    }

    #[test]
    fn the_api_root_is_base_url_and_version_prefix() {
        assert_eq!(
            cfg("https://devapi.kassandro.at/").api_root(),
            "https://devapi.kassandro.at/v1.0"
        );
        assert_eq!(
            cfg("http://127.0.0.1:9000/kassandro").api_root(),
            "http://127.0.0.1:9000/kassandro/v1.0"
        );
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let c: Config = serde_json::from_value(serde_json::json!({"api_key": "k"})).unwrap();
        assert_eq!(c.base_url, PRODUCTION_BASE_URL);
        assert_eq!(c.overlap_days, 1);
        assert_eq!(c.page_size, 1000);
        assert!(c.read_ahead);
        assert_eq!(c.default_store_id, "default");
        assert_eq!(c.tax_rounding, TaxRounding::HalfUp);
        assert_eq!(c.untyped_token, UntypedToken::Account);
        assert!(c.payment_methods.is_empty() && c.register_stores.is_empty());
        let c: Config = serde_json::from_value(serde_json::json!({"api_key": "k",
            "tax_rounding": "half_even", "untyped_token": "cash_register"}))
        .unwrap();
        assert_eq!(c.tax_rounding, TaxRounding::HalfEven);
        let bad =
            serde_json::from_value::<Config>(serde_json::json!({"api_key": "k", "apikey": "x"}));
        assert!(bad.is_err());
    }
}
