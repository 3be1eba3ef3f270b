//! The requests and answers exchanged between host and connector, as JSON.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConnectorError;

/// Asks a source for one page of a stream.
///
/// ```
/// use posbridge_plugin_api::ReadRequest;
/// let r: ReadRequest = serde_json::from_str(r#"{"stream":"sales","page_size":100}"#).unwrap();
/// assert!(r.cursor.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// The stream to read.
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
    /// `true` when the host parses every NDJSON line of the page itself and fails the page on
    /// one that is not a JSON object (a pipeline's pages: the host reads each record for its
    /// key). A source that parses its lines only to report bad input may then skip that: on
    /// such a failure the host reads the page again with this `false`, so the error the user
    /// sees is still the source's own (a file and line, say). `false`, the default and what
    /// an older host sends: check as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_checks_lines: bool,
}

fn default_page_size() -> usize {
    500
}

/// One page of records and where to go on from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The records, canonical JSON objects for canonical streams.
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
    /// The stream to write.
    pub stream: String,
    /// Sink mode from the pipeline (e.g. `per_sale`, `daily_summary`).
    #[serde(default)]
    pub mode: Option<String>,
    /// The pipeline's `mapping` section for this sink.
    #[serde(default)]
    pub mapping: Value,
    /// One key per record, in order.
    #[serde(default)]
    pub idempotency_keys: Vec<String>,
    /// `true` when the host parsed every NDJSON line of the batch as one JSON object before
    /// sending it (a pipeline's batches: the host reads each record for its key), so a sink
    /// that writes lines through may skip checking them again. `false`, the default and what
    /// an older host sends, means nothing is promised: check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lines_checked: bool,
}

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Stored; `external_id` is the sink's id for it when it has one.
    Written {
        /// The sink's id of the stored record.
        external_id: Option<String>,
    },
    /// Already there (same idempotency key); nothing written.
    Duplicate {
        /// The sink's id of the copy it already had.
        external_id: Option<String>,
    },
    /// Refused for good; goes to the dead-letter store with the reason.
    Rejected {
        /// Why, for the dead letter.
        reason: String,
    },
    /// Not written this time for a reason that may pass (5xx, timeout, dropped connection,
    /// 429). The host commits the other records of the batch and sends this one again after a
    /// backoff (at least `retry_after_ms` when given), with the same idempotency key.
    Retry {
        /// What went wrong this time.
        reason: String,
        /// The least time to wait before sending it again, when the vendor said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl RecordOutcome {
    /// The outcome of a record whose write failed with `err`: errors that may pass on retry
    /// (`Transient`, `RateLimited`) and a cancellation by the host ask the host to send the
    /// record again; the rest reject it.
    ///
    /// A sink uses this instead of `?` inside its per-record loop, so one vendor hiccup does not
    /// throw away the outcomes of the records already written in the batch.
    ///
    /// ```
    /// use posbridge_plugin_api::{ConnectorError, RecordOutcome};
    /// let o = RecordOutcome::failed(&ConnectorError::Transient("502 Bad Gateway".into()));
    /// assert!(matches!(o, RecordOutcome::Retry { .. }));
    /// let o = RecordOutcome::failed(&ConnectorError::Permanent("422 invalid tax rule".into()));
    /// assert!(matches!(o, RecordOutcome::Rejected { .. }));
    /// ```
    pub fn failed(err: &ConnectorError) -> Self {
        match err {
            ConnectorError::Transient(m) => Self::Retry {
                reason: m.clone(),
                retry_after_ms: None,
            },
            ConnectorError::RateLimited {
                retry_after,
                message,
            } => Self::Retry {
                reason: message.clone(),
                retry_after_ms: retry_after.map(|d| d.as_millis() as u64),
            },
            // The host stopped the call (timeout or Ctrl-C) before this record was tried:
            // nothing is known to be wrong with it.
            ConnectorError::Cancelled => Self::Retry {
                reason: "cancelled by the host before it was written".into(),
                retry_after_ms: None,
            },
            other => Self::Rejected {
                reason: other.to_string(),
            },
        }
    }

    /// The outcome of a record a sink left untried because an earlier record of the batch
    /// was answered `cause`, a retry (the vendor is down or rate limiting: trying the rest
    /// would only hammer it). `None` when `cause` is not a retry.
    ///
    /// ```
    /// use posbridge_plugin_api::{ConnectorError, RecordOutcome};
    /// let cause = RecordOutcome::failed(&ConnectorError::Transient("503".into()));
    /// assert!(RecordOutcome::untried_after(&cause).unwrap().is_retry());
    /// assert!(RecordOutcome::untried_after(&RecordOutcome::Written { external_id: None }).is_none());
    /// ```
    pub fn untried_after(cause: &RecordOutcome) -> Option<Self> {
        match cause {
            Self::Retry {
                reason,
                retry_after_ms,
            } => Some(Self::Retry {
                reason: format!("not tried: an earlier record of the batch failed ({reason})"),
                retry_after_ms: *retry_after_ms,
            }),
            _ => None,
        }
    }

    /// The outcome of one write in a sink's per-record loop: the write's own outcome, or the
    /// outcome of its error ([`RecordOutcome::failed`]). An `Auth` error stays an error: every
    /// record would fail alike, so the whole call fails. Follow it with
    /// [`RecordOutcome::untried_after`] to answer the rest of the batch without trying it.
    ///
    /// ```
    /// use posbridge_plugin_api::{ConnectorError, RecordOutcome};
    /// let o = RecordOutcome::of_write(Err(ConnectorError::Transient("503".into()))).unwrap();
    /// assert!(o.is_retry());
    /// assert!(RecordOutcome::of_write(Err(ConnectorError::Auth("401".into()))).is_err());
    /// ```
    pub fn of_write(result: Result<RecordOutcome, ConnectorError>) -> Result<Self, ConnectorError> {
        match result {
            Ok(outcome) => Ok(outcome),
            Err(e @ ConnectorError::Auth(_)) => Err(e),
            Err(e) => Ok(Self::failed(&e)),
        }
    }

    /// Whether the host should send this record again.
    pub fn is_retry(&self) -> bool {
        matches!(self, Self::Retry { .. })
    }
}

/// The verdict of a connector's own check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Whether the configuration works.
    pub ok: bool,
    /// What was checked, or what is wrong.
    pub message: String,
}

impl CheckReport {
    /// A passing check.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
        }
    }
    /// A failing check (the credentials work, something else does not).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}
