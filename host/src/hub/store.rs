//! [`HubStore`]: the hub's tables in the state database (migration `0003_hub.sql`).
//!
//! Writes are idempotent twice over: by the runner's idempotency key (`hub_keys`: a key seen
//! before stores nothing) and by identity (one row per store and canonical id: the same record
//! again is a duplicate, a changed one replaces the row and gets a new `seq`). Amounts stay
//! exact decimal text; every sum is done in Rust by the callers.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use chrono::{NaiveDate, SecondsFormat, Utc};
use posbridge_plugin_api::model::{record_id, Closure, Sale, SaleKind};
use posbridge_plugin_api::RecordOutcome;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use rust_decimal::Decimal;
use serde_json::Value;

use super::error::{HubError, StorageContext};
use super::period::Period;
use crate::state::{SqliteStore, StateLocation};

/// The catalogue streams the hub keeps (latest version of each record).
pub const CATALOGUE_STREAMS: &[&str] = &[
    "products",
    "categories",
    "inventory",
    "orders",
    "suppliers",
    "payment_methods",
    "registers",
];

/// One stored record as a reader sees it: its sequence number and canonical JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub seq: i64,
    pub record: Value,
}

/// The figures of one stored sale that the summary needs, without its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleFigures {
    pub kind: SaleKind,
    pub currency: String,
    pub gross: Decimal,
    /// Sum of the line quantities.
    pub items: Decimal,
}

/// One line of a stored sale, for product figures.
#[derive(Debug, Clone, PartialEq)]
pub struct LineFigures {
    pub name: String,
    pub quantity: Decimal,
    pub gross: Decimal,
}

/// The hub's tables on one database connection.
///
/// Calls on one `HubStore` take turns (one connection behind a mutex), and an export holds it
/// until its last byte is written: give each concurrent reader its own
/// ([`HubStore::try_clone`]; SQLite's WAL lets readers run beside a writer).
pub struct HubStore {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for HubStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubStore").finish_non_exhaustive()
    }
}

impl HubStore {
    /// Opens the hub in the state database at `location` (migrating it if needed).
    pub fn open(location: &StateLocation) -> Result<Self, HubError> {
        match location {
            StateLocation::Sqlite(path) => Self::open_sqlite(path),
            StateLocation::Postgres(_) => Err(HubError::invalid(
                "database",
                "the hub supports sqlite:PATH databases only for now",
            )),
        }
    }

