//! The SQLite state store: one database file, WAL journal, `synchronous=FULL`, versioned
//! migrations. Several processes may open the same file; writers wait for each other up to the
//! busy timeout.

mod db_error;
mod ledger;
mod migrations;
mod ops;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use self::db_error::DbContext;
use self::ledger::LedgerView;
use super::records::format_timestamp;
use super::run_owner::{current_owner, owner_is_gone};
use super::{
    Checkpoint, DeadLetter, DeadLetterFilter, IdempotencyClaim, NewDeadLetter, RunRecord,
    RunStatus, RunSummary, RunTrigger, StateError, StateStore, RUN_STATUS_RUNNING,
};

/// How long a write waits for another process's write to finish before failing with
/// [`StateError::Busy`]. Writes are short (one batch), so this is generous.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's page cache, in KiB (`PRAGMA cache_size` takes a negative number for KiB): SQLite's
/// default, 2 MiB. It was 4 MiB for the ledger's old B-tree index, whose leaf pages every batch
/// read back otherwise; the ledger is now an append-only log whose look-ups go through filters
/// and one index block in memory (`ledger`). 4 MiB was no faster (1,000,000 sales, per_sale and
/// a re-run of duplicates; `docs/performance.md`, "2026-12-05: page caches") but kept 2 MiB
/// more resident once a long run had filled it.
const CACHE_KIB: i64 = 2 * 1024;

/// WAL pages before SQLite copies them back into the database file (`wal_autocheckpoint`;
/// default 1,000), for a WAL file of up to ≈ 40 MB. Chosen for the ledger's old B-tree index,
/// whose hashed keys dirtied pages all over it: a longer WAL copied a page dirtied by ten
/// batches back once instead of ten times. The ledger is now an append-only log (schema 10),
/// whose batches dirty mostly its last pages; the value was not measured again since.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// [`StateStore`] on a SQLite file.
///
/// One connection behind a mutex: the store is shared by the runner's threads, and SQLite allows
/// one writer at a time anyway.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The map of recent ledger entries and the segments' filters (see `ledger`). Locked after
    /// `conn`, never before.
    ledger: Mutex<LedgerView>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with another busy timeout.
    pub fn open_with_busy_timeout(path: &Path, busy_timeout: Duration) -> Result<Self, StateError> {
        create_private_file(path)?;
        let conn = Connection::open(path).context(&format!("opening {}", path.display()))?;
        Self::configure(conn, Some(path.to_path_buf()), busy_timeout)
    }

    /// A store in memory, gone when dropped (for tests of code that uses a store).
    pub fn open_in_memory() -> Result<Self, StateError> {
        let conn = Connection::open_in_memory().context("opening an in-memory database")?;
        Self::configure(conn, None, DEFAULT_BUSY_TIMEOUT)
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The migrated connection itself, for a store of its own on the same database (the hub).
    pub fn into_connection(self) -> Connection {
        self.conn
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The schema version of the database (the last applied migration).
    pub fn schema_version(&self) -> Result<i64, StateError> {
        migrations::applied_version(&self.conn())
    }

    fn configure(
        mut conn: Connection,
        path: Option<PathBuf>,
        busy_timeout: Duration,
    ) -> Result<Self, StateError> {
        // Set first: switching the journal mode and migrating may wait for another process.
        conn.busy_timeout(busy_timeout)
            .context("setting the busy timeout")?;
        if path.is_some() {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .context("switching to the WAL journal")?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StateError::Backend {
                    context: "switching to the WAL journal".into(),
                    source: format!("the file system kept journal_mode={mode}").into(),
                });
            }
        }
        // FULL: a commit is on disk when commit_batch returns, so a power cut cannot lose a
        // ledger entry of a batch the sink already has (which would deliver it twice).
        conn.pragma_update(None, "synchronous", "FULL")
            .context("setting synchronous=FULL")?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .context("setting the page cache size")?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .context("setting the WAL checkpoint interval")?;
        migrations::migrate(&mut conn, migrations::MIGRATIONS)?;
        ledger::ensure_indexed(
            &mut conn,
            ledger::RECENT_ROWS_BEFORE_MERGE,
            ledger::SEGMENTS_PER_COMPACTION,
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            ledger: Mutex::new(LedgerView::new(
                ledger::RECENT_ROWS_BEFORE_MERGE,
                ledger::SEGMENTS_PER_COMPACTION,
            )),
            path,
        })
    }

    /// The same store indexing its recent ledger entries as a segment once there are `rows` of
    /// them, instead of after 100,000 (see `docs/decisions/010-ledger-write-amplification.md`).
    /// For tests that must see merges on small ledgers; the default is what to run with.
    pub fn with_ledger_merge_after(self, rows: usize) -> Self {
        self.with_ledger_shape(rows, ledger::SEGMENTS_PER_COMPACTION)
    }

    /// [`Self::with_ledger_merge_after`], compacting `segments` segments of one level into one of
    /// the next instead of 16: for tests that must see several levels on small ledgers.
    pub fn with_ledger_shape(self, merge_after: usize, segments: usize) -> Self {
        Self {
            ledger: Mutex::new(LedgerView::new(merge_after, segments)),
            ..self
        }
    }

    /// What this process knows of the ledger; take it while holding the connection.
    fn ledger(&self) -> MutexGuard<'_, LedgerView> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection. A panic while it was held left no transaction open (rusqlite rolls back
    /// on drop), so a poisoned lock is safe to take over.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Creates the file readable by its owner only: it may hold cached vendor tokens. SQLite gives
