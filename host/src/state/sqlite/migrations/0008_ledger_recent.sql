-- posbridge state, version 8: the delivery ledger as a small log-structured merge
-- (docs/decisions/010-ledger-write-amplification.md). New ledger entries are appended to
-- `ledger_recent` in `seq` order; when it is full they move into `delivery_ledger` in key order,
-- in one transaction. The ledger's content is `delivery_ledger` plus the keys of `ledger_recent`
-- not in it (the lowest `seq` first). Plain portable SQL.
CREATE TABLE ledger_recent (
    seq             INTEGER PRIMARY KEY,
    pipeline        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    stream          TEXT NOT NULL,
    external_id     TEXT,
    delivered_at    TEXT NOT NULL,
    content_hash    TEXT
);

-- Moves on at every merge into `delivery_ledger` and every forget: a process that keeps an
-- in-memory map of `ledger_recent` reloads it when the generation is not the one it loaded.
CREATE TABLE ledger_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO ledger_state (id, generation) VALUES (1, 0);