    /// Opens the hub in a SQLite state file.
    pub fn open_sqlite(path: &Path) -> Result<Self, HubError> {
        let conn = SqliteStore::open(path)
            .doing("opening the state database")?
            .into_connection();
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
        })
    }

    /// Another connection to the same database, for a reader of its own. A hub in memory has
    /// no second connection: that is an error.
    pub fn try_clone(&self) -> Result<Self, HubError> {
        match &self.path {
            Some(path) => Self::open_sqlite(path),
            None => Err(HubError::invalid(
                "database",
                "a hub in memory cannot be opened twice",
            )),
        }
    }

    /// A hub in memory, gone when dropped (tests).
    pub fn open_in_memory() -> Result<Self, HubError> {
        let conn = SqliteStore::open_in_memory()
            .doing("opening an in-memory database")?
            .into_connection();
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // rusqlite rolls back an open transaction on drop, so a poisoned lock is safe to take.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a batch of one stream in one transaction and answers one outcome per record.
    ///
    /// `store` files every record under that store instead of the record's own `store_id`.
    /// `keys` are the runner's idempotency keys (one per record, or none at all). A record that
    /// cannot be stored (not canonical, no store) is answered `Rejected` with the reason; a
    /// database failure fails the whole batch, and nothing of it is stored.
    pub fn put(
        &self,
        stream: &str,
        store: Option<&str>,
        records: &[Value],
        keys: &[String],
    ) -> Result<Vec<RecordOutcome>, HubError> {
        if !keys.is_empty() && keys.len() != records.len() {
            return Err(HubError::invalid(
                "idempotency_keys",
                format!("{} keys for {} records", keys.len(), records.len()),
            ));
        }
        let table = StreamTable::of(stream).ok_or_else(|| {
            HubError::invalid(
                "stream",
                format!(
                    "the hub does not keep stream {stream:?}; it keeps sales, closures, {}",
                    CATALOGUE_STREAMS.join(", ")
                ),
            )
        })?;
        let mut conn = self.conn();
        let tx = conn.transaction().doing("starting a write")?;
        let mut next_seq = table.next_seq(&tx)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let key = keys.get(i).map(|k| store_scoped_key(store, k));
            let key = key.as_deref();
            if let Some(key) = key {
                if let Some(id) = known_key(&tx, key)? {
                    outcomes.push(RecordOutcome::Duplicate {
                        external_id: Some(id),
                    });
                    continue;
                }
            }
            let outcome = match table.parse(stream, store, record) {
                Err(reason) => RecordOutcome::Rejected { reason },
                Ok(row) => {
                    let written = row.upsert(&tx, next_seq)?;
                    if written {
                        next_seq += 1;
                    }
                    if let Some(key) = key {
                        tx.execute(
                            "INSERT INTO hub_keys (idempotency_key, stream, store_id, record_id, stored_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![key, stream, row.store, row.id, now_text()],
                        )
                        .doing("recording an idempotency key")?;
                    }
                    let external_id = Some(row.id.clone());
                    if written {
                        RecordOutcome::Written { external_id }
                    } else {
                        RecordOutcome::Duplicate { external_id }
                    }
                }
            };
            outcomes.push(outcome);
        }
        tx.commit().doing("committing a write")?;
        Ok(outcomes)
    }

    /// Up to `limit` records of `stream` of `store` with a sequence above `after`, in sequence
    /// order; sales and closures only of the business days `from..=to` when given.
    pub fn read_page(
        &self,
        stream: &str,
        store: &str,
        after: i64,
        limit: usize,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<StoredRecord>, HubError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let (from, to) = (day_text(from, "0000-01-01"), day_text(to, "9999-12-31"));
        let conn = self.conn();
        let mut stmt;
        let rows = match StreamTable::of(stream) {
            Some(StreamTable::Sales) => {
                stmt = conn
                    .prepare_cached(
                        "SELECT seq, record FROM hub_sales WHERE store_id = ?1 AND seq > ?2
                         AND business_day >= ?3 AND business_day <= ?4 ORDER BY seq LIMIT ?5",
                    )
                    .doing("reading sales")?;
                stmt.query(params![store, after, from, to, limit])
            }
            Some(StreamTable::Closures) => {
                stmt = conn
                    .prepare_cached(
                        "SELECT seq, record FROM hub_closures WHERE store_id = ?1 AND seq > ?2
                         AND business_day >= ?3 AND business_day <= ?4 ORDER BY seq LIMIT ?5",
                    )
                    .doing("reading closures")?;
                stmt.query(params![store, after, from, to, limit])
            }
            Some(StreamTable::Catalogue) => {
                stmt = conn
                    .prepare_cached(
                        "SELECT seq, record FROM hub_records WHERE store_id = ?1 AND stream = ?2
                         AND seq > ?3 ORDER BY seq LIMIT ?4",
                    )
                    .doing("reading catalogue records")?;
                stmt.query(params![store, stream, after, limit])
            }
            None => {
                return Err(HubError::invalid(
                    "stream",
                    format!("the hub does not keep stream {stream:?}"),
                ))
            }
        };
        let mut rows = rows.doing("reading records")?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().doing("reading records")? {
            let seq: i64 = row.get(0).doing("reading records")?;
            let text: String = row.get(1).doing("reading records")?;
            let record = serde_json::from_str(&text).doing("reading a stored record")?;
            out.push(StoredRecord { seq, record });
        }
        Ok(out)
    }

    /// Calls `f` with the figures of every sale of `store` in `period`, in no particular order.
    pub fn for_each_sale_figures(
        &self,
        store: &str,
        period: &Period,
        mut f: impl FnMut(SaleFigures) -> Result<(), HubError>,
    ) -> Result<(), HubError> {
        let (filter, args) = period_filter("s", store, period);
        let sql = format!("SELECT kind, currency, gross, items FROM hub_sales s WHERE {filter}");
        self.for_each_row(&sql, &args, "reading sale figures", |row| {
            let kind: String = row.get(0).doing("reading sale figures")?;
            f(SaleFigures {
                kind: parse_kind(&kind)?,
                currency: row.get(1).doing("reading sale figures")?,
                gross: decimal_column(row, 2)?,
                items: decimal_column(row, 3)?,
            })
        })
    }

    /// Runs a query over the hub's rows and calls `f` with each row as it is read, so a
    /// period of any size is streamed, not collected.
    fn for_each_row(
        &self,
        sql: &str,
        args: &[String],
        doing: &str,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<(), HubError>,
    ) -> Result<(), HubError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).doing(doing)?;
        let mut rows = stmt.query(params_from_iter(args.iter())).doing(doing)?;
        while let Some(row) = rows.next().doing(doing)? {
            f(row)?;
        }
        Ok(())
    }

    /// Calls `f` with every line of the sales of `store` in `period` whose kind is one of
    /// `kinds`.
    pub fn for_each_line(
        &self,
        store: &str,
        period: &Period,
        kinds: &[SaleKind],
        mut f: impl FnMut(LineFigures) -> Result<(), HubError>,
    ) -> Result<(), HubError> {
        let (filter, args) = period_filter("s", store, period);
        let sql = format!(
            "SELECT l.name, l.quantity, l.gross FROM hub_sales s
             JOIN hub_sale_lines l ON l.store_id = s.store_id AND l.sale_id = s.id
             WHERE {filter} AND s.kind IN ({})",
            kind_list(kinds)
        );
        self.for_each_row(&sql, &args, "reading sale lines", |row| {
            f(LineFigures {
                name: row.get(0).doing("reading sale lines")?,
                quantity: decimal_column(row, 1)?,
                gross: decimal_column(row, 2)?,
            })
        })
    }

    /// Calls `f` with every sale of `store` in `period` whose kind is one of `kinds`, ordered by
    /// business day, time and id.
    pub fn for_each_sale(
        &self,
        store: &str,
        period: &Period,
        kinds: &[SaleKind],
        mut f: impl FnMut(Sale) -> Result<(), HubError>,
    ) -> Result<(), HubError> {
        let (filter, args) = period_filter("s", store, period);
        let sql = format!(
            "SELECT record FROM hub_sales s WHERE {filter} AND s.kind IN ({})
             ORDER BY s.business_day, s.ts_utc, s.id",
            kind_list(kinds)
        );
        self.for_each_row(&sql, &args, "reading sales", |row| {
            let text: String = row.get(0).doing("reading sales")?;
            f(serde_json::from_str(&text).doing("reading a stored sale")?)
        })
    }

    /// The sale of `store` with the canonical id `id`.
    pub fn sale_by_id(&self, store: &str, id: &str) -> Result<Option<Sale>, HubError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT record FROM hub_sales WHERE store_id = ?1 AND id = ?2",
                params![store, id],
                |r| r.get(0),
            )
            .optional()
            .doing("looking up a sale")?;
        text.map(|t| serde_json::from_str(&t).doing("reading a stored sale"))
            .transpose()
    }

    /// The stores holding a sale with the canonical id `id` (usually one).
    pub fn stores_with_sale(&self, id: &str) -> Result<Vec<String>, HubError> {
        self.strings(
            "SELECT store_id FROM hub_sales WHERE id = ?1 ORDER BY store_id",
            id,
        )
    }

    /// The (store, canonical id) of every sale with the vendor receipt number `number`.
    pub fn sales_with_receipt_number(
        &self,
        number: &str,
    ) -> Result<Vec<(String, String)>, HubError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT store_id, id FROM hub_sales WHERE receipt_number = ?1 ORDER BY store_id, id",
            )
            .doing("looking up a receipt number")?;
        let rows = stmt
            .query_map([number], |r| Ok((r.get(0)?, r.get(1)?)))
            .doing("looking up a receipt number")?
            .collect::<Result<Vec<(String, String)>, _>>()
            .doing("looking up a receipt number")?;
        Ok(rows)
    }

    fn strings(&self, sql: &str, arg: &str) -> Result<Vec<String>, HubError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).doing("looking up a receipt")?;
        let rows = stmt
            .query_map([arg], |r| r.get(0))
            .doing("looking up a receipt")?
            .collect::<Result<Vec<String>, _>>()
            .doing("looking up a receipt")?;
        Ok(rows)
    }

    /// How many records of `stream` the hub holds for `store`.
    pub fn count(&self, stream: &str, store: &str) -> Result<u64, HubError> {
        let conn = self.conn();
        let n: i64 = match StreamTable::of(stream) {
            Some(StreamTable::Sales) => conn.query_row(
                "SELECT COUNT(*) FROM hub_sales WHERE store_id = ?1",
                [store],
                |r| r.get(0),
            ),
            Some(StreamTable::Closures) => conn.query_row(
                "SELECT COUNT(*) FROM hub_closures WHERE store_id = ?1",
                [store],
                |r| r.get(0),
            ),
            _ => conn.query_row(
                "SELECT COUNT(*) FROM hub_records WHERE store_id = ?1 AND stream = ?2",
                [store, stream],
                |r| r.get(0),
            ),
        }
        .doing("counting records")?;
        Ok(n as u64)
    }
}

