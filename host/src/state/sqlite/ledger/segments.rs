//! The ledger's segments: each indexes one stretch of `ledger_entries` (`first_seq ..=
//! last_seq`) by the hash of (pipeline, key), and holds a Bloom filter of those hashes.
//!
//! - A merge makes the map of the entries since the last segment into a new segment: it sorts
//!   the (hash, `seq`) pairs it already holds in memory and writes them as index blocks
//!   ([`super::index_blocks`]), ≈ 16 bytes an entry, at the right edge of the block table. The
//!   entries themselves stay where they were appended. (Before schema version 10 a merge copied
//!   every entry, ≈ 200 bytes, into a sorted run, with a sort that spilled to a temporary file.)
//! - A look-up asks each segment's filter (in memory), and only where it says "maybe" fetches the
//!   one block that would hold the hash, then the entries it names, to compare the key.
//! - When the [`SEGMENTS_PER_COMPACTION`] newest segments have the same level, their pairs are
//!   merged (already sorted: a k-way merge, block by block) into one segment of the next level,
//!   so a look-up asks few filters; the entries are not touched.
//!
//! Of a key entered twice, the first entry counts: segments are asked oldest (lowest `first_seq`)
//! first, and within a segment the pairs of one hash come lowest `seq` first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rusqlite::{params, Connection, MAIN_DB};

use super::bloom::Bloom;
use super::fingerprint_if_of;
use super::index_blocks::{self, BlockReader, BlockWriter, Pair, Written};
use crate::state::sqlite::db_error::DbContext;
use crate::state::StateError;

/// Segments of one level merged into one of the next, by default. Each level holds at most 15
/// segments, and a look-up asks each one's filter (in memory; a new key's probe stops at its first
/// unset bit), so more segments cost little; fewer levels mean a pair is rewritten fewer times
/// (`docs/decisions/010-ledger-write-amplification.md`, "Fan-out").
pub(in crate::state::sqlite) const SEGMENTS_PER_COMPACTION: usize = 16;

/// One segment, as this process loaded it.
#[derive(Debug)]
pub(super) struct Segment {
    first_block: i64,
    /// The first hash of each of its blocks.
    fences: Vec<u64>,
    bloom: Bloom,
}

/// Every segment with its filter and fences, oldest first.
pub(super) fn load(conn: &Connection) -> Result<Vec<Segment>, StateError> {
    const DOING: &str = "reading the ledger's filters";
    let mut stmt = conn
        .prepare_cached(
            "SELECT segment, first_block, hashes, length(bloom), fences FROM ledger_segments
             ORDER BY first_seq",
        )
        .context(DOING)?;
    let mut rows = stmt.query([]).context(DOING)?;
    let mut segments = Vec::new();
    while let Some(row) = rows.next().context(DOING)? {
        let id: i64 = row.get(0).context(DOING)?;
        let first_block: i64 = row.get(1).context(DOING)?;
        let hashes: u32 = row.get(2).context(DOING)?;
        let bytes: i64 = row.get(3).context(DOING)?;
        // Read in place from the row, not as a value: see `Bloom::read_from`.
        let blob = conn
            .blob_open(MAIN_DB, "ledger_segments", "bloom", id, true)
            .context(DOING)?;
        let bloom = Bloom::read_from(hashes, bytes.max(0) as usize, blob).map_err(|e| {
            StateError::Backend {
                context: format!("{DOING} (segment {id})"),
                source: Box::new(e),
            }
        })?;
        let fences = row
            .get_ref(4)
            .and_then(|v| Ok(v.as_blob()?))
            .context(DOING)?;
        let fences =
            index_blocks::fences_from_bytes(fences).ok_or_else(|| StateError::Backend {
                context: format!("{DOING} (segment {id})"),
                source: format!("fences of {} bytes", fences.len()).into(),
            })?;
        segments.push(Segment {
            first_block,
            fences,
            bloom,
        });
    }
    Ok(segments)
}

