//! A segment's index on disk: the (hash, `seq`) pair of every entry the segment covers, in
//! (hash, `seq`) order, packed into the blobs of `ledger_index_blocks`.
//!
//! A block is [`ENTRIES_PER_BLOCK`] pairs of 16 bytes (the hash, then the `seq`, little-endian),
//! 4,000 bytes: with its row header that is one cell on one 4 KiB leaf page (SQLite keeps up to
//! 4,061 bytes of a table row on the leaf), so fetching a block reads one page. A segment's
//! blocks have consecutive block numbers, and the first hash of each block (its *fence*) is kept
//! with the segment, so a look-up knows which block to fetch without searching the table.
//!
//! This layout is part of the file format (schema version 10).

use rusqlite::{params, Connection};

use super::bloom::Bloom;
use crate::state::sqlite::db_error::DbContext;
use crate::state::StateError;

/// Bytes of one (hash, `seq`) pair.
const PAIR_BYTES: usize = 16;

/// Pairs per block (the last block of a segment may hold fewer).
pub(super) const ENTRIES_PER_BLOCK: usize = 250;

/// A ledger entry as the index knows it: the [`super::key_hash`] of its pipeline and key, and its
/// `seq` in `ledger_entries`.
pub(super) type Pair = (u64, i64);

/// The pair at `index` of a block's bytes.
fn pair_at(block: &[u8], index: usize) -> Pair {
    let at = index * PAIR_BYTES;
    let hash = u64::from_le_bytes(block[at..at + 8].try_into().expect("8 bytes"));
    let seq = i64::from_le_bytes(block[at + 8..at + 16].try_into().expect("8 bytes"));
    (hash, seq)
}

/// Pairs in a block's bytes.
fn pairs_in(block: &[u8]) -> usize {
    block.len() / PAIR_BYTES
}

/// What [`BlockWriter::finish`] wrote.
pub(super) struct Written {
    pub first_block: i64,
    /// The first hash of each block, in block order.
    pub fences: Vec<u64>,
    pub pairs: u64,
    pub bloom: Bloom,
}

/// Writes pairs, given in (hash, `seq`) order, as a segment's blocks, numbered on from every
/// block there is (so they go to the right edge of the table's B-tree), and builds the segment's
/// filter on the way.
pub(super) struct BlockWriter<'c> {
    conn: &'c Connection,
    first_block: i64,
    block: Vec<u8>,
    fences: Vec<u64>,
    pairs: u64,
    bloom: Bloom,
    last: Option<Pair>,
}

impl<'c> BlockWriter<'c> {
    /// A writer for about `pairs` pairs (the filter's size). Inside a write transaction.
    pub(super) fn new(conn: &'c Connection, pairs: usize) -> Result<Self, StateError> {
        let first_block: i64 = conn
            .query_row(
                "SELECT coalesce(max(block), 0) + 1 FROM ledger_index_blocks",
                [],
                |r| r.get(0),
            )
            .context("numbering ledger index blocks")?;
        Ok(Self {
            conn,
            first_block,
            block: Vec::with_capacity(ENTRIES_PER_BLOCK * PAIR_BYTES),
            fences: Vec::new(),
            pairs: 0,
            bloom: Bloom::for_keys(pairs),
            last: None,
        })
    }