/// Which table a stream lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamTable {
    Sales,
    Closures,
    Catalogue,
}

impl StreamTable {
    fn of(stream: &str) -> Option<Self> {
        match stream {
            "sales" => Some(Self::Sales),
            "closures" => Some(Self::Closures),
            s if CATALOGUE_STREAMS.contains(&s) => Some(Self::Catalogue),
            _ => None,
        }
    }

    fn next_seq(self, tx: &Transaction<'_>) -> Result<i64, HubError> {
        let sql = match self {
            Self::Sales => "SELECT COALESCE(MAX(seq), 0) + 1 FROM hub_sales",
            Self::Closures => "SELECT COALESCE(MAX(seq), 0) + 1 FROM hub_closures",
            Self::Catalogue => "SELECT COALESCE(MAX(seq), 0) + 1 FROM hub_records",
        };
        tx.query_row(sql, [], |r| r.get(0))
            .doing("numbering records")
    }

    /// The row for `record`, or why it cannot be stored.
    fn parse(self, stream: &str, store: Option<&str>, record: &Value) -> Result<Row, String> {
        let text = record.to_string();
        match self {
            Self::Sales => {
                let sale: Sale = parse_at(record, "sale")?;
                let store = store.unwrap_or(&sale.store_id).to_string();
                let items = sale.lines.iter().map(|l| l.quantity).sum::<Decimal>();
                let lines = sale
                    .lines
                    .iter()
                    .map(|l| LineFigures {
                        name: l.name.clone(),
                        quantity: l.quantity,
                        gross: l.gross,
                    })
                    .collect();
                Ok(Row {
                    store,
                    id: sale.id.clone(),
                    text,
                    detail: RowDetail::Sale {
                        receipt_number: sale.receipt_number.clone(),
                        business_day: sale.business_day.to_string(),
                        ts_utc: sale
                            .timestamp
                            .with_timezone(&Utc)
                            .to_rfc3339_opts(SecondsFormat::Micros, true),
                        kind: kind_text(sale.kind),
                        currency: sale.currency.clone(),
                        gross: sale.totals.gross.to_string(),
                        items: items.to_string(),
                        lines,
                    },
                })
            }
            Self::Closures => {
                let c: Closure = parse_at(record, "closure")?;
                Ok(Row {
                    store: store.unwrap_or(&c.store_id).to_string(),
                    id: c.id.clone(),
                    text,
                    detail: RowDetail::Closure {
                        business_day: c.business_day.to_string(),
                    },
                })
            }
            Self::Catalogue => {
                let id = record_id(record).ok_or_else(|| {
                    format!("a {stream} record needs an \"id\" (string or number)")
                })?;
                let own_store = record.get("store_id").and_then(Value::as_str);
                let store = store.or(own_store).ok_or_else(|| {
                    format!("the {stream} record {id:?} has no store_id; give the hub sink a store_id to file it under")
                })?;
                let updated = ["updated_at", "updatedAt", "updated"]
                    .iter()
                    .find_map(|f| record.get(*f).and_then(Value::as_str))
                    .map(str::to_string)
                    .unwrap_or_else(now_text);
                Ok(Row {
                    store: store.to_string(),
                    id,
                    text,
                    detail: RowDetail::Catalogue {
                        stream: stream.to_string(),
                        updated,
                    },
                })
            }
        }
    }
}

