-- posbridge state, version 5: what operations need (run triggers, schedules, idempotent
-- payments). Plain SQL: no SQLite-only types or clauses.

-- Why a run started: 'cli', 'api' or 'schedule'. Runs recorded before were all started by hand.
ALTER TABLE runs ADD COLUMN started_by TEXT NOT NULL DEFAULT 'cli';

-- The scheduler's progress per pipeline: every tick at or before `handled_until` was handled
-- (run, or skipped because a run was still going). After a restart, the ticks missed since then
-- make one run, not one each.
CREATE TABLE schedule_ticks (
    pipeline      TEXT NOT NULL PRIMARY KEY,
    handled_until TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Client-supplied idempotency keys of payment operations, per store: the fingerprint of the
-- request the key was first used with and, once done, its answer (JSON). A row without an answer
-- is a request in flight, claimed by `owner` (the process, as in runs.owner).
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    idem_key     TEXT NOT NULL CHECK (idem_key <> ''),
    fingerprint  TEXT NOT NULL,
    answer       TEXT,
    owner        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    completed_at TEXT,
    PRIMARY KEY (scope, idem_key)
);