/// its `-wal` and `-shm` files the same permissions.
fn create_private_file(path: &Path) -> Result<(), StateError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(StateError::Backend {
            context: format!("creating {}", path.display()),
            source: Box::new(err),
        }),
    }
}

/// Reads a JSON text column; a value that is not JSON is reported as corruption.
fn json_column(row: &Row<'_>, idx: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(err))
    })
}

/// A `LIMIT` value: `usize` beyond `i64` means "no limit" anyway.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

const DEAD_LETTER_COLUMNS: &str =
    "id, pipeline, run_id, stream, record_key, record, reason, stage, \
                                   created_at, resolved_at, note";

fn dead_letter_from_row(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: row.get(0)?,
        pipeline: row.get(1)?,
        run_id: row.get(2)?,
        stream: row.get(3)?,
        record_key: row.get(4)?,
        record: json_column(row, 5)?,
        reason: row.get(6)?,
        stage: row.get(7)?,
        created_at: row.get(8)?,
        resolved_at: row.get(9)?,
        note: row.get(10)?,
    })
}

const RUN_COLUMNS: &str = "id, pipeline, args, started_at, finished_at, status, records_read, \
                           written, duplicates, dead_lettered, retries, error, started_by";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        pipeline: row.get(1)?,
        args: json_column(row, 2)?,
        started_at: row.get(3)?,
        finished_at: row.get(4)?,
        status: row.get(5)?,
        read: row.get(6)?,
        written: row.get(7)?,
        duplicates: row.get(8)?,
        dead_lettered: row.get(9)?,
        retries: row.get(10)?,
        error: row.get(11)?,
        trigger: row.get(12)?,
    })
}

