//! The BEEP! Analytics export summary (`exportSalesData`): total revenue, transactions, average
//! basket and top products, computed exactly with [`Decimal`] as the sales go by.
//!
//! Money is printed as JSON strings, not numbers: a JSON number is read as a binary float by
//! most consumers, and the summary must agree to the cent with the records it summarizes.

use std::collections::HashMap;

use chrono::NaiveDate;
use posbridge_plugin_api::model::{currency_minor_units, round_money, Decimal, Sale};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many products `topProducts` lists.
pub const TOP_PRODUCTS: usize = 10;

/// Why a record cannot be summarized.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("record {id} is not a canonical sale ({reason}); the summary needs canonical sales")]
    NotASale { id: String, reason: String },
    #[error("sales in more than one currency ({first} and {other}, e.g. in {id}): a summary adds amounts of one currency only")]
    MixedCurrencies {
        first: String,
        other: String,
        id: String,
    },
}

/// Running totals of one product (by name) over the revenue sales.
#[derive(Debug, Clone, Default)]
struct ProductTotals {
    sold: Decimal,
    revenue: Decimal,
}

/// Aggregates sales into the BEEP! summary. Memory grows with the number of distinct products
/// only, not with the number of sales.
#[derive(Debug, Default)]
pub struct SalesSummary {
    currency: Option<String>,
    revenue: Decimal,
    transactions: u64,
    /// By product name.
    products: HashMap<String, ProductTotals>,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
}

impl SalesSummary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one exported record of the `sales` stream. Training receipts and null receipts
    /// are not revenue ([`posbridge_plugin_api::model::SaleKind::is_revenue`]) and only widen
    /// the period; refunds and cancellations count with their (negative) amounts.
    pub fn add(&mut self, record: &Value) -> Result<(), SummaryError> {
        let sale = Sale::deserialize(record).map_err(|e| SummaryError::NotASale {
            id: posbridge_plugin_api::model::record_id(record)
                .unwrap_or_else(|| "without id".into()),
            reason: e.to_string(),
        })?;
        self.first_day = Some(
            self.first_day
                .map_or(sale.business_day, |d| d.min(sale.business_day)),
        );
        self.last_day = Some(
            self.last_day
                .map_or(sale.business_day, |d| d.max(sale.business_day)),
        );
        if !sale.kind.is_revenue() {
            return Ok(());
        }
        match &self.currency {
            None => self.currency = Some(sale.currency.clone()),
            Some(c) if *c != sale.currency => {
                return Err(SummaryError::MixedCurrencies {
                    first: c.clone(),
                    other: sale.currency.clone(),
                    id: sale.id.clone(),
                })
            }
            Some(_) => {}
        }
        self.revenue += sale.totals.gross;
        self.transactions += 1;
        for line in &sale.lines {
            // BEEP! names top products by name only, so a product is its name: the same
            // article under two catalogue ids (e.g. one per country) is one entry, not two
            // entries that a reader could not tell apart.
            let p = self.products.entry(line.name.clone()).or_default();
            p.sold += line.quantity;
            p.revenue += line.gross;
        }
        Ok(())
    }

    /// The summary in the BEEP! `exportSalesData` shape (without `transactions`, which are the
    /// exported records themselves). `from`/`to` default to the first and last business day seen.
    pub fn report(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> BeepExport {
        let currency = self.currency.as_deref().unwrap_or("EUR");
        let minor = currency_minor_units(currency);
        let avg = if self.transactions == 0 {
            Decimal::ZERO
        } else {
            round_money(self.revenue / Decimal::from(self.transactions), currency)
        };
        let mut top: Vec<(&String, &ProductTotals)> = self.products.iter().collect();
        // Highest revenue first; equal revenue by name, so the list is the same on every run.
        top.sort_by(|(an, a), (bn, b)| b.revenue.cmp(&a.revenue).then_with(|| an.cmp(bn)));
        top.truncate(TOP_PRODUCTS);
        BeepExport {
            success: true,
            data: BeepData {
                period: Period {
                    from: from.or(self.first_day),
                    to: to.or(self.last_day),
                },
                summary: BeepSummary {
                    total_revenue: with_scale(self.revenue, minor),
                    total_transactions: self.transactions,
                    avg_basket_size: with_scale(avg, minor),
                    top_products: top
                        .into_iter()
                        .map(|(name, p)| TopProduct {
                            name: name.clone(),
                            sold: p.sold.normalize(),
                            revenue: with_scale(p.revenue, minor),
                        })
                        .collect(),
                },
            },
        }
    }
}