/// A record ready to store.
struct Row {
    store: String,
    id: String,
    text: String,
    detail: RowDetail,
}

enum RowDetail {
    Sale {
        receipt_number: String,
        business_day: String,
        ts_utc: String,
        kind: &'static str,
        currency: String,
        gross: String,
        items: String,
        lines: Vec<LineFigures>,
    },
    Closure {
        business_day: String,
    },
    Catalogue {
        stream: String,
        updated: String,
    },
}

impl Row {
    /// Inserts the row, or replaces a stored one with other content (under `seq`). Answers
    /// whether anything was written (`false`: the same content is already there).
    fn upsert(&self, tx: &Transaction<'_>, seq: i64) -> Result<bool, HubError> {
        let ctx = "storing a record";
        let existing: Option<String> = match &self.detail {
            RowDetail::Sale { .. } => tx.query_row(
                "SELECT record FROM hub_sales WHERE store_id = ?1 AND id = ?2",
                params![self.store, self.id],
                |r| r.get(0),
            ),
            RowDetail::Closure { .. } => tx.query_row(
                "SELECT record FROM hub_closures WHERE store_id = ?1 AND id = ?2",
                params![self.store, self.id],
                |r| r.get(0),
            ),
            RowDetail::Catalogue { stream, .. } => tx.query_row(
                "SELECT record FROM hub_records WHERE store_id = ?1 AND stream = ?2 AND id = ?3",
                params![self.store, stream, self.id],
                |r| r.get(0),
            ),
        }
        .optional()
        .doing(ctx)?;
        match existing {
            Some(text) if same_json(&text, &self.text) => return Ok(false),
            Some(_) => self.delete(tx)?,
            None => {}
        }
        match &self.detail {
            RowDetail::Sale {
                receipt_number,
                business_day,
                ts_utc,
                kind,
                currency,
                gross,
                items,
                lines,
            } => {
                tx.execute(
                    "INSERT INTO hub_sales (seq, store_id, id, receipt_number, business_day, ts_utc,
                         kind, currency, gross, items, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        seq,
                        self.store,
                        self.id,
                        receipt_number,
                        business_day,
                        ts_utc,
                        kind,
                        currency,
                        gross,
                        items,
                        self.text
                    ],
                )
                .doing(ctx)?;
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO hub_sale_lines (store_id, sale_id, line_no, name, quantity, gross)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .doing(ctx)?;
                for (i, l) in lines.iter().enumerate() {
                    stmt.execute(params![
                        self.store,
                        self.id,
                        i as i64,
                        l.name,
                        l.quantity.to_string(),
                        l.gross.to_string()
                    ])
                    .doing(ctx)?;
                }
            }
            RowDetail::Closure { business_day } => {
                tx.execute(
                    "INSERT INTO hub_closures (seq, store_id, id, business_day, record)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![seq, self.store, self.id, business_day, self.text],
                )
                .doing(ctx)?;
            }
            RowDetail::Catalogue { stream, updated } => {
                tx.execute(
                    "INSERT INTO hub_records (seq, store_id, stream, id, record, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![seq, self.store, stream, self.id, self.text, updated],
                )
                .doing(ctx)?;
            }
        }
        Ok(true)
    }

    fn delete(&self, tx: &Transaction<'_>) -> Result<(), HubError> {
        let ctx = "replacing a record";
        match &self.detail {
            RowDetail::Sale { .. } => {
                tx.execute(
                    "DELETE FROM hub_sale_lines WHERE store_id = ?1 AND sale_id = ?2",
                    params![self.store, self.id],
                )
                .doing(ctx)?;
                tx.execute(
                    "DELETE FROM hub_sales WHERE store_id = ?1 AND id = ?2",
                    params![self.store, self.id],
                )
            }
            RowDetail::Closure { .. } => tx.execute(
                "DELETE FROM hub_closures WHERE store_id = ?1 AND id = ?2",
                params![self.store, self.id],
            ),
            RowDetail::Catalogue { stream, .. } => tx.execute(
                "DELETE FROM hub_records WHERE store_id = ?1 AND stream = ?2 AND id = ?3",
                params![self.store, stream, self.id],
            ),
        }
        .doing(ctx)?;
        Ok(())
    }
}

