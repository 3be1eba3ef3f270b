//! What this process knows of the ledger's entries since the last segment (`seq` above
//! `ledger_state.indexed_through`): a map from the hash of (pipeline, key) to the first `seq`
//! with that hash, so a look-up finds a recent entry without an index on the table (an index
//! would be random inserts again), and every (hash, `seq`) pair, which the next merge writes as
//! a segment.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::index_blocks::Pair;
use super::{fingerprint_if_of, row_key_hash};
use crate::state::sqlite::db_error::DbContext;
use crate::state::StateError;

/// See the module documentation.
#[derive(Debug, Default)]
pub(in crate::state::sqlite) struct RecentKeys {
    /// The highest `seq` the last segment covers: the map holds the entries above it.
    indexed_through: i64,
    /// The highest `seq` in the map (or `indexed_through`).
    last_seq: i64,
    /// Hash of (pipeline, key) → the lowest `seq` with that hash.
    first_seq: HashMap<u64, i64>,
    /// The pairs whose hash the map already had (a key entered again, or a hash collision): the
    /// segment needs every pair.
    later: Vec<Pair>,
}

impl RecentKeys {
    /// Forgets everything and starts again above `indexed_through` (a new generation).
    pub(super) fn reset(&mut self, indexed_through: i64) {
        self.first_seq = HashMap::new();
        self.later = Vec::new();
        self.indexed_through = indexed_through;
        self.last_seq = indexed_through;
    }

    /// Entries the map holds.
    pub(super) fn rows(&self) -> usize {
        self.first_seq.len() + self.later.len()
    }

    /// The highest `seq` the map holds, or the last segment's if it holds none.
    pub(super) fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The `seq` above which the map holds every entry.
    pub(super) fn indexed_through(&self) -> i64 {
        self.indexed_through
    }

    /// Every (hash, `seq`) pair the map holds, in (hash, `seq`) order: the next segment.
    pub(super) fn sorted_pairs(&self) -> Vec<Pair> {
        let mut pairs = Vec::with_capacity(self.rows());
        pairs.extend(self.first_seq.iter().map(|(&hash, &seq)| (hash, seq)));
        pairs.extend_from_slice(&self.later);
        pairs.sort_unstable();
        pairs
    }

    /// Takes in the rows other processes (or this one) appended since the map last looked.
    pub(super) fn follow(&mut self, conn: &Connection) -> Result<(), StateError> {
        const DOING: &str = "reading recent ledger entries";
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, pipeline, idempotency_key FROM ledger_entries
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
        match self.first_seq.entry(hash) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.later.push((hash, seq)),
        }
        self.last_seq = self.last_seq.max(seq);
    }

    /// Adds to `found` the keys of `keys` (with their `hashes`) that the map's entries hold and
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
        for (key, hash) in keys.iter().zip(hashes) {
            if found.contains_key(key) {
                continue;
            }
            let Some(&seq) = self.first_seq.get(hash) else {
                continue;
            };
            if let Some(fingerprint) = fingerprint_if_of(conn, seq, pipeline, key)? {
                found.insert(key.clone(), fingerprint);
            } else if let Some(fingerprint) =
                first_entry_by_scan(conn, self.indexed_through, pipeline, key)?
            {
                // Two keys with one 64-bit hash (about 1 in 10^9 for a full map): the map names
                // the other key's entry, so the map's stretch of the table is scanned for this
                // one.
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

/// The first fingerprint of a key among the entries above `after` (`seq`), by a scan
/// (`Some(None)`: an entry without one). Only for hash collisions.
fn first_entry_by_scan(
    conn: &Connection,
    after: i64,
    pipeline: &str,
    key: &str,
) -> Result<Option<Option<String>>, StateError> {
    conn.query_row(
        "SELECT content_hash FROM ledger_entries
         WHERE seq > ?1 AND pipeline = ?2 AND idempotency_key = ?3 ORDER BY seq LIMIT 1",
        rusqlite::params![after, pipeline, key],
        |r| r.get(0),
    )
    .optional()
    .context("scanning recent ledger entries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_segment_gets_every_pair_even_of_a_hash_seen_before() {
        let mut map = RecentKeys::default();
        map.reset(10);
        // 11 and 13 share a hash: the same key entered twice, or two keys that collide.
        for (hash, seq) in [(7, 11), (3, 12), (7, 13)] {
            map.note(hash, seq);
        }
        assert_eq!(map.rows(), 3);
        assert_eq!(map.last_seq(), 13);
        assert_eq!(map.indexed_through(), 10);
        assert_eq!(map.sorted_pairs(), [(3, 12), (7, 11), (7, 13)]);
        assert_eq!(
            map.first_seq.get(&7),
            Some(&11),
            "look-ups start at the first"
        );
        map.reset(13);
        assert_eq!((map.rows(), map.last_seq()), (0, 13));
    }
}
