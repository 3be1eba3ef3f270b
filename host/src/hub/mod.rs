//! The canonical hub: what posbridge keeps of what it syncs, per store, in the state database
//! (`docs/hub.md`).
//!
//! - [`HubStore`]: canonical sales (with lines), catalogue records and closures, indexed by
//!   store, business day and receipt id; writes are idempotent by the runner's idempotency key.
//! - The built-in connector `hub` ([`connector`]): a sink and a source over the store, so a
//!   pipeline can be `kassandro → hub` or `hub → sevdesk`.
//! - The exports the HTTP API answers from it: [`export_sales_data`] (summary and transactions,
//!   streamed as JSON or CSV) and [`export_receipt_data`] (one receipt with tax breakdown and TSE).

pub mod connector;
mod error;
mod money;
mod period;
mod receipt_export;
mod sales_export;
mod store;
mod summary;

pub use connector::{builtin, HubConfig, HubConnector, HUB_CONNECTOR};
pub use error::HubError;
pub use money::two_decimals;
pub use period::{Bound, Period};
pub use receipt_export::{export_receipt_data, find_receipt, receipt_json, StoreScope};
pub use sales_export::{
    export_sales_data, summary_json, transaction_json, ExportFormat, CSV_COLUMNS,
};
pub use store::{HubStore, LineFigures, SaleFigures, StoredRecord, CATALOGUE_STREAMS};
pub use summary::{sales_summary, SalesSummary, TopProduct, COUNTED_KINDS, TOP_PRODUCTS};

#[cfg(test)]
mod tests;
