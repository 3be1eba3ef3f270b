//! The delivery ledger on SQLite: an append-only log of entries with hash indexes written in large
//! sequential steps (`docs/decisions/010-ledger-write-amplification.md`).
//!
//! Ledger keys are hashes: inserted straight into one index, a batch's keys land on leaf pages
//! all over it, and the pages written per key grow with the ledger. So:
//!
//! - a commit appends its entries to `ledger_entries`, in `seq` (rowid) order, at the right edge
//!   of its B-tree; a per-process map finds the entries since the last segment ([`recent`]);
//! - when the map holds [`RECENT_ROWS_BEFORE_MERGE`] entries, one transaction writes its
//!   (hash, `seq`) pairs, sorted, as a new index segment with a Bloom filter, and segments of one
//!   size are merged into bigger ones now and then ([`segments`], [`index_blocks`]). The entries
//!   are never copied.
//!
//! The ledger's content is `ledger_entries`; a key entered twice keeps its first (lowest `seq`)
//! entry. Several processes may share the file: the map follows their appends by `seq`, and the
//! map and the segments are reloaded whole when `ledger_state.generation` moved (a merge, a
//! forget or an index built at open, by any process).

mod bloom;
mod index_blocks;
mod recent;
mod segments;

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::db_error::DbContext;
use crate::state::StateError;

use recent::RecentKeys;
pub(super) use segments::SEGMENTS_PER_COMPACTION;

/// Entries since the last segment (all pipelines) that trigger a merge into a new segment.
/// Bounded by the in-memory map, ≈ 16 bytes an entry in a table of 131,072 buckets (≈ 2.2 MiB),
/// and by the time a process takes to load it when it first touches the ledger.
pub(super) const RECENT_ROWS_BEFORE_MERGE: usize = 100_000;

/// What this process knows of the ledger: the recent entries' map and the segments, both as of
/// one generation.
#[derive(Debug)]
pub(super) struct LedgerView {
    /// `ledger_state.generation` when loaded; `None` before the first load.
    generation: Option<i64>,
    recent: RecentKeys,
    segments: Vec<segments::Segment>,
    /// Entries in the map that trigger a merge.
    merge_at: usize,
    /// Segments of one level compacted into one of the next.
    per_compaction: usize,
}

impl LedgerView {
    pub(super) fn new(merge_at: usize, per_compaction: usize) -> Self {
        Self {
            generation: None,
            recent: RecentKeys::default(),
            segments: Vec::new(),
            merge_at: merge_at.max(1),
            per_compaction: per_compaction.max(2),
        }
    }