    /// Adds the next pair; pairs must come in strictly increasing (hash, `seq`) order.
    pub(super) fn push(&mut self, pair: Pair) -> Result<(), StateError> {
        debug_assert!(
            self.last.is_none_or(|last| last < pair),
            "pairs out of order"
        );
        self.last = Some(pair);
        if self.block.is_empty() {
            self.fences.push(pair.0);
        }
        self.block.extend_from_slice(&pair.0.to_le_bytes());
        self.block.extend_from_slice(&pair.1.to_le_bytes());
        self.bloom.insert(pair.0);
        self.pairs += 1;
        if pairs_in(&self.block) == ENTRIES_PER_BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the last block; answers what was written (no blocks if no pairs came).
    pub(super) fn finish(mut self) -> Result<Written, StateError> {
        self.flush()?;
        Ok(Written {
            first_block: self.first_block,
            fences: self.fences,
            pairs: self.pairs,
            bloom: self.bloom,
        })
    }

    fn flush(&mut self) -> Result<(), StateError> {
        if self.block.is_empty() {
            return Ok(());
        }
        const DOING: &str = "writing a ledger index block";
        let number = self.first_block + self.fences.len() as i64 - 1;
        self.conn
            .prepare_cached("INSERT INTO ledger_index_blocks (block, entries) VALUES (?1, ?2)")
            .context(DOING)?
            .execute(params![number, self.block])
            .context(DOING)?;
        self.block.clear();
        Ok(())
    }
}

/// Fetches block number `block`.
fn read_block(conn: &Connection, block: i64) -> Result<Vec<u8>, StateError> {
    const DOING: &str = "reading a ledger index block";
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT entries FROM ledger_index_blocks WHERE block = ?1")
        .context(DOING)?
        .query_row([block], |r| r.get(0))
        .context(DOING)?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(PAIR_BYTES) {
        return Err(StateError::Backend {
            context: format!("{DOING} {block}"),
            source: format!("{} bytes is not a whole number of entries", bytes.len()).into(),
        });
    }
    Ok(bytes)
}

/// Calls `visit` with the `seq` of each pair with hash `hash` in the segment whose blocks start
/// at `first_block` with `fences`, lowest `seq` first, until `visit` answers `true` (found).
pub(super) fn seqs_with_hash(
    conn: &Connection,
    first_block: i64,
    fences: &[u64],
    hash: u64,
    mut visit: impl FnMut(i64) -> Result<bool, StateError>,
) -> Result<(), StateError> {
    // The first `below` blocks start below `hash`, so its pairs start in the last of them (or in
    // the first block, if none does); they may go on into blocks that start with `hash`.
    let below = fences.partition_point(|&fence| fence < hash);
    let mut index = below.saturating_sub(1);
    loop {
        if index >= fences.len() || fences[index] > hash {
            return Ok(());
        }
        let block = read_block(conn, first_block + index as i64)?;
        let pairs = pairs_in(&block);
        let mut at = partition(&block, |pair_hash| pair_hash < hash);
        while at < pairs {
            let (pair_hash, seq) = pair_at(&block, at);
            if pair_hash != hash {
                return Ok(());
            }
            if visit(seq)? {
                return Ok(());
            }
            at += 1;
        }
        // The block ended on `hash`: the next one may go on with it.
        index += 1;
    }
}

/// The number of leading pairs of `block` whose hash satisfies `below` (a binary search).
fn partition(block: &[u8], below: impl Fn(u64) -> bool) -> usize {
    let (mut low, mut high) = (0, pairs_in(block));
    while low < high {
        let middle = (low + high) / 2;
        if below(pair_at(block, middle).0) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Reads a segment's pairs front to back, a block at a time.
pub(super) struct BlockReader {
    next_block: i64,
    end_block: i64,
    block: Vec<u8>,
    at: usize,
}

impl BlockReader {
    /// A reader of the `blocks` blocks from `first_block`.
    pub(super) fn new(first_block: i64, blocks: usize) -> Self {
        Self {
            next_block: first_block,
            end_block: first_block + blocks as i64,
            block: Vec::new(),
            at: 0,
        }
    }

    /// The next pair, `None` after the last.
    pub(super) fn next(&mut self, conn: &Connection) -> Result<Option<Pair>, StateError> {
        if self.at == pairs_in(&self.block) {
            if self.next_block == self.end_block {
                return Ok(None);
            }
            self.block = read_block(conn, self.next_block)?;
            self.next_block += 1;
            self.at = 0;
        }
        let pair = pair_at(&self.block, self.at);
        self.at += 1;
        Ok(Some(pair))
    }
}

/// Deletes the `blocks` blocks from `first_block`.
pub(super) fn delete_blocks(
    conn: &Connection,
    first_block: i64,
    blocks: usize,
) -> Result<(), StateError> {
    conn.prepare_cached("DELETE FROM ledger_index_blocks WHERE block >= ?1 AND block < ?2")
        .context("deleting ledger index blocks")?
        .execute([first_block, first_block + blocks as i64])
        .context("deleting ledger index blocks")?;
    Ok(())
}

/// The stored form of a segment's fences: little-endian 64-bit words.
pub(super) fn fences_to_bytes(fences: &[u64]) -> Vec<u8> {
    fences.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Reads stored fences back (`None`: not a whole number of words).
pub(super) fn fences_from_bytes(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8")))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::sqlite::migrations;

    fn ledger_tables() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations::migrate(&mut conn, migrations::MIGRATIONS).unwrap();
        conn
    }

    fn write(conn: &Connection, pairs: &[Pair]) -> Written {
        let mut writer = BlockWriter::new(conn, pairs.len()).unwrap();
        for &pair in pairs {
            writer.push(pair).unwrap();
        }
        writer.finish().unwrap()
    }

    fn seqs(conn: &Connection, written: &Written, hash: u64) -> Vec<i64> {
        let mut seen = Vec::new();
        seqs_with_hash(conn, written.first_block, &written.fences, hash, |seq| {
            seen.push(seq);
            Ok(false)
        })
        .unwrap();
        seen
    }

    #[test]
    fn the_pairs_of_one_hash_are_visited_lowest_seq_first_across_blocks() {
        let conn = ledger_tables();
        // 600 pairs of hash 20 span three blocks: [10, 20 × 249], [20 × 250], [20 × 101, 30].
        let mut pairs = vec![(10, 1000)];
        pairs.extend((1..=600).map(|seq| (20, seq)));
        pairs.push((30, 2000));
        let written = write(&conn, &pairs);
        assert_eq!(written.fences, [10, 20, 20]);
        assert_eq!(written.pairs, 602);
        assert_eq!(seqs(&conn, &written, 20), (1..=600).collect::<Vec<_>>());
        assert_eq!(seqs(&conn, &written, 10), [1000]);
        assert_eq!(seqs(&conn, &written, 30), [2000]);
        for absent in [0, 15, 25, u64::MAX] {
            assert!(seqs(&conn, &written, absent).is_empty(), "hash {absent}");
        }
        // Found: the visit stops.
        let mut seen = 0;
        seqs_with_hash(&conn, written.first_block, &written.fences, 20, |seq| {
            seen += 1;
            Ok(seq == 300)
        })
        .unwrap();
        assert_eq!(seen, 300);
    }

    #[test]
    fn a_reader_gives_back_what_the_writer_wrote_and_blocks_are_numbered_on() {
        let conn = ledger_tables();
        let first = write(&conn, &[(1, 1), (2, 2)]);
        // splitmix64 hashes, as keys' hashes are spread.
        let mut state = 7u64;
        let mut pairs: Vec<Pair> = (0..1_234)
            .map(|seq| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31), seq)
            })
            .collect();
        pairs.sort_unstable();
        let written = write(&conn, &pairs);
        assert_eq!(written.first_block, first.first_block + 1);
        assert_eq!(written.fences.len(), 5, "1,234 pairs, 250 to a block");
        let mut reader = BlockReader::new(written.first_block, written.fences.len());
        let mut read = Vec::new();
        while let Some(pair) = reader.next(&conn).unwrap() {
            read.push(pair);
        }
        assert_eq!(read, pairs);
        for &(hash, seq) in pairs.iter().step_by(97) {
            assert_eq!(seqs(&conn, &written, hash), [seq]);
            assert!(written.bloom.may_contain(hash));
        }
        // A block is one 4 KiB page: 4,000 bytes of pairs.
        let bytes: i64 = conn
            .query_row(
                "SELECT length(entries) FROM ledger_index_blocks WHERE block = ?1",
                [written.first_block],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(bytes, 4_000);
        delete_blocks(&conn, written.first_block, written.fences.len()).unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM ledger_index_blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1, "the other segment's block");
    }

    #[test]
    fn fences_read_back_and_a_damaged_block_is_an_error() {
        let fences = [0, 7, u64::MAX];
        assert_eq!(
            fences_from_bytes(&fences_to_bytes(&fences)).unwrap(),
            fences
        );
        assert!(fences_from_bytes(&[0; 9]).is_none());
        let conn = ledger_tables();
        conn.execute(
            "INSERT INTO ledger_index_blocks (block, entries) VALUES (1, x'00')",
            [],
        )
        .unwrap();
        let err = seqs_with_hash(&conn, 1, &[0], 0, |_| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
    }
}
