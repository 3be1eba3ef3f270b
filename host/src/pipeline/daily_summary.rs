//! Running totals for `daily_summary`: one closure accumulator per source, store, register,
//! business day and currency, and, for every sale summed into one, the ledger entry to commit
//! with it and its id for the closure's `sale_ids`.
//!
//! Both live in a private temporary SQLite database on disk (deleted when the run ends), with
//! only the [`HOT_CLOSURES`] accumulators used last in memory: memory stays flat whatever the
//! number of sales and of closures (days × registers). Before, a 1,000,000-sale run held
//! ≈ 500 bytes per sale until its closures were written (560 MiB peak, `bench/pipeline.sh`), and
//! then, with the sales spilled, ≈ 1.4 KiB per closure (101 MiB for 30,641 closures). The spill
//! is run-local scratch space, like the memory it replaces: nothing in it needs to survive a
//! crash, because the sales' keys reach the state store only with their closure's commit.

use std::collections::HashMap;

use posbridge_plugin_api::model::{Closure, Sale};
use rusqlite::{params, Connection, OptionalExtension};

use crate::state::Delivered;

/// Why the scratch database failed (disk full, temporary directory not writable).
#[derive(Debug, thiserror::Error)]
#[error("daily_summary scratch space ({doing}): {source}")]
pub(super) struct SpillError {
    doing: &'static str,
    source: rusqlite::Error,
}

/// A spilled closure that does not read back: a bug, reported as a spill failure.
fn bad_json(doing: &'static str, err: serde_json::Error) -> SpillError {
    SpillError {
        doing,
        source: rusqlite::Error::ToSqlConversionFailure(Box::new(err)),
    }
}

trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T, SpillError>;
}

impl<T> Doing<T> for rusqlite::Result<T> {
    fn doing(self, doing: &'static str) -> Result<T, SpillError> {
        self.map_err(|source| SpillError { doing, source })
    }
}

/// A sale summed in this run, as it is committed with its closure.
pub(super) struct SummedSale {
    pub entry: Delivered,
    pub sale_id: String,
}

/// Closure accumulators kept in memory. Sales mostly come in time order, so the closures in use
/// are those of the registers' current days; the others wait in the spill (as JSON, exact:
/// decimals are strings) until a late sale or the end of the run needs them.
pub(super) const HOT_CLOSURES: usize = 512;

/// Sales recorded in the spill per transaction: a transaction's pages are written out once.
const SALES_PER_SPILL_TRANSACTION: usize = 1_000;

/// The running totals of one `daily_summary` run.
pub(super) struct DailySummary {
    /// The accumulators in use lately, by slot (closure id and currency), with the tick of their
    /// last use; their `sale_ids` stay empty until [`DailySummary::sales_of`] fills them in.
    hot: HashMap<String, (Closure, u64)>,
    /// Counts uses, to find the accumulator used longest ago.
    tick: u64,
    hot_limit: usize,
    spill: Connection,
    /// Sales recorded in the spill's open transaction.
    in_transaction: usize,
}

impl DailySummary {
    /// Opens the scratch database: an empty file name makes SQLite create a private temporary
    /// file (in `SQLITE_TMPDIR`, `TMPDIR` or `/tmp`), deleted when it is closed.
    pub fn new() -> Result<Self, SpillError> {
        Self::with_hot_closures(HOT_CLOSURES)
    }