/// Adds to `found` the keys of `keys` (with their `hashes`) that a segment holds, each with the
/// fingerprint of its first entry. `conn` must be in the transaction `segments` was checked in.
pub(super) fn find(
    conn: &Connection,
    segments: &[Segment],
    pipeline: &str,
    keys: &[String],
    hashes: &[u64],
    found: &mut HashMap<String, Option<String>>,
) -> Result<(), StateError> {
    for segment in segments {
        for (key, &hash) in keys.iter().zip(hashes) {
            if !segment.bloom.may_contain(hash) || found.contains_key(key) {
                continue;
            }
            index_blocks::seqs_with_hash(
                conn,
                segment.first_block,
                &segment.fences,
                hash,
                |seq| {
                    // `None`: another key with the same hash, or an entry forgotten since: look
                    // further.
                    Ok(match fingerprint_if_of(conn, seq, pipeline, key)? {
                        Some(fingerprint) => {
                            found.insert(key.clone(), fingerprint);
                            true
                        }
                        None => false,
                    })
                },
            )?;
        }
    }
    Ok(())
}

/// Writes `pairs` (sorted by (hash, `seq`), `count` of them) as a new segment of level 0 over
/// `first_seq ..= last_seq`. Inside a write transaction. Writes nothing if there are no pairs.
pub(super) fn write(
    conn: &Connection,
    first_seq: i64,
    last_seq: i64,
    pairs: impl IntoIterator<Item = Pair>,
    count: usize,
) -> Result<(), StateError> {
    let mut writer = BlockWriter::new(conn, count)?;
    for pair in pairs {
        writer.push(pair)?;
    }
    let written = writer.finish()?;
    if written.pairs > 0 {
        insert_segment(conn, 0, first_seq, last_seq, &written)?;
    }
    Ok(())
}

/// A segment's row, as compaction and forgetting read it.
struct Stored {
    id: i64,
    level: i64,
    first_seq: i64,
    last_seq: i64,
    entries: i64,
    first_block: i64,
    blocks: usize,
}

/// Segments, oldest first (`newest`: the `limit` newest, newest first).
fn stored(conn: &Connection, newest: Option<usize>) -> Result<Vec<Stored>, StateError> {
    const DOING: &str = "listing the ledger's segments";
    let columns = "segment, level, first_seq, last_seq, entries, first_block, blocks";
    let (sql, limit) = match newest {
        Some(limit) => (
            format!("SELECT {columns} FROM ledger_segments ORDER BY first_seq DESC LIMIT ?1"),
            limit as i64,
        ),
        None => (
            format!("SELECT {columns} FROM ledger_segments ORDER BY first_seq LIMIT ?1"),
            -1,
        ),
    };
    conn.prepare_cached(&sql)
        .context(DOING)?
        .query_map([limit], |r| {
            Ok(Stored {
                id: r.get(0)?,
                level: r.get(1)?,
                first_seq: r.get(2)?,
                last_seq: r.get(3)?,
                entries: r.get(4)?,
                first_block: r.get(5)?,
                blocks: r.get::<_, i64>(6)? as usize,
            })
        })
        .context(DOING)?
        .collect::<Result<_, _>>()
        .context(DOING)
}

/// While the `per_compaction` newest segments have one level, merges their pairs into one
/// segment of the next level. Inside the merge's write transaction.
pub(super) fn compact(conn: &Connection, per_compaction: usize) -> Result<(), StateError> {
    loop {
        let newest = stored(conn, Some(per_compaction))?;
        let level = match newest.first() {
            Some(first)
                if newest.len() == per_compaction
                    && newest.iter().all(|s| s.level == first.level) =>
            {
                first.level
            }
            _ => return Ok(()),
        };
        let started = std::time::Instant::now();
        let total: i64 = newest.iter().map(|s| s.entries).sum();
        let mut readers: Vec<BlockReader> = newest
            .iter()
            .map(|s| BlockReader::new(s.first_block, s.blocks))
            .collect();
        // A k-way merge: the segments cover disjoint stretches of `seq`, so (hash, seq) order
        // keeps a hash's pairs lowest `seq` first.
        let mut heads = BinaryHeap::with_capacity(readers.len());
        for (at, reader) in readers.iter_mut().enumerate() {
            if let Some(pair) = reader.next(conn)? {
                heads.push(Reverse((pair, at)));
            }
        }
        let mut writer = BlockWriter::new(conn, total as usize)?;
        while let Some(Reverse((pair, at))) = heads.pop() {
            writer.push(pair)?;
            if let Some(next) = readers[at].next(conn)? {
                heads.push(Reverse((next, at)));
            }
        }
        let written = writer.finish()?;
        for segment in &newest {
            index_blocks::delete_blocks(conn, segment.first_block, segment.blocks)?;
            delete_segment(conn, segment.id)?;
        }
        let first_seq = newest.iter().map(|s| s.first_seq).min().unwrap_or(0);
        let last_seq = newest.iter().map(|s| s.last_seq).max().unwrap_or(0);
        insert_segment(conn, level + 1, first_seq, last_seq, &written)?;
        tracing::debug!(
            pairs = written.pairs,
            level = level + 1,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "compacted ledger segments"
        );
    }
}

