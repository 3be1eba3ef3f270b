//! # posbridge connector: Kassandro
//!
//! Kassandro (Austrian cloud cash register, API v1.1) as a source of registers, articles
//! (products and categories), payment methods and receipts (sales), and as a sink of receipts
//! with their attachments. The contract with the vendor and with the sandbox simulator is
//! `docs/connectors/kassandro.md`.

mod attachment;
mod auth;
mod catalog;
mod client;
mod config;
mod cursor;
mod error;
mod fields;
mod http;
mod json_text;
mod payment_names;
mod receipt;
mod receipt_details;
mod receipt_in;
mod rksv;
mod sink;
mod source;
mod vat;
mod vienna;

use std::sync::Mutex;

use posbridge_plugin_api::{
    Actions, CheckReport, Connector, ConnectorError, Host, Manifest, NdjsonPage, Page, ReadRequest,
    RecordOutcome, Sink, Source, StreamDecl, WriteRequest,
};
use serde_json::{json, Value};

pub use config::Config;
pub use error::KassandroError;

use attachment::AttachmentFile;
use auth::TokenKind;
use client::Client;
use receipt::StoreOfRegister;

/// The Kassandro connector.
pub struct Kassandro {
    client: Client,
    stores: Mutex<Option<StoreOfRegister>>,
    fetched: source::Fetched,
}

impl Kassandro {
    fn reader(&self) -> source::SalesReader<'_> {
        source::SalesReader {
            client: &self.client,
            stores: &self.stores,
            fetched: &self.fetched,
        }
    }
}

impl Connector for Kassandro {
    type Config = Config;

    fn manifest() -> Manifest {
        Manifest::new(
            "kassandro",
            env!("CARGO_PKG_VERSION"),
            "Kassandro",
            "Kassandro cash register (Austria, RKSV): registers, articles, payment methods and receipts; writes receipts and attachments",
        )
        .stream(StreamDecl::read_write("sales"))
        .stream(StreamDecl::read("registers"))
        .stream(StreamDecl::read("products"))
        .stream(StreamDecl::read("categories"))
        .stream(StreamDecl::read("payment_methods"))
        .action(
            "upload_attachment",
            "Uploads a file to a receipt of the configured register: {receiptId, fileName, contentBase64, contentType?}",
        )
        .egress_host(config::PRODUCTION_HOST)
        .egress_config_field("base_url")
    }

    // Every config check is in the schema: the host refuses a bad value, naming its JSON path,
    // before `open`.
    fn open(config: Config, host: Host) -> Result<Self, ConnectorError> {
        Ok(Self {
            client: Client::new(host, config),
            stores: Mutex::new(None),
            fetched: source::Fetched::default(),
        })
    }

    fn check(&self) -> Result<CheckReport, ConnectorError> {
        let body = self
            .client
            .get(TokenKind::Account, "cashregisters", &[], "cashregisters")?;
        let registers = catalog::registers(&body, self.client.config())?;
        if let Some(id) = self.client.config().cash_register_id {
            if !registers.iter().any(|r| r.id == id.to_string()) {
                return Ok(CheckReport::failed(format!(
                    "kassandro: the API key works, but the account has no cash register {id}"
                )));
            }
        }
        Ok(CheckReport::ok(format!(
            "kassandro: API key accepted, {} cash register(s)",
            registers.len()
        )))
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn sink(&self) -> Option<&dyn Sink> {
        Some(self)
    }

    fn actions(&self) -> Option<&dyn Actions> {
        Some(self)
    }
}

impl Source for Kassandro {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        self.reader().read(request)
    }

    fn read_ndjson(&self, request: &ReadRequest) -> Result<NdjsonPage, ConnectorError> {
        self.reader().read_ndjson(request)
    }
}

impl Sink for Kassandro {
    fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        sink::ReceiptWriter {
            client: &self.client,
        }
        .write(request, records)
    }
}

impl Actions for Kassandro {
    fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError> {
        if name != "upload_attachment" {
            return Err(ConnectorError::Config(format!(
                "kassandro has no action {name:?}"
            )));
        }
        let text = |k: &str| input.get(k).and_then(Value::as_str);
        let (Some(receipt_id), Some(file_name), Some(content)) =
            (text("receiptId"), text("fileName"), text("contentBase64"))
        else {
            return Err(ConnectorError::Permanent(
                "kassandro: upload_attachment needs receiptId, fileName and contentBase64".into(),
            ));
        };
        let register = self.client.config().cash_register_id.ok_or_else(|| {
            ConnectorError::Config(
                "kassandro: cash_register_id is needed to upload attachments".into(),
            )
        })?;
        let file = AttachmentFile::from_base64(file_name, text("contentType"), content)
            .and_then(|f| f.check().map(|_| f))
            .map_err(|e| ConnectorError::Permanent(format!("kassandro: {e}")))?;
        let answer = sink::ReceiptWriter {
            client: &self.client,
        }
        .upload(TokenKind::CashRegister(register), receipt_id, &file)?;
        Ok(json!({
            "msg": answer.get("msg").cloned().unwrap_or(Value::Null),
            "receipt": answer.get("receipt").cloned().unwrap_or(Value::Null),
        }))
    }
}

posbridge_plugin_api::export_connector!(Kassandro);

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::sdk::export::full_manifest;

    #[test]
    fn manifest_declares_streams_secret_and_egress() {
        let m = full_manifest::<Kassandro>();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        assert_eq!(m.name, "kassandro");
        assert!(m.find_stream("sales").is_some_and(|s| s.read && s.write));
        for s in ["registers", "products", "categories", "payment_methods"] {
            assert!(m.find_stream(s).is_some_and(|d| d.read && !d.write), "{s}");
        }
        assert_eq!(m.secrets, vec!["api_key".to_string()]);
        assert_eq!(m.egress_hosts, vec!["devapi.kassandro.at".to_string()]);
        assert_eq!(m.egress_config_fields, vec!["base_url".to_string()]);
        assert!(m.rate_limit.is_none());
    }
}
