//! The connector's configuration (see `docs/connectors/oktopos.md`).

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::api::{PathLayout, DEFAULT_API_PREFIX};
use posbridge_plugin_api::rest::schema::HTTP_URL;
use posbridge_plugin_api::rest::AUTH_SPEC_PATTERN;

/// The production host declared as egress; customers normally point `base_url` at their own instance.
pub const PRODUCTION_HOST: &str = "manager.oktopos.com";

/// The default `auth`: a header named after the security scheme (what the connector always sent).
pub const DEFAULT_AUTH: &str = "header:api_key";

/// Configuration of the OktoPOS connector.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The OktoPOS Manager instance, without `/api`.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = HTTP_URL))]
    pub base_url: String,
    /// The authentication token from OktoPOS -> System in the instance.
    #[schemars(extend("x-secret" = true), length(min = 1))]
    pub token: String,
    /// Where the token goes: `header:NAME` (a header of that name), `bearer`
    /// (`Authorization: Bearer`), `query:NAME` (a query parameter) or `basic` (the token is
    /// `user:password`).
    #[serde(default = "default_auth")]
    #[schemars(regex(pattern = AUTH_SPEC_PATTERN))]
    pub auth: String,
    /// How the filter is written into the path: `positional` or `named` segments.
    #[serde(default)]
    pub path_layout: PathLayout,
    /// The part of the path between `base_url` and `transactions`.
    #[serde(default = "default_api_prefix")]
    pub api_prefix: String,
    /// The `cash-register` path segment: one id or several (one partition each). Omitted: all
    /// cash registers the token may access, in one partition.
    #[serde(default)]
    pub cash_register: Option<CashRegisters>,
    /// The canonical `store_id` of every sale (the API names no store).
    #[serde(default = "default_store_id")]
    pub store_id: String,
    /// The `size` path segment: transactions per page.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1))]
    pub page_size: u32,
    /// Keep training transactions (as `kind: training`).
    #[serde(default)]
    pub include_training: bool,
    /// Days re-read before the last completed window, to catch late receipts.
    #[serde(default = "default_overlap_days")]
    pub overlap_days: u32,
    /// First day read when neither the cursor nor the request says where to start.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// The instance's IANA time zone.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// One cash register id, or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CashRegisters {
    One(u64),
    /// At least one id: the schema refuses `[]`, so the host names it before `open`.
    Many(#[schemars(length(min = 1))] Vec<u64>),
}

impl CashRegisters {
    /// The ids in configuration order.
    pub fn ids(&self) -> Vec<u64> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }
}

fn default_base_url() -> String {
    format!("https://{PRODUCTION_HOST}")
}

fn default_auth() -> String {
    DEFAULT_AUTH.into()
}

fn default_api_prefix() -> String {
    DEFAULT_API_PREFIX.into()
}

fn default_store_id() -> String {
    "default".into()
}

fn default_page_size() -> u32 {
    50
}

fn default_overlap_days() -> u32 {
    1
}

fn default_timezone() -> String {
    "Europe/Berlin".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_and_one_or_many_registers_parse() {
        let c: Config = serde_json::from_value(serde_json::json!({"token": "t"})).unwrap();
        assert_eq!(c.base_url, "https://manager.oktopos.com");
        assert_eq!((c.page_size, c.overlap_days), (50, 1));
        assert_eq!(c.timezone, "Europe/Berlin");
        assert!(c.cash_register.is_none());
        assert_eq!(c.auth, "header:api_key");
        assert_eq!(c.path_layout, PathLayout::Positional);
        assert_eq!(c.api_prefix, "/api");
        let named: Config = serde_json::from_value(
            serde_json::json!({"token": "t", "path_layout": "named", "auth": "bearer"}),
        )
        .unwrap();
        assert_eq!(named.path_layout, PathLayout::Named);
        assert!(serde_json::from_value::<Config>(
            serde_json::json!({"token": "t", "path_layout": "segments"})
        )
        .is_err());
        let one: Config =
            serde_json::from_value(serde_json::json!({"token": "t", "cash_register": 5})).unwrap();
        assert_eq!(one.cash_register.unwrap().ids(), vec![5]);
        let many: Config =
            serde_json::from_value(serde_json::json!({"token": "t", "cash_register": [2, 1]}))
                .unwrap();
        assert_eq!(many.cash_register.unwrap().ids(), vec![2, 1]);
    }

    #[test]
    fn the_schema_refuses_an_empty_cash_register_list() {
        let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        let forms = schema["$defs"]["CashRegisters"]["anyOf"]
            .as_array()
            .unwrap();
        let list = forms.iter().find(|f| f["type"] == "array").unwrap();
        assert_eq!(list["minItems"], 1, "{schema}");
        assert!(forms.iter().any(|f| f["type"] == "integer"));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<Config, _> =
            serde_json::from_value(serde_json::json!({"token": "t", "size": 10}));
        assert!(r.is_err());
    }
}
