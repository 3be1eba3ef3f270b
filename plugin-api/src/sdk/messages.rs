//! The requests and answers exchanged between host and connector, as JSON.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Asks a source for one page of a stream.
///
/// ```
/// use posbridge_plugin_api::ReadRequest;
/// let r: ReadRequest = serde_json::from_str(r#"{"stream":"sales","page_size":100}"#).unwrap();
/// assert!(r.cursor.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadRequest {
    pub stream: String,
    /// The cursor returned with the previous page (or checkpointed by the host), `None` at the start.
    #[serde(default)]
    pub cursor: Option<Value>,
    /// How many records the host would like at most.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Only records on or after this business day (the pipeline's `start` or `--from`).
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Only records on or before this business day (`--to`).
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

fn default_page_size() -> usize {
    500
}

/// One page of records and where to go on from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub records: Vec<Value>,
    /// The cursor to resume after this page; `None` when the source keeps none.
    pub cursor: Option<Value>,
    /// `true` when another page can be read right away.
    pub has_more: bool,
}

/// Asks a sink to write a batch. `idempotency_keys[i]` belongs to record `i`: a sink that
/// sees a key twice must not write the record twice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteRequest {
    pub stream: String,
    /// Sink mode from the pipeline (e.g. `per_sale`, `daily_summary`).
    #[serde(default)]
    pub mode: Option<String>,
    /// The pipeline's `mapping` section for this sink.
    #[serde(default)]
    pub mapping: Value,
    #[serde(default)]
    pub idempotency_keys: Vec<String>,
}

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Stored; `external_id` is the sink's id for it when it has one.
    Written { external_id: Option<String> },
    /// Already there (same idempotency key); nothing written.
    Duplicate { external_id: Option<String> },
    /// Refused for good; goes to the dead-letter store with the reason.
    Rejected { reason: String },
}

/// The verdict of a connector's own check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub ok: bool,
    pub message: String,
}

impl CheckReport {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}
