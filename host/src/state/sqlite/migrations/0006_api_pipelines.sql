-- posbridge state, version 6: the pipelines `posbridge serve` holds (created by
-- `POST /api/v1/pipelines`, or by a sync call). Their connector configs are not here: they are
-- sealed in `sealed_secrets` (purpose `pipeline:<name>`). Plain portable types only.
CREATE TABLE api_pipelines (
    name       TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL,
    -- `api` (POST /api/v1/pipelines) or `sync` (syncPOS, pushToERP, …).
    origin     TEXT NOT NULL,
    -- The definition as JSON, with both connector configs blanked.
    definition TEXT NOT NULL,
    schedule   TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX api_pipelines_by_store ON api_pipelines (store_id);
