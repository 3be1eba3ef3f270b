//! The delivery ledger on SQLite, as a small log-structured merge
//! (`docs/decisions/010-ledger-write-amplification.md`).
//!
//! Ledger keys are hashes. Inserted straight into the `delivery_ledger` index, a batch's keys land
//! on leaf pages all over it: once the index has more leaves than a batch has keys, every key
//! dirties a page of its own, written to the WAL at commit and again at the checkpoint, and
//! throughput fell as the ledger grew. So:
//!
//! - a commit appends its entries to `ledger_recent`, in `seq` (rowid) order: a batch fills a few
//!   pages at the end of that table;
//! - a per-process map from a hash of (pipeline, key) to the first `seq` of that key finds them
//!   again without an index on `ledger_recent` (an index would be the random inserts again);
//! - when `ledger_recent` holds [`RECENT_ROWS_BEFORE_MERGE`] rows, one transaction moves them into
//!   `delivery_ledger` in key order, so a leaf page is written once for all its new keys.
//!
//! The ledger's content is `delivery_ledger`, then the keys of `ledger_recent` it lacks; a key
//! entered twice keeps its first entry (the index's, else the lowest `seq`). Several processes may
//! share the file: the map follows their appends by `seq`, and reloads whole when
//! `ledger_state.generation` moved (a merge or a forget, by any process).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::Hasher;

use rusqlite::{params, Connection, OptionalExtension};

use super::db_error::DbContext;
use crate::state::StateError;

/// Rows of `ledger_recent` (all pipelines) that trigger a merge into `delivery_ledger`. A later
/// merge is cheaper per key (it writes each leaf of the index once for more keys); what bounds it
/// is the in-memory map, ≈ 16 bytes a row in a table of 131,072 buckets (≈ 2.2 MiB), and the
/// time a process takes to load it when it first touches the ledger.
pub(super) const RECENT_ROWS_BEFORE_MERGE: usize = 100_000;

/// Keys per `IN (…)` look-up in the index: under SQLite's historical limit of 999 bound
/// parameters, so a batch of 500 keys is a single query.
const KEYS_PER_LOOKUP: usize = 900;

/// What this process knows of `ledger_recent`.
#[derive(Debug)]
pub(super) struct RecentKeys {
    /// `ledger_state.generation` when the map was loaded; `None` before the first load.
    generation: Option<i64>,
    /// The highest `seq` in the map.
    last_seq: i64,
    /// Rows of `ledger_recent` in the map (with a key's later entries).
    rows: usize,
    /// Hash of (pipeline, key) → the lowest `seq` with that hash.
    first_seq: HashMap<u64, i64>,
    /// Rows that trigger a merge.
    merge_at: usize,
}

impl RecentKeys {
    pub(super) fn new(merge_at: usize) -> Self {
        Self {
            generation: None,
            last_seq: 0,
            rows: 0,
            first_seq: HashMap::new(),
            merge_at: merge_at.max(1),
        }
    }

    /// Brings the map up to what `conn` sees: call it inside the transaction that then reads or
    /// writes the ledger.
    fn sync(&mut self, conn: &Connection) -> Result<(), StateError> {
        const DOING: &str = "reading recent ledger entries";
        let generation: i64 = conn
            .query_row(
                "SELECT generation FROM ledger_state WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .context(DOING)?;
        if self.generation != Some(generation) {
            self.first_seq.clear();
            self.first_seq.shrink_to_fit();
            self.rows = 0;
            self.last_seq = 0;
            self.generation = Some(generation);
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, pipeline, idempotency_key FROM ledger_recent
                 WHERE seq > ?1 ORDER BY seq",
            )
            .context(DOING)?;
        let mut rows = stmt.query([self.last_seq]).context(DOING)?;
        while let Some(row) = rows.next().context(DOING)? {
            let seq: i64 = row.get(0).context(DOING)?;
            let pipeline = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_str()?))
                .context(DOING)?;
            let key = row
                .get_ref(2)
                .and_then(|v| Ok(v.as_str()?))
                .context(DOING)?;
            let hash = key_hash(pipeline, key);
            self.note(hash, seq);
        }
        Ok(())
    }

    fn note(&mut self, hash: u64, seq: i64) {
        self.first_seq.entry(hash).or_insert(seq);
        self.rows += 1;
        self.last_seq = self.last_seq.max(seq);
    }

    /// Adds to `found` the keys of `keys` that `ledger_recent` holds and `found` lacks, with
    /// their first fingerprint. `conn` must be in a transaction begun before [`Self::sync`].
    fn find(
        &self,
        conn: &Connection,
        pipeline: &str,
        keys: &[String],
        found: &mut HashMap<String, Option<String>>,
    ) -> Result<(), StateError> {
        const DOING: &str = "looking up recent ledger entries";
        let mut by_seq = conn
            .prepare_cached(
                "SELECT pipeline, idempotency_key, content_hash FROM ledger_recent WHERE seq = ?1",
            )
            .context(DOING)?;
        for key in keys {
            if found.contains_key(key) {
                continue;
            }
            let Some(&seq) = self.first_seq.get(&key_hash(pipeline, key)) else {
                continue;
            };
            let (p, k, hash): (String, String, Option<String>) = by_seq
                .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .context(DOING)?;
            if p == pipeline && &k == key {
                found.insert(key.clone(), hash);
            } else if let Some(hash) = first_entry_by_scan(conn, pipeline, key)? {
                // Two keys with one 64-bit hash (about 1 in 10^9 for a full table): the map
                // names the other key's row, so the table is scanned for this one.
                found.insert(key.clone(), hash);
            }
        }
        Ok(())
    }
}

