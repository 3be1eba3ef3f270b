//! Daily closures: one business day of one register, totals per tax rate and payment method.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::sale::{Sale, SaleKind, TaxLine, Totals};

/// Open while the day may still change, final once closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClosureStatus {
    /// The day may still change.
    Open,
    /// The day is closed.
    Final,
}

/// What a closure sums: a day's sales, or its refunds and cancellations. Books take the two
/// apart — sales as an invoice-like voucher, credits as their own credit voucher — so a refund
/// is never netted silently into the day's revenue.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClosureKind {
    /// Receipts of kind `sale` (positive amounts).
    #[default]
    Sales,
    /// Receipts of kind `refund` and `cancellation` (negative amounts, as on the receipts).
    Credits,
}

impl ClosureKind {
    /// The closure kind a revenue sale is summed into.
    pub fn of(kind: SaleKind) -> Self {
        match kind {
            SaleKind::Refund | SaleKind::Cancellation => Self::Credits,
            _ => Self::Sales,
        }
    }
}

/// The total of one payment method in a closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentTotal {
    /// The normalized payment method (`cash`, `card`, …).
    pub method: String,
    /// Its total.
    pub amount: Decimal,
}

/// One business day of one register: what an accountant books. A day with refunds or
/// cancellations has a second closure of kind [`ClosureKind::Credits`] for them.
///
/// ```
/// use posbridge_plugin_api::model::{Closure, Sale};
/// let sales = vec![Sale::example()];
/// let closures = Closure::from_sales(&sales);
/// assert_eq!(closures.len(), 1);
/// assert_eq!(closures[0].totals.gross, sales[0].totals.gross);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Closure {
    /// `{source_system}:{store_id}:{register_id}:{business_day}`, plus `:credits` for credits.
    pub id: String,
    /// Sales or credits (refunds and cancellations).
    #[serde(default)]
    pub kind: ClosureKind,
    /// The system the sales came from.
    pub source_system: String,
    /// The store.
    pub store_id: String,
    /// The register.
    pub register_id: String,
    /// The business day summed up.
    pub business_day: NaiveDate,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Open or final.
    pub status: ClosureStatus,
    /// How many sales were summed.
    pub sales_count: u64,
    /// Totals per tax rate.
    pub taxes: Vec<TaxLine>,
    /// Totals per payment method.
    pub payments: Vec<PaymentTotal>,
    /// The day's totals.
    pub totals: Totals,
    /// The ids of the sales summed up, so a closure can be traced back.
    #[serde(default)]
    pub sale_ids: Vec<String>,
}

impl Closure {
    /// Sums sales into one closure per (source, store, register, business day, currency,
    /// [`ClosureKind`]), exactly. Training receipts and null receipts are not revenue and are left out. Sums of
    /// tax lines and payments equal the sums over the single sales to the cent.
    pub fn from_sales(sales: &[Sale]) -> Vec<Closure> {
        type Key = (String, String, String, NaiveDate, String, ClosureKind);
        let mut acc: BTreeMap<Key, Closure> = BTreeMap::new();
        let mut per_rate: BTreeMap<Key, BTreeMap<Decimal, TaxLine>> = BTreeMap::new();
        let mut per_method: BTreeMap<Key, BTreeMap<String, Decimal>> = BTreeMap::new();
        for s in sales.iter().filter(|s| s.kind.is_revenue()) {
            let key = (
                s.source_system.clone(),
                s.store_id.clone(),
                s.register_id.clone(),
                s.business_day,
                s.currency.clone(),
                ClosureKind::of(s.kind),
            );
            let kind = ClosureKind::of(s.kind);
            let c = acc.entry(key.clone()).or_insert_with(|| Closure {
                id: format!(
                    "{}:{}:{}:{}{}",
                    s.source_system,
                    s.store_id,
                    s.register_id,
                    s.business_day,
                    if kind == ClosureKind::Credits {
                        ":credits"
                    } else {
                        ""
                    }
                ),
                kind,
                source_system: s.source_system.clone(),
                store_id: s.store_id.clone(),
                register_id: s.register_id.clone(),
                business_day: s.business_day,
                currency: s.currency.clone(),
                status: ClosureStatus::Final,
                sales_count: 0,
                taxes: Vec::new(),
                payments: Vec::new(),
                totals: Totals::default(),
                sale_ids: Vec::new(),
            });
            c.sales_count += 1;
            c.sale_ids.push(s.id.clone());
            c.totals.net += s.totals.net;
            c.totals.tax += s.totals.tax;
            c.totals.gross += s.totals.gross;
            c.totals.discount += s.totals.discount;
            let rates = per_rate.entry(key.clone()).or_default();
            for t in &s.taxes {
                let e = rates.entry(t.rate.normalize()).or_insert_with(|| TaxLine {
                    rate: t.rate.normalize(),
                    net: Decimal::ZERO,
                    tax: Decimal::ZERO,
                    gross: Decimal::ZERO,
                });
                e.net += t.net;
                e.tax += t.tax;
                e.gross += t.gross;
            }
            let methods = per_method.entry(key).or_default();
            for p in &s.payments {
                *methods.entry(p.method.clone()).or_default() += p.amount;
            }
        }
        acc.into_iter()
            .map(|(k, mut c)| {
                c.taxes = per_rate
                    .remove(&k)
                    .unwrap_or_default()
                    .into_values()
                    .collect();
                c.payments = per_method
                    .remove(&k)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(method, amount)| PaymentTotal { method, amount })
                    .collect();
                c
            })
            .collect()
    }
}
