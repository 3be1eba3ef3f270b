-- posbridge state, version 4: what `posbridge serve` keeps (API keys, stores, sealed secrets).
-- Plain portable types only: a PostgreSQL store runs the same statements.

-- API keys. The secret is never stored: only its SHA-256 (hex). `id` is the public part of the
-- key (`pbk_<id>_<secret>`), so a lookup is by id and the comparison by hash.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'store')),
    store_id    TEXT,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    CHECK ((role = 'admin' AND store_id IS NULL) OR (role = 'store' AND store_id IS NOT NULL))
);

-- The merchants (stores) one server serves.
CREATE TABLE stores (
    store_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Connector credentials and PSP configs, sealed with AES-256-GCM under the master key
-- (associated data: store id and purpose). Nonce and ciphertext are hex.
CREATE TABLE sealed_secrets (
    store_id   TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (store_id, purpose)
);