    /// Brings the view up to what `conn` sees: call it inside the transaction that then reads or
    /// writes the ledger.
    fn sync(&mut self, conn: &Connection) -> Result<(), StateError> {
        let (generation, indexed_through): (i64, i64) = conn
            .query_row(
                "SELECT generation, indexed_through FROM ledger_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .context("reading the ledger's generation")?;
        if self.generation != Some(generation) {
            // Unset until the reload succeeded, so a failed one is tried again.
            self.generation = None;
            self.recent.reset(indexed_through);
            // Dropped first: the old and new filters are never held at once.
            self.segments = Vec::new();
            self.segments = segments::load(conn)?;
            self.generation = Some(generation);
        }
        self.recent.follow(conn)
    }

    #[cfg(test)]
    pub(super) fn recent(&mut self) -> &mut RecentKeys {
        &mut self.recent
    }
}

/// A stable 64-bit hash of a pipeline's key. Stable across processes and versions: the segments'
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

/// The fingerprint of the entry numbered `seq` if that entry is of `pipeline`'s `key`
/// (`Some(None)`: one without a fingerprint); `None` if it is another key's (a hash shared) or
/// gone (forgotten since).
fn fingerprint_if_of(
    conn: &Connection,
    seq: i64,
    pipeline: &str,
    key: &str,
) -> Result<Option<Option<String>>, StateError> {
    const DOING: &str = "looking up delivered keys";
    let entry: Option<(String, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT pipeline, idempotency_key, content_hash FROM ledger_entries WHERE seq = ?1",
        )
        .context(DOING)?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .context(DOING)?;
    Ok(entry.and_then(|(p, k, fingerprint)| (p == pipeline && k == key).then_some(fingerprint)))
}

/// Which of `keys` the pipeline's ledger holds, with the fingerprint of each key's first entry.
/// `conn` must be in a (read) transaction, so the segments and the map are of one snapshot.
pub(super) fn delivered_fingerprints(
    conn: &Connection,
    view: &mut LedgerView,
    pipeline: &str,
    keys: &[String],
) -> Result<HashMap<String, Option<String>>, StateError> {
    view.sync(conn)?;
    let hashes: Vec<u64> = keys.iter().map(|key| key_hash(pipeline, key)).collect();
    let mut found = HashMap::new();
    segments::find(conn, &view.segments, pipeline, keys, &hashes, &mut found)?;
    view.recent
        .find(conn, pipeline, keys, &hashes, &mut found)?;
    Ok(found)
}

/// Ledger entries appended in a commit's transaction, for the map once the commit is durable.
#[derive(Debug, Default)]
pub(super) struct Appended {
    pairs: Vec<(u64, i64)>,
    /// The `seq` the next entry takes.
    next_seq: i64,
}

/// One entry to append.
pub(super) struct Entry<'a> {
    pub pipeline: &'a str,
    pub key: &'a str,
    pub stream: &'a str,
    pub external_id: Option<&'a str>,
    pub delivered_at: &'a str,
    pub content_hash: Option<&'a str>,
}

/// Brings the view up to date before a commit appends (call inside its write transaction), and
/// answers where the commit's entries go.
pub(super) fn before_append(
    conn: &Connection,
    view: &mut LedgerView,
) -> Result<Appended, StateError> {
    view.sync(conn)?;
    // Above every entry (the map has seen them all, inside this write transaction) and above
    // every `seq` a segment covers (the map's `last_seq` starts there), even if `forget` deleted
    // the entries at the top: SQLite would number on from the highest left, and an entry inside
    // a segment's stretch would be in neither that segment nor the map.
    Ok(Appended {
        pairs: Vec::new(),
        next_seq: view.recent.last_seq() + 1,
    })
}

