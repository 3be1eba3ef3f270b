//! # posbridge generic file connector
//!
//! Source and sink for NDJSON, CSV and JSON-array files carrying one canonical stream.
//! The file logic lives in [`FileSource`] and [`FileSink`], which need nothing from the host;
//! [`GenericConnector`] wires them to the plugin SDK. See `docs/connectors/generic.md` for the
//! configuration, the cursor, the CSV flattening and the durability design.

mod config;
mod connector;
mod csv_layout;
mod cursor;
mod durable;
mod error;
mod files;
mod ledger;
mod reader;
mod sink;
mod source;

pub use config::{Format, GenericConfig, Settings};
pub use connector::GenericConnector;
pub use csv_layout::{CellKind, CsvLayout};
pub use cursor::Cursor;
pub use error::FileError;
pub use ledger::{ledger_path, LedgerEntry, LEDGER_SUFFIX};
pub use sink::{FileSink, Recovery};
pub use source::FileSource;

posbridge_plugin_api::export_connector!(GenericConnector);
