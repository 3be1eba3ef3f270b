//! # posbridge connector: OktoPOS
//!
//! Reads the transactions of an OktoPOS Manager instance through its TransactionAPI into the
//! canonical `sales` stream. The contract (paths, auth, shapes, mapping, cursor) is
//! `docs/connectors/oktopos.md`. The plugin does no I/O of its own: HTTP goes through the host.

pub mod api;
pub mod config;
pub mod cursor;
pub mod mapping;
pub mod source;
pub mod tax_rate;

use api::Api;
use chrono_tz::Tz;
use posbridge_plugin_api::rest::Auth;
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

/// Checks what the schema cannot (the time zone name, an empty register list) and returns the
/// time zone and the credentials as configured. URL, token, page size and the `auth` spec are
/// the schema's: the host reports them with their JSON path before `open`.
fn validate(cfg: &Config) -> Result<(Tz, Auth), ConnectorError> {
    let tz = cfg.timezone.parse::<Tz>().map_err(|_| {
        ConnectorError::Config(format!(
            "oktopos: timezone {:?} is not an IANA time zone",
            cfg.timezone
        ))
    })?;
    let auth = Auth::from_spec(&cfg.auth, &cfg.token)
        .map_err(|e| ConnectorError::Config(format!("oktopos: {e}")))?;
    Ok((tz, auth))
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
        let (tz, auth) = validate(&cfg)?;
        let api = Api::new(
            host.clone(),
            &cfg.base_url,
            &cfg.api_prefix,
            cfg.path_layout,
            auth,
        );
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
        for auth in ["header:", "cookie:x", "query:"] {
            assert!(
                matches!(validate(&cfg(serde_json::json!({"token": "t", "auth": auth}))),
                    Err(ConnectorError::Config(m)) if m.contains("auth")),
                "{auth:?}"
            );
        }
        assert!(validate(&cfg(serde_json::json!({"token": "t", "auth": "query:key"}))).is_ok());
    }
}
