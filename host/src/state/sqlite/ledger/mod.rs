//! The delivery ledger on SQLite, as a small log-structured merge tree
//! (`docs/decisions/010-ledger-write-amplification.md`).
//!
//! Ledger keys are hashes: inserted straight into one index, a batch's keys land on leaf pages
//! all over it, and the pages written per key grow with the ledger. So a key is written in
//! large sequential steps instead:
//!
//! - a commit appends its entries to `ledger_recent`, in `seq` (rowid) order; a per-process map
//!   finds them again ([`recent`]);
//! - when `ledger_recent` holds [`RECENT_ROWS_BEFORE_MERGE`] rows, one transaction writes them as
//!   a new sorted run of `ledger_runs`, with a Bloom filter of its keys, and runs of one size are
//!   merged into bigger ones now and then ([`runs`]).
//!
//! The ledger's content is the runs, oldest first, then the keys of `ledger_recent` they lack;
//! a key entered twice keeps its first entry. Several processes may share the file: the map
//! follows their appends by `seq`, and the map and the filters are reloaded whole when
//! `ledger_state.generation` moved (a merge, a compaction, a forget or a filter built at open,
//! by any process).

mod bloom;
mod recent;
mod runs;

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::db_error::DbContext;
use crate::state::StateError;

use recent::RecentKeys;
#[cfg(test)]
pub(super) use runs::compaction_sql;
pub(super) use runs::RUNS_PER_COMPACTION;

/// Rows of `ledger_recent` (all pipelines) that trigger a merge into a new run. Bounded by the
/// in-memory map, ≈ 16 bytes a row in a table of 131,072 buckets (≈ 2.2 MiB), and by the time a
/// process takes to load it when it first touches the ledger.
pub(super) const RECENT_ROWS_BEFORE_MERGE: usize = 100_000;

/// What this process knows of the ledger: the recent entries' map and the runs' filters, both
/// as of one generation.
#[derive(Debug)]
pub(super) struct LedgerView {
    /// `ledger_state.generation` when loaded; `None` before the first load.
    generation: Option<i64>,
    recent: RecentKeys,
    runs: Vec<runs::Run>,
    /// Rows of `ledger_recent` that trigger a merge.
    merge_at: usize,
    /// Runs of one level compacted into one of the next.
    per_compaction: usize,
}

impl LedgerView {
    pub(super) fn new(merge_at: usize, per_compaction: usize) -> Self {
        Self {
            generation: None,
            recent: RecentKeys::default(),
            runs: Vec::new(),
            merge_at: merge_at.max(1),
            per_compaction: per_compaction.max(2),
        }
    }