/// Appends one entry to `ledger_entries` (inside the commit's transaction).
pub(super) fn append(
    conn: &Connection,
    entry: &Entry<'_>,
    appended: &mut Appended,
) -> Result<(), StateError> {
    const DOING: &str = "committing a batch";
    let seq = appended.next_seq;
    conn.prepare_cached(
        "INSERT INTO ledger_entries
             (seq, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .context(DOING)?
    .execute(params![
        seq,
        entry.pipeline,
        entry.key,
        entry.stream,
        entry.external_id,
        entry.delivered_at,
        entry.content_hash
    ])
    .context(DOING)?;
    appended
        .pairs
        .push((key_hash(entry.pipeline, entry.key), seq));
    appended.next_seq += 1;
    Ok(())
}

/// After the commit's transaction committed: the map takes its entries, and answers whether
/// the map is due for a [`merge`].
pub(super) fn after_commit(view: &mut LedgerView, appended: Appended) -> bool {
    for (hash, seq) in appended.pairs {
        view.recent.note(hash, seq);
    }
    view.recent.rows() >= view.merge_at
}

/// Writes the map's entries as a new segment and compacts the segments, in one write transaction
/// (a crash rolls all of it back: the entries are then still above `indexed_through`). Answers
/// the entries indexed.
pub(super) fn merge(conn: &mut Connection, view: &mut LedgerView) -> Result<u64, StateError> {
    const DOING: &str = "indexing recent ledger entries";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    // The map must hold every entry above `indexed_through`: its pairs become the segment.
    view.sync(&tx)?;
    let entries = view.recent.rows();
    if entries > 0 {
        let (first, last) = (view.recent.indexed_through() + 1, view.recent.last_seq());
        let pairs = view.recent.sorted_pairs();
        // Whatever happens next the view is loaded again at the next sync, so the map and the
        // filters are let go now: a compaction builds a filter as large as all of theirs, and
        // the peak of the run is where they would overlap.
        view.generation = None;
        view.recent.reset(0);
        view.segments = Vec::new();
        segments::write(&tx, first, last, pairs, entries)?;
        segments::compact(&tx, view.per_compaction)?;
        tx.execute(
            "UPDATE ledger_state SET indexed_through = ?1, generation = generation + 1
             WHERE id = 1",
            [last],
        )
        .context(DOING)?;
    }
    tx.commit().context(DOING)?;
    // The next sync sees the new generation and loads the segments again.
    view.generation = None;
    Ok(entries as u64)
}

/// Forgets every key of a pipeline (one transaction); answers how many keys.
pub(super) fn forget(conn: &mut Connection, pipeline: &str) -> Result<u64, StateError> {
    const DOING: &str = "forgetting delivered keys";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    let keys: i64 = tx
        .query_row(
            "SELECT count(DISTINCT idempotency_key) FROM ledger_entries WHERE pipeline = ?1",
            [pipeline],
            |r| r.get(0),
        )
        .context(DOING)?;
    let deleted = tx
        .execute("DELETE FROM ledger_entries WHERE pipeline = ?1", [pipeline])
        .context(DOING)?;
    if deleted > 0 {
        segments::drop_deleted_entries(&tx)?;
    }
    // Other processes' maps and segments still name the deleted entries: make them reload.
    bump_generation(&tx, DOING)?;
    tx.commit().context(DOING)?;
    Ok(keys as u64)
}

/// Indexes the entries a migration moved into `ledger_entries` (SQL cannot compute the hash), in
/// segments of `merge_at` entries, when the store is opened: otherwise the first process to touch
/// the ledger would hold all of them in its map. Cheap when there is nothing to do: the entries
/// above `indexed_through` are counted only when their `seq`s leave room for `merge_at` of them.
pub(super) fn ensure_indexed(
    conn: &mut Connection,
    merge_at: usize,
    per_compaction: usize,
) -> Result<(), StateError> {
    const DOING: &str = "indexing the ledger";
    let unindexed_at_most = |conn: &Connection| -> Result<(i64, i64), StateError> {
        let (through, top): (i64, i64) = conn
            .query_row(
                "SELECT indexed_through, (SELECT coalesce(max(seq), 0) FROM ledger_entries)
                 FROM ledger_state WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .context(DOING)?;
        Ok((through, top.saturating_sub(through)))
    };
    // Read first, outside a transaction: every open passes here, and the write lock is taken
    // only when there is work.
    if unindexed_at_most(conn)?.1 < merge_at as i64 {
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .context(DOING)?;
        let (through, room) = unindexed_at_most(&tx)?;
        if room < merge_at as i64 {
            return Ok(());
        }
        let mut pairs = Vec::with_capacity(merge_at);
        let mut last = through;
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, pipeline, idempotency_key FROM ledger_entries
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .context(DOING)?;
            let mut rows = stmt.query([through, merge_at as i64]).context(DOING)?;
            while let Some(row) = rows.next().context(DOING)? {
                last = row.get(0).context(DOING)?;
                pairs.push((row_key_hash(row, 1).context(DOING)?, last));
            }
        }
        if pairs.len() < merge_at {
            // Fewer entries than `seq`s (a forget left gaps): the map takes them.
            return Ok(());
        }
        pairs.sort_unstable();
        let count = pairs.len();
        segments::write(&tx, through + 1, last, pairs, count)?;
        segments::compact(&tx, per_compaction)?;
        tx.execute(
            "UPDATE ledger_state SET indexed_through = ?1, generation = generation + 1
             WHERE id = 1",
            [last],
        )
        .context(DOING)?;
        tx.commit().context(DOING)?;
    }
}

fn bump_generation(conn: &Connection, doing: &str) -> Result<(), StateError> {
    conn.execute(
        "UPDATE ledger_state SET generation = generation + 1 WHERE id = 1",
        [],
    )
    .context(doing)?;
    Ok(())
}
