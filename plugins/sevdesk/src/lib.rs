//! # posbridge connector: sevDesk
//!
//! sevDesk (German online accounting, API v1, bookkeeping system "Update 2.0") as a sink of
//! vouchers — one per sale (`per_sale`) or per business day and register (`daily_summary`),
//! with positions per tax rate on the mapped `accountDatev` and the payments booked on the
//! mapped check accounts — and as a source of parts (products, inventory), orders and
//! suppliers for syncERP. The contract with the vendor and the simulator is
//! `docs/connectors/sevdesk.md`.

mod booking;
mod config;
mod error;
mod http;
mod json_text;
mod mapping;
mod pending;
mod sink;
mod source;
mod voucher_body;

use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, Manifest, Page, ReadRequest, RecordOutcome, Sink,
    Source, StreamDecl, WriteRequest,
};
use serde_json::Value;

pub use config::{Config, PaymentRefused, VoucherPosKey, VoucherStatus};
pub use error::RestError;

use http::Client;

/// The sevDesk connector.
pub struct Sevdesk {
    client: Client,
}

impl Connector for Sevdesk {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "sevdesk",
            env!("CARGO_PKG_VERSION"),
            "sevDesk",
            "sevDesk accounting: books sales and daily closures as vouchers with their payments; reads parts, orders and suppliers",
        )
        .stream(StreamDecl::write("sales"))
        .stream(StreamDecl::write("closures"))
        .stream(StreamDecl::read("orders"))
        .stream(StreamDecl::read("products"))
        .stream(StreamDecl::read("inventory"))
        .stream(StreamDecl::read("suppliers"))
        .egress_host(config::PRODUCTION_HOST)
        .egress_config_field("base_url")
    }

    fn open(config: Config, host: Host) -> Result<Self, ConnectorError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Config(format!(
                "sevdesk: {}",
                problems.join("; ")
            )));
        }
        Ok(Self {
            client: Client::new(host, config),
        })
    }

    /// `GET /Tools/bookkeepingSystemVersion`: the cheapest authenticated call, and it tells
    /// whether the account books with `taxRule` / `accountDatev` (version 2.0).
    fn check(&self) -> Result<CheckReport, ConnectorError> {
        let body = self.client.get("Tools/bookkeepingSystemVersion")?;
        let version = body
            .pointer("/objects/version")
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        if version.starts_with('2') {
            Ok(CheckReport::ok(format!(
                "sevdesk: API token accepted, bookkeeping system version {version}"
            )))
        } else {
            Ok(CheckReport::failed(format!(
                "sevdesk: the API token works, but the account uses bookkeeping system version {version:?}; vouchers with taxRule and accountDatev need 2.0"
            )))
        }
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn sink(&self) -> Option<&dyn Sink> {
        Some(self)
    }
}

impl Source for Sevdesk {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        source::ErpReader {
            client: &self.client,
        }
        .read(request)
    }
}

impl Sink for Sevdesk {
    fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        sink::VoucherWriter {
            client: &self.client,
        }
        .write(request, records)
    }
}

posbridge_plugin_api::export_connector!(Sevdesk);

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::sdk::export::full_manifest;

    #[test]
    fn manifest_declares_streams_secret_and_egress() {
        let m = full_manifest::<Sevdesk>();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        for s in ["sales", "closures"] {
            assert!(m.find_stream(s).is_some_and(|d| d.write && !d.read), "{s}");
        }
        for s in ["orders", "products", "inventory", "suppliers"] {
            assert!(m.find_stream(s).is_some_and(|d| d.read && !d.write), "{s}");
        }
        assert_eq!(m.secrets, vec!["api_token".to_string()]);
        assert_eq!(m.egress_hosts, vec!["my.sevdesk.de".to_string()]);
        assert_eq!(m.egress_config_fields, vec!["base_url".to_string()]);
        // The host checks the URL before `open` and names it by its JSON path.
        assert_eq!(
            m.config_schema["properties"]["base_url"]["pattern"],
            posbridge_plugin_api::rest::schema::HTTP_URL
        );
    }
}