    /// [`DailySummary::new`] keeping at most `limit` accumulators in memory.
    pub fn with_hot_closures(limit: usize) -> Result<Self, SpillError> {
        let spill = Connection::open("").doing("creating it")?;
        spill
            .execute_batch(
                "PRAGMA journal_mode = OFF;
                 PRAGMA synchronous = OFF;
                 PRAGMA cache_size = -2048;
                 CREATE TABLE summed (
                     seq         INTEGER PRIMARY KEY,
                     key         TEXT NOT NULL,
                     fingerprint TEXT,
                     slot        TEXT,
                     sale_id     TEXT NOT NULL,
                     UNIQUE (sale_id, key)
                 );
                 CREATE INDEX summed_by_slot ON summed (slot, seq);
                 CREATE TABLE closures (
                     slot    TEXT PRIMARY KEY,
                     closure TEXT NOT NULL
                 );",
            )
            .doing("creating its tables")?;
        // A sale's row is unique by its id and key, in that order, rather than by its key alone
        // (the same thing, as a key goes with one id): ids mostly come in order per register,
        // so a run's inserts land on a few pages of the index, which stay in the cache, where
        // keys (hashes) sent each insert to a page of its own. A 1,000,000-sale run read
        // 1,508,442 pages back and wrote 1,360,858 out; by id, 151,600 and 264,012 (strace).
        //
        // Sales are recorded [`SALES_PER_SPILL_TRANSACTION`] to a transaction: in autocommit
        // every insert was a transaction of its own, which wrote its pages out and swept the
        // page cache (`pcache1TruncateUnsafe`), ≈ 5 % of a 1,000,000-sale run's CPU. Nothing here
        // needs to be durable (see the module documentation).
        spill
            .execute_batch("BEGIN")
            .doing("starting a transaction")?;
        Ok(Self {
            hot: HashMap::new(),
            tick: 0,
            hot_limit: limit.max(1),
            spill,
            in_transaction: 0,
        })
    }

    /// Folds `sale` in under `key`, unless a sale with that key was summed in this run already:
    /// then nothing changes and the answer is that first sale's fingerprint. `key` is the sale's
    /// idempotency key, which is derived from its id (or, for a record without one, from all of
    /// it): one key never goes with two ids.
    pub fn add(
        &mut self,
        key: &str,
        fingerprint: Option<&str>,
        sale: &Sale,
    ) -> Result<Option<Option<String>>, SpillError> {
        // `from_sales` of one sale is that sale's closure (none for training/null receipts).
        let closure = Closure::from_sales(std::slice::from_ref(sale)).pop();
        let slot = closure
            .as_ref()
            .map(|c| format!("{}\u{0}{}", c.id, c.currency));
        let inserted = self
            .spill
            .prepare_cached(
                "INSERT INTO summed (key, fingerprint, slot, sale_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sale_id, key) DO NOTHING",
            )
            .doing("preparing an insert")?
            .execute(params![key, fingerprint, slot, sale.id])
            .doing("recording a sale")?;
        self.in_transaction += 1;
        if self.in_transaction >= SALES_PER_SPILL_TRANSACTION {
            self.spill
                .execute_batch("COMMIT; BEGIN")
                .doing("committing a transaction")?;
            self.in_transaction = 0;
        }
        if inserted == 0 {
            let first = self
                .spill
                .prepare_cached("SELECT fingerprint FROM summed WHERE sale_id = ?1 AND key = ?2")
                .doing("preparing a look-up")?
                .query_row([&sale.id, key], |r| r.get::<_, Option<String>>(0))
                .optional()
                .doing("looking up a sale")?;
            return Ok(Some(first.flatten()));
        }
        if let (Some(mut c), Some(slot)) = (closure, slot) {
            c.sale_ids.clear();
            self.tick += 1;
            if let Some((acc, used)) = self.hot.get_mut(&slot) {
                merge_closure(acc, c);
                *used = self.tick;
            } else {
                let acc = match self.spilled(&slot)? {
                    Some(mut acc) => {
                        merge_closure(&mut acc, c);
                        acc
                    }
                    None => c,
                };
                self.hot.insert(slot, (acc, self.tick));
                if self.hot.len() > self.hot_limit {
                    self.spill_coldest()?;
                }
            }
        }
        Ok(None)
    }

    /// The accumulator of `slot` from the spill, if it was spilled (it stays there until it is
    /// spilled again, replaced).
    fn spilled(&self, slot: &str) -> Result<Option<Closure>, SpillError> {
        let json = self
            .spill
            .prepare_cached("SELECT closure FROM closures WHERE slot = ?1")
            .doing("preparing a closure read")?
            .query_row([slot], |r| r.get::<_, String>(0))
            .optional()
            .doing("reading a closure")?;
        json.map(|json| serde_json::from_str(&json).map_err(|e| bad_json("reading a closure", e)))
            .transpose()
    }

