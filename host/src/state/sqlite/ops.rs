//! The SQLite side of what operations keep: schedule progress and client idempotency keys
//! (tables of `0005_ops.sql`).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::db_error::DbContext;
use crate::state::records::format_timestamp;
use crate::state::run_owner::{current_owner, owner_is_gone};
use crate::state::{IdempotencyClaim, StateError};

pub(super) fn schedule_handled_until(
    conn: &Connection,
    pipeline: &str,
) -> Result<Option<DateTime<Utc>>, StateError> {
    const DOING: &str = "reading a schedule's progress";
    let text: Option<String> = conn
        .query_row(
            "SELECT handled_until FROM schedule_ticks WHERE pipeline = ?1",
            [pipeline],
            |row| row.get(0),
        )
        .optional()
        .context(DOING)?;
    text.map(|t| {
        DateTime::parse_from_rfc3339(&t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|e| StateError::Corrupt {
                what: format!("schedule progress of {pipeline}"),
                source: Box::new(e),
            })
    })
    .transpose()
}

pub(super) fn set_schedule_handled_until(
    conn: &Connection,
    pipeline: &str,
    until: DateTime<Utc>,
) -> Result<(), StateError> {
    conn.execute(
        "INSERT INTO schedule_ticks (pipeline, handled_until, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (pipeline)
         DO UPDATE SET handled_until = excluded.handled_until, updated_at = excluded.updated_at",
        params![
            pipeline,
            format_timestamp(until),
            format_timestamp(Utc::now())
        ],
    )
    .context("saving a schedule's progress")?;
    Ok(())
}

pub(super) fn claim_idempotency_key(
    conn: &mut Connection,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<IdempotencyClaim, StateError> {
    const DOING: &str = "claiming an idempotency key";
    // IMMEDIATE: the read and the insert below are one step for every other writer.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context(DOING)?;
    let found: Option<(String, Option<String>, String)> = tx
        .query_row(
            "SELECT fingerprint, answer, owner FROM idempotency_keys
             WHERE scope = ?1 AND idem_key = ?2",
            [scope, key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .context(DOING)?;
    let now = format_timestamp(Utc::now());
    let claim = match found {
        None => {
            tx.execute(
                "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, owner, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![scope, key, fingerprint, current_owner(), now],
            )
            .context(DOING)?;
            IdempotencyClaim::Claimed
        }
        Some((stored, Some(answer), _)) => IdempotencyClaim::Completed {
            fingerprint: stored,
            answer: serde_json::from_str(&answer).map_err(|e| StateError::Corrupt {
                what: format!("answer of idempotency key {key:?}"),
                source: Box::new(e),
            })?,
        },
        // Its process died mid-request: the vendor call carries the same key, so doing the
        // request again is safe (the vendor replays or does it once).
        Some((stored, None, owner)) if stored == fingerprint && owner_is_gone(&owner) => {
            tx.execute(
                "UPDATE idempotency_keys SET owner = ?1, created_at = ?2
                 WHERE scope = ?3 AND idem_key = ?4",
                params![current_owner(), now, scope, key],
            )
            .context(DOING)?;
            IdempotencyClaim::Claimed
        }
        Some((stored, None, _)) => IdempotencyClaim::InFlight {
            fingerprint: stored,
        },
    };
    tx.commit().context(DOING)?;
    Ok(claim)
}

pub(super) fn complete_idempotency_key(
    conn: &Connection,
    scope: &str,
    key: &str,
    answer: &serde_json::Value,
) -> Result<(), StateError> {
    conn.execute(
        "UPDATE idempotency_keys SET answer = ?1, completed_at = ?2
         WHERE scope = ?3 AND idem_key = ?4 AND answer IS NULL",
        params![answer.to_string(), format_timestamp(Utc::now()), scope, key],
    )
    .context("storing the answer of an idempotency key")?;
    Ok(())
}

pub(super) fn release_idempotency_key(
    conn: &Connection,
    scope: &str,
    key: &str,
) -> Result<(), StateError> {
    conn.execute(
        "DELETE FROM idempotency_keys WHERE scope = ?1 AND idem_key = ?2 AND answer IS NULL",
        [scope, key],
    )
    .context("releasing an idempotency key")?;
    Ok(())
}
