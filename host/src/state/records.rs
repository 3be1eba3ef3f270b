//! The records the state store takes and gives back.
//!
//! Timestamps given back are RFC 3339 strings in UTC with microseconds
//! (`2024-05-01T12:00:00.000000Z`): fixed width, so they sort as text in time order.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// One record the sink acknowledged, for the delivery ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// The idempotency key (unique within a pipeline, never empty).
    pub key: String,
    /// The stream the record came from.
    pub stream: String,
    /// The id the sink gave the record, if it gave one.
    pub external_id: Option<String>,
    /// A fingerprint of the record's content as delivered (see
    /// `pipeline::keys::content_fingerprint`), so a record whose id comes back with other
    /// amounts is caught instead of being skipped as a duplicate. `None` when not known.
    pub content_hash: Option<String>,
}

impl Delivered {
    /// A ledger entry without a content fingerprint.
    pub fn new(
        key: impl Into<String>,
        stream: impl Into<String>,
        external_id: Option<String>,
    ) -> Self {
        Self {
            key: key.into(),
            stream: stream.into(),
            external_id,
            content_hash: None,
        }
    }
}

/// What one checkpoint commits, in one transaction: the ledger entries of the records the sink
/// acknowledged, the records parked as dead letters (each also enters the ledger as
/// `dead-letter:<id>`, so a re-read does not park it again), and the cursor (`None` leaves the
/// saved cursor as it is).
#[derive(Debug, Clone, Copy, Default)]
pub struct Checkpoint<'a> {
    pub delivered: &'a [Delivered],
    pub dead_letters: &'a [NewDeadLetter],
    pub cursor: Option<&'a serde_json::Value>,
}

/// The stage of a pipeline where a record was dead-lettered.
pub mod stage {
    /// The canonical record failed `validate()`.
    pub const VALIDATE: &str = "validate";
    /// Mapping the record to the sink's shape failed.
    pub const MAP: &str = "map";
    /// The sink refused the record.
    pub const SINK: &str = "sink";
    /// The record's id came again with other content (see `pipeline::content_fingerprint`).
    pub const CONFLICT: &str = "conflict";
}

/// A record to park as a dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewDeadLetter {
    /// The pipeline that failed on it.
    pub pipeline: String,
    /// The run it failed in, if known.
    pub run_id: Option<i64>,
    /// The stream it came from.
    pub stream: String,
    /// Its idempotency key, if one could be derived.
    pub record_key: Option<String>,
    /// The record itself, as read.
    pub record: serde_json::Value,
    /// Why it failed, for a person.
    pub reason: String,
    /// Where it failed: one of [`stage`] (`"validate"`, `"map"`, `"sink"`).
    pub stage: String,
}

/// A stored dead letter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Its id, increasing in the order the dead letters were written.
    pub id: i64,
    /// The pipeline that failed on it.
    pub pipeline: String,
    /// The run it failed in, if known.
    pub run_id: Option<i64>,
    /// The stream it came from.
    pub stream: String,
    /// Its idempotency key, if one could be derived.
    pub record_key: Option<String>,
    /// The record itself, as read.
    pub record: serde_json::Value,
    /// Why it failed.
    pub reason: String,
    /// Where it failed: one of [`stage`].
    pub stage: String,
    /// When it was written.
    pub created_at: String,
    /// When it was resolved, if it was.
    pub resolved_at: Option<String>,
    /// The note given on resolution.
    pub note: Option<String>,
}

/// Which dead letters to list. They come oldest first (the order a replay should take).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterFilter {
    /// Only this pipeline's, or every pipeline's.
    pub pipeline: Option<String>,
    /// Also list the resolved ones.
    pub include_resolved: bool,
    /// At most this many.
    pub limit: usize,
}

impl Default for DeadLetterFilter {
    /// Every pipeline's unresolved dead letters, at most 100.
    fn default() -> Self {
        Self {
            pipeline: None,
            include_resolved: false,
            limit: 100,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every stream was read to the end.
    Succeeded,
    /// The run stopped on an error.
    Failed,
    /// The run was stopped by the operator.
    Cancelled,
    /// Its process ended without finishing it (killed, crashed, power cut); found `running`
    /// by a later process and marked so.
    Interrupted,
}

impl RunStatus {
    /// The name stored and shown (`succeeded`, `failed`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// `posbridge run` (and the other commands that run a pipeline by hand).
    Cli,
    /// A call of the HTTP API (`posbridge serve`).
    Api,
    /// A tick of the pipeline's `schedule`.
    Schedule,
}

impl RunTrigger {
    /// The name stored and shown (`cli`, `api`, `schedule`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Api => "api",
            Self::Schedule => "schedule",
        }
    }
}

impl std::fmt::Display for RunTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status stored for a run that has started and not finished
/// (still going, or its process died before finishing it).
pub const RUN_STATUS_RUNNING: &str = "running";

/// The outcome of a run, written once when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// How it ended.
    pub status: RunStatus,
    /// Records read from the source.
    pub read: u64,
    /// Records the sink acknowledged.
    pub written: u64,
    /// Records skipped because the ledger already had their key.
    pub duplicates: u64,
    /// Records parked as dead letters.
    pub dead_lettered: u64,
    /// Calls retried after a transient failure.
    pub retries: u64,
    /// The error that stopped the run, if any.
    pub error: Option<String>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// Its id, increasing in the order runs were started.
    pub id: i64,
    /// The pipeline it ran.
    pub pipeline: String,
    /// The arguments it was started with.
    pub args: serde_json::Value,
    /// When it started.
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// `running` until it ends, then a [`RunStatus`] name.
    pub status: String,
    /// Why it started: a [`RunTrigger`] name (`cli`, `api`, `schedule`).
    pub trigger: String,
    /// Records read from the source.
    pub read: u64,
    /// Records the sink acknowledged.
    pub written: u64,
    /// Records skipped as already delivered.
    pub duplicates: u64,
    /// Records parked as dead letters.
    pub dead_lettered: u64,
    /// Calls retried.
    pub retries: u64,
    /// The error that stopped it, if any.
    pub error: Option<String>,
}

/// What the state store knows of a client's idempotency key when a request claims it.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaim {
    /// The key was new (or its earlier request died with its process): the caller does the work
    /// and then completes or releases the key.
    Claimed,
    /// Another request with this key is being processed right now.
    InFlight {
        /// The fingerprint of that request.
        fingerprint: String,
    },
    /// A request with this key was done: its fingerprint and answer.
    Completed {
        /// The fingerprint of the request the key was first used with.
        fingerprint: String,
        /// Its answer, to give again.
        answer: serde_json::Value,
    },
}

/// The stored form of a timestamp: RFC 3339, UTC, microseconds, `Z`.
pub(crate) fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}
