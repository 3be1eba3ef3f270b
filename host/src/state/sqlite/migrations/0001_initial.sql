-- posbridge state, version 1. Plain SQL apart from WITHOUT ROWID and AUTOINCREMENT (SQLite only).
-- Timestamps are RFC 3339 UTC text with microseconds, written by the host: fixed width, so they
-- sort as text in time order. JSON values are stored as text.

-- The connector's opaque cursor, one per pipeline and stream.
CREATE TABLE cursors (
    pipeline   TEXT NOT NULL,
    stream     TEXT NOT NULL,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pipeline, stream)
);

-- The delivery ledger: every idempotency key a sink acknowledged. Millions of rows: clustered on
-- its primary key (WITHOUT ROWID), so a lookup is one B-tree search and no second index exists.
CREATE TABLE delivery_ledger (
    pipeline        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    stream          TEXT NOT NULL,
    external_id     TEXT,
    delivered_at    TEXT NOT NULL,
    PRIMARY KEY (pipeline, idempotency_key)
) WITHOUT ROWID;

-- Records that failed a stage, parked for a person to look at and replay.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline    TEXT NOT NULL,
    run_id      INTEGER,
    stream      TEXT NOT NULL,
    record_key  TEXT,
    record      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    stage       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    resolved_at TEXT,
    note        TEXT
);
CREATE INDEX dead_letters_by_pipeline ON dead_letters (pipeline, id);

-- Run history; a run is 'running' until finished.
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline      TEXT NOT NULL,
    args          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL,
    records_read  INTEGER NOT NULL DEFAULT 0,
    written       INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    retries       INTEGER NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at, id);
CREATE INDEX runs_by_start ON runs (started_at, id);

-- Plugin key-value state (e.g. cached vendor tokens), namespaced by connector name.
CREATE TABLE plugin_kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
