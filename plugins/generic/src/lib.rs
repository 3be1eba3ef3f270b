//! # posbridge generic connector
//!
//! Source and sink for NDJSON, CSV and JSON-array files carrying one canonical stream, or for
//! a JSON HTTP endpoint (a paginated REST source, a signed-batch sink).
//! The file logic lives in [`FileSource`] and [`FileSink`], which need nothing from the host;
//! the HTTP logic in [`http::HttpSource`] and [`http::HttpSink`], which reach the network
//! through an [`http::HttpClient`] (the host, in the plugin).
//! [`GenericConnector`] wires them to the plugin SDK. See `docs/connectors/generic.md` for the
//! configuration, the cursors, the CSV flattening, the durability design and the signature.

mod config;
mod connector;
mod csv_layout;
mod cursor;
mod durable;
mod error;
mod files;
pub mod http;
mod key_filter;
mod ledger;
mod reader;
mod sink;
mod source;

pub use config::{Format, GenericConfig, Settings, Transport};
pub use connector::GenericConnector;
pub use csv_layout::{CellKind, CsvLayout};
pub use cursor::Cursor;
pub use error::FileError;
pub use ledger::{ledger_path, LedgerEntry, LEDGER_SUFFIX};
pub use sink::{FileSink, Recovery};
pub use source::FileSource;

posbridge_plugin_api::export_connector!(GenericConnector);
