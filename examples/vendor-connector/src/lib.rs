//! # posbridge connector: Tillbox POS (an out-of-tree example)
//!
//! Written only from `API.md` and the skeleton of `posbridge new connector tillbox --source`:
//! Tillbox articles as canonical `products`. What changed from the skeleton: the token header,
//! Tillbox's error body, offset paging with a `total`, and prices in cents.

mod source;

pub use source::to_product;

use posbridge_plugin_api::rest::{schema, Auth, RestClient, VendorErrors};
use posbridge_plugin_api::{CheckReport, Connector, ConnectorError, Host, Manifest, StreamDecl};
use serde::Deserialize;
use serde_json::Value;

/// Tillbox's production API (declared as egress); `base_url` overrides it.
pub const DEFAULT_BASE_URL: &str = "https://cloud.tillbox.example/api/v2";

/// The connector's configuration; its JSON Schema is what the host checks pipelines against.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API base URL, `…/api/v2`. Tests point it at a local simulator.
    #[serde(default = "default_base_url")]
    #[schemars(regex(pattern = schema::HTTP_URL))]
    pub base_url: String,
    /// The account's API token (sent as `X-Tillbox-Token`). Secret.
    #[schemars(extend("x-secret" = true), length(min = 1))]
    pub token: String,
    /// The ISO 4217 currency of the account's prices (Tillbox does not say it).
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = schema::CURRENCY_CODE))]
    pub currency: String,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

fn default_currency() -> String {
    "EUR".into()
}

/// Tillbox's error body is `{"error": {"text": …}}`.
struct TillboxErrors;

impl VendorErrors for TillboxErrors {
    fn message(&self, _status: u16, body: &Value) -> Option<String> {
        body.pointer("/error/text")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// The Tillbox connector.
pub struct Tillbox {
    cfg: Config,
    api: RestClient,
}

impl Connector for Tillbox {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "tillbox",
            env!("CARGO_PKG_VERSION"),
            "Tillbox POS",
            "Tillbox POS articles as canonical products",
        )
        .stream(StreamDecl::read("products"))
        .egress_host("cloud.tillbox.example")
        .egress_config_field("base_url")
        // API.md: more than 5 requests per second are refused.
        .rate_limit(5, 1)
    }

    fn open(cfg: Config, host: Host) -> Result<Self, ConnectorError> {
        let api = RestClient::new(host, "tillbox", &cfg.base_url)
            .auth(Auth::Header {
                name: "X-Tillbox-Token".into(),
                value: cfg.token.clone(),
            })
            .default_header("Accept", "application/json")
            .vendor_errors(TillboxErrors);
        Ok(Tillbox { cfg, api })
    }

    /// `GET /ping`, which costs nothing.
    fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.api.get("/ping").endpoint("ping").send_json()?;
        Ok(CheckReport::ok(format!(
            "tillbox: connected to {}",
            self.cfg.base_url
        )))
    }

    fn source(&self) -> Option<&dyn posbridge_plugin_api::Source> {
        Some(self)
    }
}

posbridge_plugin_api::export_connector!(Tillbox);
