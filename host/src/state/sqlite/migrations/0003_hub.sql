-- posbridge state, version 3: the canonical hub (host/src/hub, docs/hub.md).
-- Plain SQL: no AUTOINCREMENT, no WITHOUT ROWID, no REAL. Money and quantities are exact decimal
-- text, summed in Rust (rust_decimal), never in SQL. `seq` is assigned by the host (max + 1 inside
-- the write transaction): a record stored or replaced later has a higher `seq`, so a reader that
-- remembers the last `seq` it saw misses nothing. Days are YYYY-MM-DD text, instants RFC 3339 UTC
-- text of fixed width (`ts_utc`), so both sort and compare as text.

-- Canonical sales, one row per (store, canonical sale id); `record` is the full canonical JSON.
CREATE TABLE hub_sales (
    seq            BIGINT NOT NULL PRIMARY KEY,
    store_id       TEXT   NOT NULL,
    id             TEXT   NOT NULL,
    receipt_number TEXT   NOT NULL,
    business_day   TEXT   NOT NULL,
    ts_utc         TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    currency       TEXT   NOT NULL,
    gross          TEXT   NOT NULL,
    items          TEXT   NOT NULL,
    record         TEXT   NOT NULL,
    UNIQUE (store_id, id)
);
CREATE INDEX hub_sales_by_day ON hub_sales (store_id, business_day, ts_utc, id);
-- Receipt lookups by canonical id or vendor number, in any of the caller's stores.
CREATE INDEX hub_sales_by_id ON hub_sales (id, store_id);
CREATE INDEX hub_sales_by_receipt ON hub_sales (receipt_number, store_id);
CREATE INDEX hub_sales_by_seq ON hub_sales (store_id, seq);

-- The lines of each sale, for product figures (top products) without parsing every record.
CREATE TABLE hub_sale_lines (
    store_id TEXT    NOT NULL,
    sale_id  TEXT    NOT NULL,
    line_no  INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    quantity TEXT    NOT NULL,
    gross    TEXT    NOT NULL,
    PRIMARY KEY (store_id, sale_id, line_no)
);

-- Catalogue records (products, categories, inventory, orders, suppliers, payment_methods,
-- registers): the latest version of each (store, stream, id).
CREATE TABLE hub_records (
    seq      BIGINT NOT NULL PRIMARY KEY,
    store_id TEXT   NOT NULL,
    stream   TEXT   NOT NULL,
    id       TEXT   NOT NULL,
    record   TEXT   NOT NULL,
    updated  TEXT   NOT NULL,
    UNIQUE (store_id, stream, id)
);
CREATE INDEX hub_records_by_seq ON hub_records (store_id, stream, seq);

-- Daily closures, one row per (store, closure id).
CREATE TABLE hub_closures (
    seq          BIGINT NOT NULL PRIMARY KEY,
    store_id     TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    business_day TEXT   NOT NULL,
    record       TEXT   NOT NULL,
    UNIQUE (store_id, id)
);
CREATE INDEX hub_closures_by_seq ON hub_closures (store_id, seq);

-- Every idempotency key the hub stored a record for: the same key twice stores nothing.
CREATE TABLE hub_keys (
    idempotency_key TEXT NOT NULL PRIMARY KEY CHECK (idempotency_key <> ''),
    stream          TEXT NOT NULL,
    store_id        TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    stored_at       TEXT NOT NULL
);
