//! Running totals for `daily_summary`: one closure accumulator per source, store, register,
//! business day and currency, and, for every sale summed into one, the ledger entry to commit
//! with it and its id for the closure's `sale_ids`.
//!
//! The per-sale part lives in a private temporary SQLite database on disk (deleted when the
//! run ends), not in memory: memory grows with the number of closures (days × registers), not
//! with the number of sales. Before, a 1,000,000-sale run held ≈ 500 bytes per sale until its
//! closures were written (560 MiB peak, `bench/pipeline.sh`). The spill is run-local scratch
//! space, like the memory it replaces: nothing in it needs to survive a crash, because the
//! sales' keys reach the state store only with their closure's commit.

use std::collections::BTreeMap;

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

/// The running totals of one `daily_summary` run.
pub(super) struct DailySummary {
    /// The accumulators, by closure id and currency; their `sale_ids` stay empty until
    /// [`DailySummary::sales_of`] fills them in.
    closures: BTreeMap<String, Closure>,
    spill: Connection,
}

impl DailySummary {
    /// Opens the scratch database: an empty file name makes SQLite create a private temporary
    /// file (in `SQLITE_TMPDIR`, `TMPDIR` or `/tmp`), deleted when it is closed.
    pub fn new() -> Result<Self, SpillError> {
        let spill = Connection::open("").doing("creating it")?;
        spill
            .execute_batch(
                "PRAGMA journal_mode = OFF;
                 PRAGMA synchronous = OFF;
                 PRAGMA cache_size = -2048;
                 CREATE TABLE summed (
                     seq         INTEGER PRIMARY KEY,
                     key         TEXT NOT NULL UNIQUE,
                     fingerprint TEXT,
                     slot        TEXT,
                     sale_id     TEXT NOT NULL
                 );
                 CREATE INDEX summed_by_slot ON summed (slot, seq);",
            )
            .doing("creating its table")?;
        Ok(Self {
            closures: BTreeMap::new(),
            spill,
        })
    }

    /// Folds `sale` in under `key`, unless a sale with that key was summed in this run already:
    /// then nothing changes and the answer is that first sale's fingerprint.
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
                 ON CONFLICT (key) DO NOTHING",
            )
            .doing("preparing an insert")?
            .execute(params![key, fingerprint, slot, sale.id])
            .doing("recording a sale")?;
        if inserted == 0 {
            let first = self
                .spill
                .prepare_cached("SELECT fingerprint FROM summed WHERE key = ?1")
                .doing("preparing a look-up")?
                .query_row([key], |r| r.get::<_, Option<String>>(0))
                .optional()
                .doing("looking up a sale")?;
            return Ok(Some(first.flatten()));
        }
        if let (Some(mut c), Some(slot)) = (closure, slot) {
            c.sale_ids.clear();
            match self.closures.get_mut(&slot) {
                None => {
                    self.closures.insert(slot, c);
                }
                Some(acc) => merge_closure(acc, c),
            }
        }
        Ok(None)
    }

    /// The closures, in the order of their ids, each without its `sale_ids`; with the slot
    /// to ask [`DailySummary::sales_of`] for them.
    pub fn closures(&self) -> impl Iterator<Item = (&str, &Closure)> {
        self.closures.iter().map(|(slot, c)| (slot.as_str(), c))
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

    #[test]
    fn sums_like_closure_from_sales_and_gives_each_closure_its_sales_in_order() {
        let sales = sales();
        let mut summary = DailySummary::new().unwrap();
        for (i, s) in sales.iter().enumerate() {
            assert_eq!(summary.add(&format!("k{i}"), Some("fp"), s).unwrap(), None);
        }
        let expected = Closure::from_sales(&sales);
        let got: Vec<Closure> = summary
            .closures()
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
        let keys: usize = summary
            .closures()
            .map(|(slot, _)| summary.sales_of(Some(slot)).unwrap().len())
            .sum::<usize>()
            + summary.sales_of(None).unwrap().len();
        assert_eq!(keys, sales.len(), "every sale is in one closure or loose");
    }

    #[test]
    fn a_key_summed_before_answers_its_first_fingerprint_and_changes_nothing() {
        let sales = sales();
        let mut summary = DailySummary::new().unwrap();
        assert_eq!(summary.add("k", Some("first"), &sales[0]).unwrap(), None);
        let before: Vec<_> = summary.closures().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            summary.add("k", Some("second"), &sales[1]).unwrap(),
            Some(Some("first".into()))
        );
        let after: Vec<_> = summary.closures().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            serde_json::to_value(&before).unwrap(),
            serde_json::to_value(&after).unwrap()
        );
    }
}