/// The first fingerprint of a key in `ledger_recent`, by a scan (`Some(None)`: an entry without
/// one). Only for hash collisions.
fn first_entry_by_scan(
    conn: &Connection,
    pipeline: &str,
    key: &str,
) -> Result<Option<Option<String>>, StateError> {
    conn.query_row(
        "SELECT content_hash FROM ledger_recent
         WHERE pipeline = ?1 AND idempotency_key = ?2 ORDER BY seq LIMIT 1",
        [pipeline, key],
        |r| r.get(0),
    )
    .optional()
    .context("scanning recent ledger entries")
}

/// A stable (within this process) 64-bit hash of a pipeline's key.
fn key_hash(pipeline: &str, key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(pipeline.as_bytes());
    // Not a byte of UTF-8: "ab" + "c" and "a" + "bc" hash apart.
    hasher.write_u8(0xff);
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// Which of `keys` the pipeline's ledger holds, with the fingerprint of each key's first entry.
/// `conn` must be in a (read) transaction, so the index and `ledger_recent` are one snapshot.
pub(super) fn delivered_fingerprints(
    conn: &Connection,
    recent: &mut RecentKeys,
    pipeline: &str,
    keys: &[String],
) -> Result<HashMap<String, Option<String>>, StateError> {
    const DOING: &str = "looking up delivered keys";
    recent.sync(conn)?;
    let mut found = HashMap::new();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT idempotency_key, content_hash FROM delivery_ledger
             WHERE pipeline = ? AND idempotency_key IN ({placeholders})"
        );
        // Full chunks share one cached statement.
        let mut stmt = conn.prepare_cached(&sql).context(DOING)?;
        let params = std::iter::once(pipeline).chain(chunk.iter().map(String::as_str));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .context(DOING)?;
        for row in rows {
            let (key, hash) = row.context(DOING)?;
            found.insert(key, hash);
        }
    }
    recent.find(conn, pipeline, keys, &mut found)?;
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

/// Brings the map up to date before a commit appends (call inside its write transaction).
pub(super) fn before_append(conn: &Connection, recent: &mut RecentKeys) -> Result<(), StateError> {
    recent.sync(conn)
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
pub(super) fn after_commit(recent: &mut RecentKeys, appended: Appended) -> bool {
    for (hash, seq) in appended.0 {
        recent.note(hash, seq);
    }
    recent.rows >= recent.merge_at
}

/// Moves every row of `ledger_recent` into `delivery_ledger`, in key order, in one write
/// transaction (a crash rolls all of it back: the rows are then still in `ledger_recent`).
/// Answers the rows moved.
pub(super) fn merge(conn: &mut Connection, recent: &mut RecentKeys) -> Result<u64, StateError> {
    const DOING: &str = "merging recent ledger entries";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    // Key order: consecutive inserts land on the same leaf. `seq` last: of a key entered twice
    // the first entry goes in, the later one is ignored (as is one the index already has).
    tx.execute(
        "INSERT OR IGNORE INTO delivery_ledger
             (pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
         SELECT pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
         FROM ledger_recent ORDER BY pipeline, idempotency_key, seq",
        [],
    )
    .context(DOING)?;
    let moved = tx.execute("DELETE FROM ledger_recent", []).context(DOING)?;
    bump_generation(&tx, DOING)?;
    tx.commit().context(DOING)?;
    // Empty now; the next sync sees the new generation and starts from nothing.
    recent.generation = None;
    Ok(moved as u64)
}

/// Forgets every key of a pipeline in both tables (one transaction); answers how many keys.
pub(super) fn forget(conn: &mut Connection, pipeline: &str) -> Result<u64, StateError> {
    const DOING: &str = "forgetting delivered keys";
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .context(DOING)?;
    let only_recent: i64 = tx
        .query_row(
            "SELECT count(DISTINCT r.idempotency_key) FROM ledger_recent r
             WHERE r.pipeline = ?1 AND NOT EXISTS (
                 SELECT 1 FROM delivery_ledger d
                 WHERE d.pipeline = ?1 AND d.idempotency_key = r.idempotency_key)",
            [pipeline],
            |r| r.get(0),
        )
        .context(DOING)?;
    let indexed = tx
        .execute(
            "DELETE FROM delivery_ledger WHERE pipeline = ?1",
            [pipeline],
        )
        .context(DOING)?;
    tx.execute("DELETE FROM ledger_recent WHERE pipeline = ?1", [pipeline])
        .context(DOING)?;
    // Other processes' maps still name the deleted rows: make them reload.
    bump_generation(&tx, DOING)?;
    tx.commit().context(DOING)?;
    Ok(indexed as u64 + only_recent as u64)
}

fn bump_generation(conn: &Connection, doing: &str) -> Result<(), StateError> {
    conn.execute(
        "UPDATE ledger_state SET generation = generation + 1 WHERE id = 1",
        [],
    )
    .context(doing)?;
    Ok(())
}

#[cfg(test)]
impl RecentKeys {
    /// Points a key's hash at another row, as a hash collision would.
    pub(super) fn collide(&mut self, pipeline: &str, key: &str, seq: i64) {
        self.first_seq.insert(key_hash(pipeline, key), seq);
    }
}
