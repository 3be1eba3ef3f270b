-- posbridge state, version 10: the ledger's entries stay where they were appended, in
-- `ledger_entries` (`seq` order); segments index stretches of it by the hash of (pipeline, key)
-- (docs/decisions/010-ledger-write-amplification.md, "Amendment: an append-only log with hash
-- indexes"). A merge writes ≈ 16 bytes an entry of index instead of copying the entry into a
-- sorted run. The ledger's content is `ledger_entries`; of a key entered twice, the lowest `seq`
-- counts.
CREATE TABLE ledger_entries (
    seq             INTEGER PRIMARY KEY,
    pipeline        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    stream          TEXT NOT NULL,
    external_id     TEXT,
    delivered_at    TEXT NOT NULL,
    content_hash    TEXT
);

-- The runs' entries first (oldest run first, so a key's first entry keeps the lowest `seq`),
-- then the recent ones in the order they came.
INSERT INTO ledger_entries
    (pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
SELECT pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
FROM ledger_runs ORDER BY run, pipeline, idempotency_key;
INSERT INTO ledger_entries
    (pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
SELECT pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
FROM ledger_recent ORDER BY seq;
DROP TABLE ledger_runs;
DROP TABLE ledger_run_filters;
DROP TABLE ledger_recent;

-- One row per segment: the stretch of `seq` it indexes, its level (0: made by a merge; n + 1:
-- compacted from segments of level n), how many (hash, seq) pairs it holds, where its index
-- blocks are (`first_block`, `blocks` consecutive numbers), the first hash of each block
-- (`fences`: little-endian 64-bit words) and a Bloom filter of its hashes (`bloom`, with `hashes`
-- bits probed per key; host/src/state/sqlite/ledger/bloom.rs).
CREATE TABLE ledger_segments (
    segment     INTEGER PRIMARY KEY,
    level       INTEGER NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    entries     INTEGER NOT NULL,
    first_block INTEGER NOT NULL,
    blocks      INTEGER NOT NULL,
    hashes      INTEGER NOT NULL,
    bloom       BLOB NOT NULL,
    fences      BLOB NOT NULL
);

-- A segment's (hash, seq) pairs in (hash, seq) order, 250 to a block of 16-byte little-endian
-- pairs (host/src/state/sqlite/ledger/index_blocks.rs).
CREATE TABLE ledger_index_blocks (
    block   INTEGER PRIMARY KEY,
    entries BLOB NOT NULL
);

-- The highest `seq` a segment covers: the entries above it are indexed by each process's map.
-- The store indexes what the migration moved when it opens the file (SQL cannot compute the
-- hash).
ALTER TABLE ledger_state ADD COLUMN indexed_through INTEGER NOT NULL DEFAULT 0;
UPDATE ledger_state SET generation = generation + 1;