    /// Brings the view up to what `conn` sees: call it inside the transaction that then reads or
    /// writes the ledger.
    fn sync(&mut self, conn: &Connection) -> Result<(), StateError> {
        let generation: i64 = conn
            .query_row(
                "SELECT generation FROM ledger_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .context("reading the ledger's generation")?;
        if self.generation != Some(generation) {
            // Unset until the reload succeeded, so a failed one is tried again.
            self.generation = None;
            self.recent.clear();
            // Dropped first: the old and new filters are never held at once.
            self.runs = Vec::new();
            self.runs = runs::load(conn)?;
            self.generation = Some(generation);
        }
        self.recent.follow(conn)
    }

    #[cfg(test)]
    pub(super) fn recent(&mut self) -> &mut RecentKeys {
        &mut self.recent
    }
}

/// A stable 64-bit hash of a pipeline's key. Stable across processes and versions: the runs'
/// filters are stored (xxh3 is a fixed algorithm; `std`'s hasher is not promised to be).
fn key_hash(pipeline: &str, key: &str) -> u64 {
    // The pipeline's hash seeds the key's: ("ab", "c") and ("a", "bc") hash apart.
    let seed = xxhash_rust::xxh3::xxh3_64(pipeline.as_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(key.as_bytes(), seed)
}

/// The [`key_hash`] of a row's pipeline (column `at`) and key (column `at + 1`), read without
/// copying them.
fn row_key_hash(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<u64> {
    let pipeline = row.get_ref(at)?.as_str()?;
    let key = row.get_ref(at + 1)?.as_str()?;
    Ok(key_hash(pipeline, key))
}

/// Which of `keys` the pipeline's ledger holds, with the fingerprint of each key's first entry.
/// `conn` must be in a (read) transaction, so the runs and `ledger_recent` are one snapshot.
pub(super) fn delivered_fingerprints(
    conn: &Connection,
    view: &mut LedgerView,
    pipeline: &str,
    keys: &[String],
) -> Result<HashMap<String, Option<String>>, StateError> {
    view.sync(conn)?;
    let hashes: Vec<u64> = keys.iter().map(|key| key_hash(pipeline, key)).collect();
    let mut found = HashMap::new();
    runs::find(conn, &view.runs, pipeline, keys, &hashes, &mut found)?;
    view.recent
        .find(conn, pipeline, keys, &hashes, &mut found)?;
    Ok(found)
}

/// Ledger entries appended in a commit's transaction, for the map once the commit is durable.
#[derive(Debug, Default)]
pub(super) struct Appended(Vec<(u64, i64)>);

/// One entry to append.
pub(super) struct Entry<'a> {
    pub pipeline: &'a str,
    pub key: &'a str,
    pub stream: &'a str,
    pub external_id: Option<&'a str>,
    pub delivered_at: &'a str,
    pub content_hash: Option<&'a str>,
}

/// Brings the view up to date before a commit appends (call inside its write transaction).
pub(super) fn before_append(conn: &Connection, view: &mut LedgerView) -> Result<(), StateError> {
    view.sync(conn)
}

/// Appends one entry to `ledger_recent` (inside the commit's transaction).
pub(super) fn append(
    conn: &Connection,
    entry: &Entry<'_>,
    appended: &mut Appended,
) -> Result<(), StateError> {
    const DOING: &str = "committing a batch";
    conn.prepare_cached(
        "INSERT INTO ledger_recent
             (pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .context(DOING)?
    .execute(params![
        entry.pipeline,
        entry.key,
        entry.stream,
        entry.external_id,
        entry.delivered_at,
        entry.content_hash
    ])
    .context(DOING)?;
    appended.0.push((
        key_hash(entry.pipeline, entry.key),
        conn.last_insert_rowid(),
    ));
    Ok(())
}

/// After the commit's transaction committed: the map takes its entries, and answers whether
/// `ledger_recent` is due for a [`merge`].
pub(super) fn after_commit(view: &mut LedgerView, appended: Appended) -> bool {
    for (hash, seq) in appended.0 {
        view.recent.note(hash, seq);
    }
    view.recent.rows() >= view.merge_at
}

/// Writes every row of `ledger_recent` as a new run and compacts the runs, in one write
/// transaction (a crash rolls all of it back: the rows are then still in `ledger_recent`).
/// Answers the rows moved.
pub(super) fn merge(conn: &mut Connection, view: &mut LedgerView) -> Result<u64, StateError> {
    const DOING: &str = "merging recent ledger entries";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    // The map must hold every row: its hashes become the new run's filter.
    view.sync(&tx)?;
    let moved = runs::write_recent_as_run(&tx, view.recent.hashes())?;
    if moved > 0 {
        runs::compact(&tx, view.per_compaction)?;
        bump_generation(&tx, DOING)?;
    }
    tx.commit().context(DOING)?;
    // The next sync sees the new generation and loads the runs' filters again.
    view.generation = None;
    Ok(moved)
}

/// Forgets every key of a pipeline (one transaction); answers how many keys.
pub(super) fn forget(conn: &mut Connection, pipeline: &str) -> Result<u64, StateError> {
    const DOING: &str = "forgetting delivered keys";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    let keys = runs::forget(&tx, pipeline)?;
    tx.execute("DELETE FROM ledger_recent WHERE pipeline = ?1", [pipeline])
        .context(DOING)?;
    // Other processes' maps still name the deleted rows: make them reload.
    bump_generation(&tx, DOING)?;
    tx.commit().context(DOING)?;
    Ok(keys)
}

/// Gives every run a filter (a ledger from before the runs has one without), once, when the
/// store is opened: without it that run would be searched for every key.
pub(super) fn ensure_filters(conn: &mut Connection, merge_at: usize) -> Result<(), StateError> {
    const DOING: &str = "building the ledger's filters";
    if !runs::any_without_filter(conn)? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    // Another process may have built them meanwhile; then this finds none.
    runs::build_missing_filters(&tx, merge_at, runs::RUNS_PER_COMPACTION)?;
    bump_generation(&tx, DOING)?;
    tx.commit().context(DOING)?;
    Ok(())
}

fn bump_generation(conn: &Connection, doing: &str) -> Result<(), StateError> {
    conn.execute(
        "UPDATE ledger_state SET generation = generation + 1 WHERE id = 1",
        [],
    )
    .context(doing)?;
    Ok(())
}
