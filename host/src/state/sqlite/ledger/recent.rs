//! What this process knows of `ledger_recent`, the ledger's append-only first level: a map from
//! the hash of (pipeline, key) to the first `seq` with that hash, so a look-up finds a recent
//! entry without an index on the table (an index would be random inserts again).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::row_key_hash;
use crate::state::sqlite::db_error::DbContext;
use crate::state::StateError;

/// See the module documentation.
#[derive(Debug, Default)]
pub(in crate::state::sqlite) struct RecentKeys {
    /// The highest `seq` in the map.
    last_seq: i64,
    /// Rows of `ledger_recent` in the map (with a key's later entries).
    rows: usize,
    /// Hash of (pipeline, key) → the lowest `seq` with that hash.
    first_seq: HashMap<u64, i64>,
}

impl RecentKeys {
    /// Forgets everything: the table was emptied or rewritten (a new generation).
    pub(super) fn clear(&mut self) {
        self.first_seq.clear();
        self.first_seq.shrink_to_fit();
        self.rows = 0;
        self.last_seq = 0;
    }

    /// Rows of `ledger_recent` the map has seen.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The hash of every distinct key in the map.
    pub(super) fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.first_seq.keys().copied()
    }

    /// Takes in the rows other processes (or this one) appended since the map last looked.
    pub(super) fn follow(&mut self, conn: &Connection) -> Result<(), StateError> {
        const DOING: &str = "reading recent ledger entries";
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, pipeline, idempotency_key FROM ledger_recent
                 WHERE seq > ?1 ORDER BY seq",
            )
            .context(DOING)?;
        let mut rows = stmt.query([self.last_seq]).context(DOING)?;
        while let Some(row) = rows.next().context(DOING)? {
            let seq: i64 = row.get(0).context(DOING)?;
            self.note(row_key_hash(row, 1).context(DOING)?, seq);
        }
        Ok(())
    }

    /// Takes in one row (after the transaction that appended it committed).
    pub(super) fn note(&mut self, hash: u64, seq: i64) {
        self.first_seq.entry(hash).or_insert(seq);
        self.rows += 1;
        self.last_seq = self.last_seq.max(seq);
    }

    /// Adds to `found` the keys of `keys` (with their `hashes`) that `ledger_recent` holds and
    /// `found` lacks, with their first fingerprint. `conn` must be in a transaction begun before
    /// the map was brought up to date.
    pub(super) fn find(
        &self,
        conn: &Connection,
        pipeline: &str,
        keys: &[String],
        hashes: &[u64],
        found: &mut HashMap<String, Option<String>>,
    ) -> Result<(), StateError> {
        const DOING: &str = "looking up recent ledger entries";
        let mut by_seq = conn
            .prepare_cached(
                "SELECT pipeline, idempotency_key, content_hash FROM ledger_recent WHERE seq = ?1",
            )
            .context(DOING)?;
        for (key, hash) in keys.iter().zip(hashes) {
            if found.contains_key(key) {
                continue;
            }
            let Some(&seq) = self.first_seq.get(hash) else {
                continue;
            };
            let (p, k, fingerprint): (String, String, Option<String>) = by_seq
                .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .context(DOING)?;
            if p == pipeline && &k == key {
                found.insert(key.clone(), fingerprint);
            } else if let Some(fingerprint) = first_entry_by_scan(conn, pipeline, key)? {
                // Two keys with one 64-bit hash (about 1 in 10^9 for a full table): the map
                // names the other key's row, so the table is scanned for this one.
                found.insert(key.clone(), fingerprint);
            }
        }
        Ok(())
    }

    /// Points a key's hash at another row, as a hash collision would.
    #[cfg(test)]
    pub(in crate::state::sqlite) fn collide(&mut self, pipeline: &str, key: &str, seq: i64) {
        self.first_seq.insert(super::key_hash(pipeline, key), seq);
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
