//! The summary figures of `exportSalesData` (definitions in `docs/hub.md`):
//!
//! - `totalTransactions`: the receipts of kind sale, refund and cancellation in the period
//!   ([`SaleKind::is_revenue`]); training and null receipts are not transactions;
//! - `totalRevenue`: the signed sum of their gross totals (refunds and cancellations are negative);
//! - `avgBasketSize`: items per sale, over receipts of kind `sale` only; the items of a sale are
//!   the sum of its line quantities (3 × milk + 0.5 kg cheese = 3.5), rounded to two decimals;
//! - `topProducts`: per line name, `sold` = signed sum of quantities and `revenue` = signed sum of
//!   line gross over the counted receipts; the 10 with the highest revenue (ties by name).
//!
//! Two passes over the store, each streamed: memory grows with the number of distinct product
//! names, not with the number of receipts.

use std::collections::{BTreeSet, HashMap};

use posbridge_plugin_api::model::SaleKind;
use rust_decimal::{Decimal, RoundingStrategy};

use super::error::HubError;
use super::period::Period;
use super::store::HubStore;

/// How many products `topProducts` lists.
pub const TOP_PRODUCTS: usize = 10;

/// The receipt kinds that are transactions (counted, summed and listed).
pub const COUNTED_KINDS: &[SaleKind] = &[SaleKind::Sale, SaleKind::Refund, SaleKind::Cancellation];

/// One entry of `topProducts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopProduct {
    pub name: String,
    pub sold: Decimal,
    pub revenue: Decimal,
}

/// The summary of a store's sales in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesSummary {
    pub total_transactions: u64,
    pub total_revenue: Decimal,
    /// Items per sale, rounded to two decimals (0 without sales).
    pub avg_basket_size: Decimal,
    /// Receipts of kind `sale` (the denominator of `avg_basket_size`).
    pub sales: u64,
    /// Items of the receipts of kind `sale` (the numerator of `avg_basket_size`).
    pub items: Decimal,
    /// The currency of every counted receipt; `None` when there are none.
    pub currency: Option<String>,
    pub top_products: Vec<TopProduct>,
}

/// Computes the summary of `store` in `period`. Sales in more than one currency cannot be
/// summed: that is an error naming the currencies.
pub fn sales_summary(
    hub: &HubStore,
    store: &str,
    period: &Period,
) -> Result<SalesSummary, HubError> {
    let mut s = SalesSummary {
        total_transactions: 0,
        total_revenue: Decimal::ZERO,
        avg_basket_size: Decimal::ZERO,
        sales: 0,
        items: Decimal::ZERO,
        currency: None,
        top_products: Vec::new(),
    };
    let mut currencies = BTreeSet::new();
    hub.for_each_sale_figures(store, period, |f| {
        if f.kind.is_revenue() {
            s.total_transactions += 1;
            s.total_revenue += f.gross;
            currencies.insert(f.currency);
        }
        if f.kind == SaleKind::Sale {
            s.sales += 1;
            s.items += f.items;
        }
        Ok(())
    })?;
    if currencies.len() > 1 {
        return Err(HubError::invalid(
            "storeId",
            format!(
                "store {store:?} has sales in several currencies in this period ({}); totals cannot be summed across currencies",
                currencies.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    s.currency = currencies.into_iter().next();
    if s.sales > 0 {
        s.avg_basket_size = (s.items / Decimal::from(s.sales))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    }
    let mut products: HashMap<String, (Decimal, Decimal)> = HashMap::new();
    hub.for_each_line(store, period, COUNTED_KINDS, |l| {
        let e = products.entry(l.name).or_default();
        e.0 += l.quantity;
        e.1 += l.gross;
        Ok(())
    })?;
    let mut top: Vec<TopProduct> = products
        .into_iter()
        .map(|(name, (sold, revenue))| TopProduct {
            name,
            sold,
            revenue,
        })
        .collect();
    top.sort_by(|a, b| b.revenue.cmp(&a.revenue).then_with(|| a.name.cmp(&b.name)));
    top.truncate(TOP_PRODUCTS);
    s.top_products = top;
    Ok(s)
}