    fn spill_coldest(&mut self) -> Result<(), SpillError> {
        let coldest = self
            .hot
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(slot, _)| slot.clone());
        if let Some(slot) = coldest {
            let (c, _) = self.hot.remove(&slot).expect("the slot was just found");
            self.write_spilled(&slot, &c)?;
        }
        Ok(())
    }

    fn write_spilled(&self, slot: &str, c: &Closure) -> Result<(), SpillError> {
        let json = serde_json::to_string(c).map_err(|e| bad_json("spilling a closure", e))?;
        self.spill
            .prepare_cached("INSERT OR REPLACE INTO closures (slot, closure) VALUES (?1, ?2)")
            .doing("preparing a closure write")?
            .execute(params![slot, json])
            .doing("spilling a closure")?;
        Ok(())
    }

    /// Ends the summing: every accumulator goes to the spill, for [`DailySummary::closures_after`].
    pub fn finish(&mut self) -> Result<(), SpillError> {
        for (slot, (c, _)) in std::mem::take(&mut self.hot) {
            self.write_spilled(&slot, &c)?;
        }
        Ok(())
    }

    /// After [`DailySummary::finish`]: up to `limit` closures whose slot sorts after `after`, in
    /// the order of their slots (ids, then currency), each without its `sale_ids`; with the slot
    /// to ask [`DailySummary::sales_of`] for them.
    pub fn closures_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Closure)>, SpillError> {
        let mut stmt = self
            .spill
            .prepare_cached(
                "SELECT slot, closure FROM closures WHERE ?1 IS NULL OR slot > ?1
                 ORDER BY slot LIMIT ?2",
            )
            .doing("preparing a closures read")?;
        let rows = stmt
            .query_map(params![after, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .doing("reading closures")?;
        let mut out = Vec::new();
        for row in rows {
            let (slot, json) = row.doing("reading closures")?;
            let c = serde_json::from_str(&json).map_err(|e| bad_json("reading a closure", e))?;
            out.push((slot, c));
        }
        Ok(out)
    }

    /// The sales summed into the closure of `slot`, in the order they came; `None` for the
    /// sales summed into no closure (training and null receipts: done all the same).
    pub fn sales_of(&self, slot: Option<&str>) -> Result<Vec<SummedSale>, SpillError> {
        let mut stmt = self
            .spill
            .prepare_cached(
                "SELECT key, fingerprint, sale_id FROM summed WHERE slot IS ?1 ORDER BY seq",
            )
            .doing("preparing a read")?;
        let rows = stmt
            .query_map([slot], |r| {
                Ok(SummedSale {
                    entry: Delivered {
                        key: r.get(0)?,
                        stream: "sales".into(),
                        external_id: None,
                        content_hash: r.get(1)?,
                    },
                    sale_id: r.get(2)?,
                })
            })
            .doing("reading the sales of a closure")?;
        rows.collect::<Result<_, _>>()
            .doing("reading the sales of a closure")
    }
}

impl Drop for DailySummary {
    fn drop(&mut self) {
        // Ends the open transaction before the connection closes (a rollback without a journal
        // is not defined); the file is deleted right after.
        let _ = self.spill.execute_batch("COMMIT");
    }
}

/// Adds closure `c` (same id and currency) into `acc`, exactly.
fn merge_closure(acc: &mut Closure, c: Closure) {
    acc.sales_count += c.sales_count;
    acc.totals.net += c.totals.net;
    acc.totals.tax += c.totals.tax;
    acc.totals.gross += c.totals.gross;
    acc.totals.discount += c.totals.discount;
    for t in c.taxes {
        match acc.taxes.iter_mut().find(|x| x.rate == t.rate) {
            Some(x) => {
                x.net += t.net;
                x.tax += t.tax;
                x.gross += t.gross;
            }
            None => acc.taxes.push(t),
        }
    }
    acc.taxes.sort_by_key(|t| t.rate);
    for p in c.payments {
        match acc.payments.iter_mut().find(|x| x.method == p.method) {
            Some(x) => x.amount += p.amount,
            None => acc.payments.push(p),
        }
    }
    acc.payments.sort_by(|a, b| a.method.cmp(&b.method));
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::model::{Sale, SaleKind};

    /// Two sales of one day, one of the next day, a training receipt (summed into nothing),
    /// and a third sale of the first day after it.
    fn sales() -> Vec<Sale> {
        let variant = |suffix: &str, days: u64, kind: SaleKind| {
            let mut s = Sale::example();
            s.id.push_str(suffix);
            s.receipt_number.push_str(suffix);
            s.business_day = s.business_day + chrono::Days::new(days);
            s.kind = kind;
            s
        };
        vec![
            variant("", 0, SaleKind::Sale),
            variant("-2", 0, SaleKind::Sale),
            variant("-3", 1, SaleKind::Sale),
            variant("-t", 0, SaleKind::Training),
            variant("-4", 0, SaleKind::Sale),
        ]
    }

    /// Every closure after `finish`, read two at a time.
    fn all_closures(summary: &mut DailySummary) -> Vec<(String, Closure)> {
        summary.finish().unwrap();
        let mut all: Vec<(String, Closure)> = Vec::new();
        loop {
            let after = all.last().map(|(slot, _)| slot.clone());
            let page = summary.closures_after(after.as_deref(), 2).unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    fn sums_like_closure_from_sales(mut summary: DailySummary) {
        let sales = sales();
        for (i, s) in sales.iter().enumerate() {
            assert_eq!(summary.add(&format!("k{i}"), Some("fp"), s).unwrap(), None);
        }
        let expected = Closure::from_sales(&sales);
        let closures = all_closures(&mut summary);
        let got: Vec<Closure> = closures
            .iter()
            .map(|(slot, c)| {
                let mut c = c.clone();
                c.sale_ids = summary
                    .sales_of(Some(slot))
                    .unwrap()
                    .into_iter()
                    .map(|s| s.sale_id)
                    .collect();
                c
            })
            .collect();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        let keys: usize = closures
            .iter()
            .map(|(slot, _)| summary.sales_of(Some(slot)).unwrap().len())
            .sum::<usize>()
            + summary.sales_of(None).unwrap().len();
        assert_eq!(keys, sales.len(), "every sale is in one closure or loose");
    }

    #[test]
    fn sums_like_closure_from_sales_and_gives_each_closure_its_sales_in_order() {
        sums_like_closure_from_sales(DailySummary::new().unwrap());
    }

    #[test]
    fn sums_the_same_when_accumulators_are_spilled_and_read_back() {
        // One in memory: the third sale's day spills the first day's accumulator, and the
        // fifth sale (first day again) reads it back and adds to it.
        sums_like_closure_from_sales(DailySummary::with_hot_closures(1).unwrap());
    }

    #[test]
    fn a_key_summed_before_answers_its_first_fingerprint_and_changes_nothing() {
        let sales = sales();
        // The same sale (key and id) with other content: the later day.
        let mut other = sales[2].clone();
        other.id = sales[0].id.clone();
        let mut summary = DailySummary::new().unwrap();
        assert_eq!(summary.add("k", Some("first"), &sales[0]).unwrap(), None);
        assert_eq!(
            summary.add("k", Some("second"), &other).unwrap(),
            Some(Some("first".into()))
        );
        let after: Vec<_> = all_closures(&mut summary)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let mut alone = DailySummary::new().unwrap();
        alone.add("k", Some("first"), &sales[0]).unwrap();
        let before: Vec<_> = all_closures(&mut alone)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            serde_json::to_value(&before).unwrap(),
            serde_json::to_value(&after).unwrap()
        );
    }
}
