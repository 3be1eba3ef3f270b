-- posbridge state, version 9: the ledger's merged entries as sorted runs with Bloom filters
-- (docs/decisions/010-ledger-write-amplification.md). A merge writes `ledger_recent` as a new
-- run at the right edge of `ledger_runs` instead of into one index that grows (which rewrote
-- most of that index at every merge); runs of one size are merged into a bigger one now and
-- then. The ledger's content is the runs, oldest (lowest `run`) first, then the keys of
-- `ledger_recent` they lack.
CREATE TABLE ledger_runs (
    run             INTEGER NOT NULL,
    pipeline        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    stream          TEXT NOT NULL,
    external_id     TEXT,
    delivered_at    TEXT NOT NULL,
    content_hash    TEXT,
    PRIMARY KEY (run, pipeline, idempotency_key)
) WITHOUT ROWID;

-- One row per run: a Bloom filter of its keys (`bloom`: little-endian 64-bit words; `hashes`
-- bits probed per key; see host/src/state/sqlite/ledger/bloom.rs), how many keys it holds, and
-- its level (0: written from `ledger_recent`; n + 1: merged from runs of level n).
CREATE TABLE ledger_run_filters (
    run    INTEGER PRIMARY KEY,
    level  INTEGER NOT NULL,
    keys   INTEGER NOT NULL,
    hashes INTEGER NOT NULL,
    bloom  BLOB NOT NULL
);

-- The index of earlier versions becomes run 1; the store builds its filter when it opens the
-- file (SQL cannot compute the hash).
INSERT INTO ledger_runs
    (run, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
SELECT 1, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
FROM delivery_ledger ORDER BY pipeline, idempotency_key;
DROP TABLE delivery_ledger;
UPDATE ledger_state SET generation = generation + 1;