/// The key recorded in `hub_keys`: the runner's key names the source record, not the store,
/// so a record filed under a store of the config is keyed per store (one source, e.g. the same
/// books, may fill several stores). Records filed under their own `store_id` keep the key as
/// is (their ids carry the store).
fn store_scoped_key(store: Option<&str>, key: &str) -> String {
    match store {
        Some(store) => format!("{store}\u{1f}{key}"),
        None => key.to_string(),
    }
}

/// The record id stored under an idempotency key, if the key was seen.
fn known_key(tx: &Transaction<'_>, key: &str) -> Result<Option<String>, HubError> {
    tx.query_row(
        "SELECT record_id FROM hub_keys WHERE idempotency_key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()
    .doing("looking up an idempotency key")
}

/// Parses a canonical record, naming the JSON path of the first problem.
fn parse_at<T: serde::de::DeserializeOwned>(record: &Value, what: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(record)
        .map_err(|e| format!("not a canonical {what}: at $.{}: {}", e.path(), e.inner()))
}

/// Two JSON texts with the same content (key order aside).
fn same_json(a: &str, b: &str) -> bool {
    a == b || serde_json::from_str::<Value>(a).ok() == serde_json::from_str::<Value>(b).ok()
}

/// The `WHERE` condition (on the sales table aliased `alias`) selecting `store` and `period`,
/// with its parameters.
fn period_filter(alias: &str, store: &str, period: &Period) -> (String, Vec<String>) {
    let mut sql = format!("{alias}.store_id = ?");
    let mut args = vec![store.to_string()];
    let (day_from, ts_from) = period.from.sql_bound();
    let (day_to, ts_to) = period.to.sql_bound();
    for (cond, value) in [
        ("business_day >=", day_from),
        ("ts_utc >=", ts_from),
        ("business_day <=", day_to),
        ("ts_utc <=", ts_to),
    ] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {alias}.{cond} ?"));
            args.push(v);
        }
    }
    (sql, args)
}

