//! # posbridge connector: OktoPOS
//!
//! Reads the transactions of an OktoPOS Manager instance through its TransactionAPI into the
//! canonical `sales` stream. The contract (paths, auth, shapes, mapping, cursor) is
//! `docs/connectors/oktopos.md`. The plugin does no I/O of its own: HTTP goes through the host.

pub mod api;
pub mod auth;
pub mod config;
pub mod cursor;
pub mod mapping;
pub mod source;
pub mod tax_rate;

use api::Api;
use auth::TokenPlacement;
use chrono_tz::Tz;
use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, Manifest, Page, ReadRequest, Source, StreamDecl,
};

pub use config::Config;
use source::SalesSource;

/// The OktoPOS connector.
pub struct OktoPos {
    cfg: Config,
    host: Host,
    tz: Tz,
    api: Api,
}

impl OktoPos {
    fn sales(&self) -> SalesSource<'_> {
        SalesSource {
            cfg: &self.cfg,
            host: &self.host,
            tz: self.tz,
            api: &self.api,
        }
    }
}

/// Checks what the schema cannot (the time zone name, the page size, the register list, the URL,
/// the token placement) and returns the time zone and the API as configured.
fn validate(cfg: &Config) -> Result<(Tz, Api), ConnectorError> {
    let tz = cfg.timezone.parse::<Tz>().map_err(|_| {
        ConnectorError::Config(format!(
            "oktopos: timezone {:?} is not an IANA time zone",
            cfg.timezone
        ))
    })?;
    if cfg.page_size == 0 {
        return Err(ConnectorError::Config(
            "oktopos: page_size must be at least 1".into(),
        ));
    }
    if cfg
        .cash_register
        .as_ref()
        .is_some_and(|r| r.ids().is_empty())
    {
        return Err(ConnectorError::Config(
            "oktopos: cash_register must name at least one id".into(),
        ));
    }
    if !(cfg.base_url.starts_with("https://") || cfg.base_url.starts_with("http://")) {
        return Err(ConnectorError::Config(format!(
            "oktopos: base_url {:?} is not an http(s) URL",
            cfg.base_url
        )));
    }
    if cfg.token.trim().is_empty() {
        return Err(ConnectorError::Config("oktopos: token is empty".into()));
    }
    let auth: TokenPlacement = cfg
        .auth
        .parse()
        .map_err(|e| ConnectorError::Config(format!("oktopos: {e}")))?;
    let api = Api::new(
        &cfg.base_url,
        &cfg.api_prefix,
        cfg.path_layout,
        auth,
        &cfg.token,
    );
    Ok((tz, api))
}

impl Connector for OktoPos {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "oktopos",
            env!("CARGO_PKG_VERSION"),
            "OktoPOS",
            "OktoPOS Manager TransactionAPI: transactions as canonical sales",
        )
        .stream(StreamDecl::read("sales"))
        .egress_host(config::PRODUCTION_HOST)
        .egress_config_field("base_url")
    }

    fn open(cfg: Config, host: Host) -> Result<Self, ConnectorError> {
        let (tz, api) = validate(&cfg)?;
        Ok(Self { cfg, host, tz, api })
    }

    fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.sales().check()?;
        Ok(CheckReport::ok(format!(
            "oktopos: token accepted by {}",
            self.cfg.base_url
        )))
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }
}

impl Source for OktoPos {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        if request.stream != "sales" {
            return Err(ConnectorError::Config(format!(
                "oktopos: no stream {:?} (only `sales`)",
                request.stream
            )));
        }
        self.sales().read(request)
    }
}

posbridge_plugin_api::export_connector!(OktoPos);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_declares_sales_egress_and_the_secret_token() {
        let m = posbridge_plugin_api::sdk::export::full_manifest::<OktoPos>();
        assert_eq!(m.name, "oktopos");
        assert!(m.find_stream("sales").is_some_and(|s| s.read && !s.write));
        assert_eq!(m.egress_hosts, vec!["manager.oktopos.com"]);
        assert_eq!(m.egress_config_fields, vec!["base_url"]);
        assert_eq!(m.secrets, vec!["token"]);
        assert!(m.problems().is_empty(), "{:?}", m.problems());
    }

    #[test]
    fn config_values_the_schema_cannot_catch_are_refused() {
        let cfg = |v: serde_json::Value| serde_json::from_value::<Config>(v).unwrap();
        assert!(validate(&cfg(serde_json::json!({"token": "t"}))).is_ok());
        assert!(validate(&cfg(
            serde_json::json!({"token": "t", "timezone": "Mars/Olympus"})
        ))
        .is_err());
        assert!(validate(&cfg(serde_json::json!({"token": "t", "cash_register": []}))).is_err());
        assert!(validate(&cfg(serde_json::json!({"token": "t", "page_size": 0}))).is_err());
        for auth in ["header:", "basic", "query:"] {
            assert!(
                matches!(validate(&cfg(serde_json::json!({"token": "t", "auth": auth}))),
                    Err(ConnectorError::Config(m)) if m.contains("auth")),
                "{auth:?}"
            );
        }
        assert!(validate(&cfg(serde_json::json!({"token": "t", "auth": "query:key"}))).is_ok());
    }
}