/// After entries were deleted (`forget`): rewrites each segment without the pairs whose entry is
/// gone, so its filter stops answering "maybe" for them; a segment left empty is deleted. Inside
/// the forget's write transaction.
pub(super) fn drop_deleted_entries(conn: &Connection) -> Result<(), StateError> {
    const DOING: &str = "forgetting delivered keys";
    let mut exists = conn
        .prepare_cached("SELECT 1 FROM ledger_entries WHERE seq = ?1")
        .context(DOING)?;
    for segment in stored(conn, None)? {
        let mut reader = BlockReader::new(segment.first_block, segment.blocks);
        let mut writer = BlockWriter::new(conn, segment.entries as usize)?;
        while let Some(pair) = reader.next(conn)? {
            if exists.exists([pair.1]).context(DOING)? {
                writer.push(pair)?;
            }
        }
        let written = writer.finish()?;
        index_blocks::delete_blocks(conn, segment.first_block, segment.blocks)?;
        delete_segment(conn, segment.id)?;
        if written.pairs > 0 {
            insert_segment(
                conn,
                segment.level,
                segment.first_seq,
                segment.last_seq,
                &written,
            )?;
        }
    }
    Ok(())
}

fn insert_segment(
    conn: &Connection,
    level: i64,
    first_seq: i64,
    last_seq: i64,
    written: &Written,
) -> Result<(), StateError> {
    conn.prepare_cached(
        "INSERT INTO ledger_segments
             (level, first_seq, last_seq, entries, first_block, blocks, hashes, bloom, fences)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .context("storing a ledger segment")?
    .execute(params![
        level,
        first_seq,
        last_seq,
        written.pairs as i64,
        written.first_block,
        written.fences.len() as i64,
        written.bloom.hashes(),
        written.bloom.to_bytes(),
        index_blocks::fences_to_bytes(&written.fences),
    ])
    .context("storing a ledger segment")?;
    Ok(())
}

fn delete_segment(conn: &Connection, id: i64) -> Result<(), StateError> {
    conn.prepare_cached("DELETE FROM ledger_segments WHERE segment = ?1")
        .context("deleting a ledger segment")?
        .execute([id])
        .context("deleting a ledger segment")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::sqlite::ledger::key_hash;
    use crate::state::sqlite::migrations;

    fn ledger_with(keys: &[&str]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut conn, migrations::MIGRATIONS).unwrap();
        for key in keys {
            conn.execute(
                "INSERT INTO ledger_entries
                     (pipeline, idempotency_key, stream, delivered_at, content_hash)
                 VALUES ('p', ?1, 'sales', '2026-01-01T00:00:00Z', 'f-' || ?1)",
                [key],
            )
            .unwrap();
        }
        conn
    }

    fn find_in(conn: &Connection, keys: &[&str]) -> HashMap<String, Option<String>> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash("p", k)).collect();
        let mut found = HashMap::new();
        find(conn, &load(conn).unwrap(), "p", &keys, &hashes, &mut found).unwrap();
        found
    }

    #[test]
    fn a_hash_shared_by_two_keys_finds_each_and_a_forgotten_entry_is_passed_over() {
        // Entries 1 "a", 2 "b"; the segment says both have the hash of "b" (a collision), "a"
        // first.
        let conn = ledger_with(&["a", "b"]);
        let hash_b = key_hash("p", "b");
        write(&conn, 1, 2, [(hash_b, 1), (hash_b, 2)], 2).unwrap();
        assert_eq!(
            find_in(&conn, &["b", "c"]),
            HashMap::from([("b".to_string(), Some("f-b".to_string()))])
        );
        // The entry the hash names first is gone: the next one still answers.
        conn.execute("DELETE FROM ledger_entries WHERE seq = 1", [])
            .unwrap();
        assert_eq!(find_in(&conn, &["b"]).len(), 1);
        // Rewritten without the pairs of deleted entries: one pair left.
        drop_deleted_entries(&conn).unwrap();
        let entries: i64 = conn
            .query_row("SELECT entries FROM ledger_segments", [], |r| r.get(0))
            .unwrap();
        assert_eq!(entries, 1);
        assert_eq!(find_in(&conn, &["b"]).len(), 1);
    }
}