/// The kinds as a SQL list of literals (fixed names, never user input).
fn kind_list(kinds: &[SaleKind]) -> String {
    let list: Vec<String> = kinds
        .iter()
        .map(|k| format!("'{}'", kind_text(*k)))
        .collect();
    if list.is_empty() {
        "''".into()
    } else {
        list.join(", ")
    }
}

/// The stored name of a sale kind (its canonical JSON name).
pub(crate) fn kind_text(kind: SaleKind) -> &'static str {
    match kind {
        SaleKind::Sale => "sale",
        SaleKind::Refund => "refund",
        SaleKind::Cancellation => "cancellation",
        SaleKind::NullReceipt => "null_receipt",
        SaleKind::Training => "training",
    }
}

fn parse_kind(text: &str) -> Result<SaleKind, HubError> {
    serde_json::from_value(Value::String(text.to_string())).doing("reading a sale kind")
}

fn decimal_column(row: &rusqlite::Row<'_>, idx: usize) -> Result<Decimal, HubError> {
    let text: String = row.get(idx).doing("reading an amount")?;
    Decimal::from_str(&text).doing("reading an amount")
}

fn day_text(day: Option<NaiveDate>, default: &str) -> String {
    day.map(|d| d.to_string())
        .unwrap_or_else(|| default.to_string())
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}