impl StateStore for SqliteStore {
    fn cursor(
        &self,
        pipeline: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, StateError> {
        self.conn()
            .query_row(
                "SELECT cursor FROM cursors WHERE pipeline = ?1 AND stream = ?2",
                [pipeline, stream],
                |row| json_column(row, 0),
            )
            .optional()
            .context("reading a cursor")
    }

    fn commit(
        &self,
        pipeline: &str,
        stream: &str,
        checkpoint: &Checkpoint<'_>,
    ) -> Result<Vec<i64>, StateError> {
        const DOING: &str = "committing a batch";
        let mut conn = self.conn();
        // IMMEDIATE: take the write lock now, so a concurrent writer makes us wait (busy
        // timeout) instead of failing when a read transaction tries to become a write.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(DOING)?;
        let now = format_timestamp(Utc::now());
        if let Some(cursor) = checkpoint.cursor {
            tx.execute(
                "INSERT INTO cursors (pipeline, stream, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pipeline, stream)
                 DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                params![pipeline, stream, cursor.to_string(), now],
            )
            .context(DOING)?;
        }
        let mut dead_letter_ids = Vec::with_capacity(checkpoint.dead_letters.len());
        let mut view = self.ledger();
        let mut appended = ledger::before_append(&tx, &mut view)?;
        {
            for item in checkpoint.delivered {
                let entry = ledger::Entry {
                    pipeline,
                    key: &item.key,
                    stream: &item.stream,
                    external_id: item.external_id.as_deref(),
                    delivered_at: &now,
                    content_hash: item.content_hash.as_deref(),
                };
                ledger::append(&tx, &entry, &mut appended)?;
            }
            let mut park = tx
                .prepare_cached(
                    "INSERT INTO dead_letters
                         (pipeline, run_id, stream, record_key, record, reason, stage, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     RETURNING id",
                )
                .context(DOING)?;
            for dl in checkpoint.dead_letters {
                let id: i64 = park
                    .query_row(
                        params![
                            dl.pipeline,
                            dl.run_id,
                            dl.stream,
                            dl.record_key,
                            dl.record.to_string(),
                            dl.reason,
                            dl.stage,
                            now,
                        ],
                        |row| row.get(0),
                    )
                    .context(DOING)?;
                if let Some(key) = &dl.record_key {
                    let external_id = format!("dead-letter:{id}");
                    let entry = ledger::Entry {
                        pipeline,
                        key,
                        stream: &dl.stream,
                        external_id: Some(&external_id),
                        delivered_at: &now,
                        content_hash: None,
                    };
                    ledger::append(&tx, &entry, &mut appended)?;
                }
                dead_letter_ids.push(id);
            }
        }
        // An error above drops `tx`, which rolls back the cursor, the keys and the dead letters
        // together.
        tx.commit().context(DOING)?;
        if ledger::after_commit(&mut view, appended) {
            // The batch is committed whatever happens here: a merge that fails (another
            // process holds the lock past the busy timeout) is tried again after the next one.
            let started = std::time::Instant::now();
            match ledger::merge(&mut conn, &mut view) {
                Ok(rows) => tracing::debug!(
                    rows,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "indexed recent ledger entries"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot index recent ledger entries yet"),
            }
        }
        Ok(dead_letter_ids)
    }

    fn delivered_fingerprints(
        &self,
        pipeline: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StateError> {
        const DOING: &str = "looking up delivered keys";
        let mut conn = self.conn();
        // One read transaction: the segments and the recent entries from one snapshot.
        let tx = conn.transaction().context(DOING)?;
        let found = ledger::delivered_fingerprints(&tx, &mut self.ledger(), pipeline, keys)?;
        tx.commit().context(DOING)?;
        Ok(found)
    }

    fn reset_cursors(&self, pipeline: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM cursors WHERE pipeline = ?1", [pipeline])
            .context("resetting cursors")?;
        Ok(())
    }

    fn forget_delivered(&self, pipeline: &str) -> Result<u64, StateError> {
        ledger::forget(&mut self.conn(), pipeline)
    }

    fn dead_letter(&self, dl: &NewDeadLetter) -> Result<i64, StateError> {
        self.conn()
            .query_row(
                "INSERT INTO dead_letters
                     (pipeline, run_id, stream, record_key, record, reason, stage, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 RETURNING id",
                params![
                    dl.pipeline,
                    dl.run_id,
                    dl.stream,
                    dl.record_key,
                    dl.record.to_string(),
                    dl.reason,
                    dl.stage,
                    format_timestamp(Utc::now()),
                ],
                |row| row.get(0),
            )
            .context("writing a dead letter")
    }

    fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StateError> {
        let mut conditions = Vec::new();
        if filter.pipeline.is_some() {
            conditions.push("pipeline = ?2");
        }
        if !filter.include_resolved {
            conditions.push("resolved_at IS NULL");
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters {where_clause} ORDER BY id LIMIT ?1"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).context("listing dead letters")?;
        let limit = sql_limit(filter.limit);
        let rows = match &filter.pipeline {
            Some(pipeline) => stmt.query_map(params![limit, pipeline], dead_letter_from_row),
            None => stmt.query_map(params![limit], dead_letter_from_row),
        }
        .context("listing dead letters")?;
        rows.collect::<Result<_, _>>()
            .context("reading dead letters")
    }

    fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>, StateError> {
        self.conn()
            .query_row(
                &format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?1"),
                [id],
                dead_letter_from_row,
            )
            .optional()
            .context("reading a dead letter")
    }

    fn resolve_dead_letter(&self, id: i64, note: &str) -> Result<(), StateError> {
        const DOING: &str = "resolving a dead letter";
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(DOING)?;
        let changed = tx
            .execute(
                "UPDATE dead_letters SET resolved_at = ?1, note = ?2
                 WHERE id = ?3 AND resolved_at IS NULL",
                params![format_timestamp(Utc::now()), note, id],
            )
            .context(DOING)?;
        if changed == 0 {
            let exists = tx
                .query_row("SELECT 1 FROM dead_letters WHERE id = ?1", [id], |_| Ok(()))
                .optional()
                .context(DOING)?
                .is_some();
            return Err(if exists {
                StateError::DeadLetterAlreadyResolved(id)
            } else {
                StateError::DeadLetterNotFound(id)
            });
        }
        tx.commit().context(DOING)
    }

    fn start_run(
        &self,
        pipeline: &str,
        started_at: DateTime<Utc>,
        args: &serde_json::Value,
        trigger: RunTrigger,
    ) -> Result<i64, StateError> {
        self.conn()
            .query_row(
                "INSERT INTO runs (pipeline, args, started_at, status, owner, started_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 RETURNING id",
                params![
                    pipeline,
                    args.to_string(),
                    format_timestamp(started_at),
                    RUN_STATUS_RUNNING,
                    current_owner(),
                    trigger.as_str()
                ],
                |row| row.get(0),
            )
            .context("recording the start of a run")
    }

    fn mark_interrupted_runs(&self, pipeline: Option<&str>) -> Result<u64, StateError> {
        const DOING: &str = "marking interrupted runs";
        let conn = self.conn();
        let running: Vec<(i64, String, Option<String>)> = {
            let mut stmt = conn
                .prepare_cached("SELECT id, pipeline, owner FROM runs WHERE status = ?1")
                .context(DOING)?;
            let rows = stmt
                .query_map([RUN_STATUS_RUNNING], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .context(DOING)?;
            rows.collect::<Result<_, _>>().context(DOING)?
        };
        let mut marked = 0;
        for (id, p, owner) in running {
            if pipeline.is_some_and(|want| want != p) {
                continue;
            }
            // Runs recorded before owners were kept (owner NULL) cannot still be going: the
            // process that wrote them ran an older posbridge.
            let gone = owner.as_deref().is_none_or(owner_is_gone);
            if !gone {
                continue;
            }
            marked += conn
                .execute(
                    "UPDATE runs SET status = ?1, finished_at = ?2,
                         error = COALESCE(error, ?3)
                     WHERE id = ?4 AND status = ?5",
                    params![
                        RunStatus::Interrupted.as_str(),
                        format_timestamp(Utc::now()),
                        "the process running it ended before it finished (killed or crashed); \
                         a new run resumes from the last checkpoint",
                        id,
                        RUN_STATUS_RUNNING
                    ],
                )
                .context(DOING)? as u64;
        }
        Ok(marked)
    }

    fn finish_run(&self, run_id: i64, summary: &RunSummary) -> Result<(), StateError> {
        const DOING: &str = "recording the end of a run";
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context(DOING)?;
        let changed = tx
            .execute(
                "UPDATE runs SET finished_at = ?1, status = ?2, records_read = ?3, written = ?4,
                     duplicates = ?5, dead_lettered = ?6, retries = ?7, error = ?8
                 WHERE id = ?9 AND finished_at IS NULL",
                params![
                    format_timestamp(summary.finished_at),
                    summary.status.as_str(),
                    summary.read,
                    summary.written,
                    summary.duplicates,
                    summary.dead_lettered,
                    summary.retries,
                    summary.error,
                    run_id,
                ],
            )
            .context(DOING)?;
        if changed == 0 {
            let exists = tx
                .query_row("SELECT 1 FROM runs WHERE id = ?1", [run_id], |_| Ok(()))
                .optional()
                .context(DOING)?
                .is_some();
            return Err(if exists {
                StateError::RunAlreadyFinished(run_id)
            } else {
                StateError::RunNotFound(run_id)
            });
        }
        tx.commit().context(DOING)
    }

    fn runs(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let where_clause = if pipeline.is_some() {
            "WHERE pipeline = ?2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs {where_clause}
             ORDER BY started_at DESC, id DESC LIMIT ?1"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).context("listing runs")?;
        let limit = sql_limit(limit);
        let rows = match pipeline {
            Some(pipeline) => stmt.query_map(params![limit, pipeline], run_from_row),
            None => stmt.query_map(params![limit], run_from_row),
        }
        .context("listing runs")?;
        rows.collect::<Result<_, _>>().context("reading runs")
    }

    fn run_by_id(&self, id: i64) -> Result<Option<RunRecord>, StateError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
        self.conn()
            .query_row(&sql, params![id], run_from_row)
            .optional()
            .context("reading a run")
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StateError> {
        self.conn()
            .query_row(
                "SELECT value FROM plugin_kv WHERE namespace = ?1 AND key = ?2",
                [namespace, key],
                |row| row.get(0),
            )
            .optional()
            .context("reading plugin state")
    }

    fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO plugin_kv (namespace, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, key)
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![namespace, key, value, format_timestamp(Utc::now())],
            )
            .context("writing plugin state")?;
        Ok(())
    }

    fn location(&self) -> Option<super::StateLocation> {
        self.path.clone().map(super::StateLocation::Sqlite)
    }

    fn schedule_handled_until(&self, pipeline: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        ops::schedule_handled_until(&self.conn(), pipeline)
    }

    fn set_schedule_handled_until(
        &self,
        pipeline: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StateError> {
        ops::set_schedule_handled_until(&self.conn(), pipeline, until)
    }

    fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyClaim, StateError> {
        ops::claim_idempotency_key(&mut self.conn(), scope, key, fingerprint)
    }

    fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        answer: &serde_json::Value,
    ) -> Result<(), StateError> {
        ops::complete_idempotency_key(&self.conn(), scope, key, answer)
    }

    fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StateError> {
        ops::release_idempotency_key(&self.conn(), scope, key)
    }
}

#[cfg(test)]
mod tests;