/// `d` with at least `scale` decimals ("0" → "0.00"); never rounds.
fn with_scale(mut d: Decimal, scale: u32) -> Decimal {
    if d.scale() < scale {
        d.rescale(scale);
    }
    d
}

/// `{"success": true, "data": {...}}` as BEEP! answers `exportSalesData`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeepExport {
    pub success: bool,
    pub data: BeepData,
}

/// The `data` object: the period and its summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeepData {
    pub period: Period,
    pub summary: BeepSummary,
}

/// The exported business days (`null` when unknown: no `--from`/`--to` and no sales).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The figures. Decimals serialize as strings (exact); the count is a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeepSummary {
    /// Sum of `totals.gross` over revenue receipts (refunds and cancellations negative).
    pub total_revenue: Decimal,
    /// Number of revenue receipts (kinds sale, refund, cancellation).
    pub total_transactions: u64,
    /// `totalRevenue / totalTransactions`, rounded half away from zero to the currency's minor unit.
    pub avg_basket_size: Decimal,
    /// The products with the highest revenue, at most [`TOP_PRODUCTS`].
    pub top_products: Vec<TopProduct>,
}

/// One product of `topProducts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopProduct {
    pub name: String,
    /// Summed line quantities (refunded quantities are negative).
    pub sold: Decimal,
    /// Summed line gross.
    pub revenue: Decimal,
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::model::SaleKind;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn record(sale: &Sale) -> Value {
        serde_json::to_value(sale).unwrap()
    }

    #[test]
    fn revenue_counts_refunds_negative_and_skips_training() {
        let sale = Sale::example(); // 3.57: milk 2 × 2.38, bag 1 × 1.19
        let mut refund = Sale::example();
        refund.id = "demo:S1:R1:2".into();
        refund.kind = SaleKind::Refund;
        refund.totals.gross = d("-1.19");
        refund.lines.truncate(1);
        refund.lines[0].quantity = d("-1");
        refund.lines[0].gross = d("-1.19");
        let mut training = Sale::example();
        training.kind = SaleKind::Training;
        training.business_day = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();

        let mut s = SalesSummary::new();
        for r in [&sale, &refund, &training] {
            s.add(&record(r)).unwrap();
        }
        let r = s.report(None, None).data;
        assert_eq!(r.summary.total_revenue, d("2.38"));
        assert_eq!(r.summary.total_transactions, 2);
        assert_eq!(r.summary.avg_basket_size.to_string(), "1.19");
        assert_eq!(r.period.to, NaiveDate::from_ymd_opt(2026, 2, 3));
        let milk = &r.summary.top_products[0];
        assert_eq!(
            (milk.name.as_str(), milk.sold, milk.revenue),
            ("Bio-Vollmilch", d("1"), d("1.19"))
        );
        assert_eq!(r.summary.top_products.len(), 2);
    }

    #[test]
    fn money_is_printed_as_strings_with_cents() {
        let json = serde_json::to_value(SalesSummary::new().report(None, None)).unwrap();
        assert_eq!(json["data"]["summary"]["totalRevenue"], "0.00");
        assert_eq!(json["data"]["summary"]["avgBasketSize"], "0.00");
        assert_eq!(json["data"]["summary"]["totalTransactions"], 0);
        assert_eq!(json["data"]["period"]["from"], Value::Null);
    }

    #[test]
    fn average_rounds_half_away_from_zero_and_mixed_currencies_are_refused() {
        let mut s = SalesSummary::new();
        for (i, g) in ["0.01", "0.02"].iter().enumerate() {
            let mut sale = Sale::example();
            sale.id = format!("x{i}");
            sale.totals.gross = d(g);
            s.add(&record(&sale)).unwrap();
        }
        assert_eq!(
            s.report(None, None)
                .data
                .summary
                .avg_basket_size
                .to_string(),
            "0.02"
        );
        let mut chf = Sale::example();
        chf.currency = "CHF".into();
        assert!(matches!(
            s.add(&record(&chf)),
            Err(SummaryError::MixedCurrencies { .. })
        ));
        assert!(matches!(
            s.add(&serde_json::json!({"id": "q"})),
            Err(SummaryError::NotASale { .. })
        ));
    }
}
