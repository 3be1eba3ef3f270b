//! Retrying a dead letter: one record written again to its pipeline's sink, resolved when the
//! sink takes it. Shared by `posbridge dlq retry` and `POST /api/v1/deadletters/{id}/retry`.

use posbridge_plugin_api::model::{Closure, Sale};
use posbridge_plugin_api::{RecordOutcome, WriteRequest};
use serde::Serialize;

use super::{check_sale, closure_key, PipelineDef, SinkMode};
use crate::plugins::ConnectorHandle;
use crate::state::{DeadLetter, Delivered, StateStore};

/// What one retry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RetryOutcome {
    /// Resolved before; nothing done.
    AlreadyResolved,
    /// The sink took it (or had it already); the dead letter is resolved.
    Delivered { external_id: Option<String> },
    /// A training or null receipt in a daily summary: nothing to book; resolved.
    NothingToBook,
    /// The sale still does not reconcile; not sent.
    StillInvalid { reason: String },
    /// The sink refused it again.
    RefusedAgain { reason: String },
    /// The sink did not write it this time, but may later.
    NotWrittenYet { reason: String },
    /// The call to the sink failed.
    Failed { reason: String },
}

impl RetryOutcome {
    /// Whether the dead letter is resolved now.
    pub fn resolved(&self) -> bool {
        matches!(
            self,
            Self::AlreadyResolved | Self::Delivered { .. } | Self::NothingToBook
        )
    }
}

/// Writes dead letter `d` of pipeline `def` again to `sink` (opened from `def`), committing its
/// key to the ledger and resolving it when the sink takes it.
pub fn retry_dead_letter(
    def: &PipelineDef,
    sink: &ConnectorHandle,
    state: &dyn StateStore,
    d: &DeadLetter,
) -> anyhow::Result<RetryOutcome> {
    if d.resolved_at.is_some() {
        return Ok(RetryOutcome::AlreadyResolved);
    }
    if d.stream == "sales" && def.delivery.validate {
        if let Err(reason) = check_sale(&d.record) {
            return Ok(RetryOutcome::StillInvalid { reason });
        }
    }
    let key = d
        .record_key
        .clone()
        .unwrap_or_else(|| format!("dlq-{}", d.id));
    // In daily_summary mode the sink takes closures, not sales: a dead-lettered sale goes as a
    // supplementary closure of its own (its key derived like the runner's).
    let (record, write_key) = if def.sink.mode == SinkMode::DailySummary && d.stream == "sales" {
        let sale: Sale = serde_json::from_value(d.record.clone())?;
        match Closure::from_sales(std::slice::from_ref(&sale)).pop() {
            Some(c) => (
                serde_json::to_value(&c)?,
                closure_key(&c.id, std::slice::from_ref(&key)),
            ),
            None => {
                state.resolve_dead_letter(d.id, "nothing to book: not revenue")?;
                return Ok(RetryOutcome::NothingToBook);
            }
        }
    } else {
        (d.record.clone(), key.clone())
    };
    let req = WriteRequest {
        stream: def.sink_stream(&d.stream),
        mode: Some(def.sink.mode.as_str().into()),
        mapping: def.mapping.clone(),
        idempotency_keys: vec![write_key],
        lines_checked: false,
    };
    Ok(
        match sink
            .write(&req, std::slice::from_ref(&record))
            .map(|mut v| v.pop())
        {
            Ok(Some(RecordOutcome::Written { external_id }))
            | Ok(Some(RecordOutcome::Duplicate { external_id })) => {
                state.commit_batch(
                    &def.name,
                    &d.stream,
                    &[Delivered::new(key, d.stream.clone(), external_id.clone())],
                    None,
                )?;
                state.resolve_dead_letter(
                    d.id,
                    &format!(
                        "delivered by dlq retry{}",
                        external_id
                            .as_ref()
                            .map(|e| format!(" as {e}"))
                            .unwrap_or_default()
                    ),
                )?;
                RetryOutcome::Delivered { external_id }
            }
            Ok(Some(RecordOutcome::Rejected { reason })) => RetryOutcome::RefusedAgain { reason },
            Ok(Some(RecordOutcome::Retry { reason, .. })) => RetryOutcome::NotWrittenYet { reason },
            Ok(None) => anyhow::bail!("the sink answered no outcome"),
            Err(e) => RetryOutcome::Failed {
                reason: e.to_string(),
            },
        },
    )
}
