//! # posbridge connector: lexoffice (Lexware Office)
//!
//! A sink of bookkeeping vouchers — one per sale (`per_sale`) or per business day and register
//! (`daily_summary`), items per tax rate with posting categories from the pipeline's mapping —
//! and a source of sales vouchers and vendor contacts. The contract with the vendor and with
//! the sandbox simulator is `docs/connectors/lexoffice.md`.

mod client;
mod config;
mod cursor;
mod error;
mod json_text;
mod mapping;
mod sink;
mod source;
mod voucher;

use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, Manifest, Page, ReadRequest, RecordOutcome, Sink,
    Source, StreamDecl, WriteRequest,
};
use serde_json::Value;

pub use config::{Config, TaxType};
pub use error::LexofficeErrors;
pub use mapping::{Contact, Mapping};
pub use source::{sale_from_voucher, supplier_from_contact};
pub use voucher::{voucher_date, voucher_number};

use client::Client;

/// lexoffice allows 2 requests per second per client (token bucket) and answers 429 past that.
pub const REQUESTS_PER_SECOND: u32 = 2;

/// The lexoffice connector.
pub struct Lexoffice {
    client: Client,
}

impl Connector for Lexoffice {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "lexoffice",
            env!("CARGO_PKG_VERSION"),
            "Lexware Office (lexoffice)",
            "lexoffice bookkeeping: books sales and daily closures as sales vouchers; reads sales vouchers and vendor contacts",
        )
        .stream(StreamDecl::read_write("sales"))
        .stream(StreamDecl::write("closures"))
        .stream(StreamDecl::read("suppliers"))
        .egress_host(config::PRODUCTION_HOST)
        .egress_config_field("base_url")
        .rate_limit(REQUESTS_PER_SECOND, 1)
    }

    fn open(config: Config, host: Host) -> Result<Self, ConnectorError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Config(format!(
                "lexoffice: {}",
                problems.join("; ")
            )));
        }
        Ok(Self {
            client: Client::new(host, config),
        })
    }

    /// `GET /v1/profile`: one request, no side effects.
    fn check(&self) -> Result<CheckReport, ConnectorError> {
        let profile = self.client.get("profile", "profile")?;
        let company = profile
            .get("companyName")
            .and_then(Value::as_str)
            .unwrap_or("an unnamed organization");
        Ok(CheckReport::ok(format!(
            "lexoffice: API key accepted for {company}"
        )))
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn sink(&self) -> Option<&dyn Sink> {
        Some(self)
    }
}

impl Source for Lexoffice {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        source::Reader {
            client: &self.client,
        }
        .read(request)
    }
}

impl Sink for Lexoffice {
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

posbridge_plugin_api::export_connector!(Lexoffice);

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::sdk::export::full_manifest;

    #[test]
    fn manifest_declares_streams_secret_egress_and_rate_limit() {
        let m = full_manifest::<Lexoffice>();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        assert_eq!(m.name, "lexoffice");
        assert!(m.find_stream("sales").is_some_and(|s| s.read && s.write));
        assert!(m
            .find_stream("closures")
            .is_some_and(|s| !s.read && s.write));
        assert!(m
            .find_stream("suppliers")
            .is_some_and(|s| s.read && !s.write));
        assert_eq!(m.secrets, vec!["api_key".to_string()]);
        assert_eq!(m.egress_hosts, vec!["api.lexware.io".to_string()]);
        assert_eq!(m.egress_config_fields, vec!["base_url".to_string()]);
        let r = m.rate_limit.expect("rate limit declared");
        assert_eq!((r.requests, r.per_seconds), (2, 1));
    }
}
