//! A sale: one receipt or transaction, with its lines, taxes, payments and fiscal signature.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::money::currency_minor_units;

/// What kind of receipt a sale is. Refunds and cancellations carry negative amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SaleKind {
    /// An ordinary sale.
    Sale,
    /// Money back to the customer (negative amounts).
    Refund,
    /// Cancels an earlier receipt (`cancels` names it); amounts are the negated original.
    Cancellation,
    /// A receipt with no amount (German "Nullbeleg"), e.g. for a fiscal start receipt.
    NullReceipt,
    /// A training transaction: not revenue.
    Training,
}

impl SaleKind {
    /// Whether the sale counts as revenue in books and closures.
    pub fn is_revenue(self) -> bool {
        !matches!(self, Self::Training | Self::NullReceipt)
    }
}

/// A cashier or other person on a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Party {
    /// The vendor's id of the person.
    pub id: Option<String>,
    /// The name shown.
    pub name: Option<String>,
}

/// The customer of a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Customer {
    /// The vendor's customer id.
    pub id: Option<String>,
    /// The customer's name.
    pub name: Option<String>,
    /// An id in another system (loyalty card, CRM).
    #[serde(default)]
    pub external_id: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
}

/// One receipt line. `tax_rate` is a percentage (19 for 19 %); `gross = net + tax`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SaleLine {
    /// The product sold, if the line names one.
    pub product_id: Option<String>,
    /// The line text.
    pub name: String,
    /// The product category.
    #[serde(default)]
    pub category: Option<String>,
    /// The barcode scanned.
    #[serde(default)]
    pub barcode: Option<String>,
    /// Quantity sold (negative on refunds).
    pub quantity: Decimal,
    /// Gross price of one unit before discount.
    pub unit_price: Decimal,
    /// Gross discount on the whole line (positive number reduces the line).
    #[serde(default)]
    pub discount: Decimal,
    /// VAT rate in percent (e.g. `19`).
    pub tax_rate: Decimal,
    /// Net amount of the line.
    pub net: Decimal,
    /// Tax of the line.
    pub tax: Decimal,
    /// Gross amount: `net + tax`.
    pub gross: Decimal,
}

/// One payment of a sale. A sale may have several (split payment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Payment {
    /// Normalized method: `cash`, `card`, `voucher`, `invoice`, `points`, … or the vendor's name.
    pub method: String,
    /// The amount paid with this method.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The payment provider's reference, for card payments.
    #[serde(default)]
    pub psp_reference: Option<String>,
    /// The vendor's own name of the method (`EC_CARD`, `Karte`) when it differs from `method`,
    /// so a record can be traced back to the register's wording; sinks ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_raw: Option<String>,
}

/// Net, tax and gross for one tax rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaxLine {
    /// VAT rate in percent.
    pub rate: Decimal,
    /// Net amount at this rate.
    pub net: Decimal,
    /// Tax at this rate.
    pub tax: Decimal,
    /// Gross amount at this rate: `net + tax`.
    pub gross: Decimal,
}

/// Totals of a sale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    /// Net total.
    pub net: Decimal,
    /// Tax total.
    pub tax: Decimal,
    /// Gross total: what the customer paid.
    pub gross: Decimal,
    /// Sum of the line discounts (gross).
    #[serde(default)]
    pub discount: Decimal,
}

/// German TSE signature (KassenSichV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TseSignature {
    /// The TSE's serial number.
    pub serial_number: String,
    /// The signature value.
    pub signature: String,
    /// The TSE's signature counter.
    pub signature_counter: u64,
    /// The TSE's transaction number.
    pub transaction_number: u64,
    /// When the transaction started.
    #[serde(default)]
    pub start: Option<DateTime<FixedOffset>>,
    /// When it ended.
    #[serde(default)]
    pub end: Option<DateTime<FixedOffset>>,
}

/// Austrian RKSV signature fields, where the source has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RksvSignature {
    /// The RKSV cash register id.
    pub cash_register_id: String,
    /// The RKSV receipt number.
    pub receipt_number: String,
    /// The signature (JWS compact).
    #[serde(default)]
    pub signature: Option<String>,
    /// The machine-readable code printed on the receipt.
    #[serde(default)]
    pub qr_code: Option<String>,
}

/// The fiscal signature of a receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FiscalSignature {
    /// German TSE (KassenSichV) signature.
    #[serde(default)]
    pub tse: Option<TseSignature>,
    /// Austrian RKSV signature.
    #[serde(default)]
    pub rksv: Option<RksvSignature>,
}

/// Loyalty points moved by a sale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Loyalty {
    /// Points earned with this sale.
    #[serde(default)]
    pub points_earned: Decimal,
    /// Points redeemed.
    #[serde(default)]
    pub points_burned: Decimal,
    /// Whether the points still wait for approval.
    #[serde(default)]
    pub pending_approval: bool,
}

/// A file attached to a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    /// The file name.
    pub name: String,
    /// Where it can be fetched.
    #[serde(default)]
    pub url: Option<String>,
    /// Its MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// One receipt / transaction in canonical form.
///
/// ```
/// use posbridge_plugin_api::model::*;
/// use rust_decimal_macros::dec;
/// let mut sale = Sale::example();
/// assert!(sale.validate().is_empty());
/// sale.payments[0].amount = dec!(1.00);
/// assert!(sale.validate().iter().any(|v| v.path == "payments"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sale {
    /// Stable canonical id: `{source_system}:{store_id}:{register_id}:{receipt_number}`.
    pub id: String,
    /// The system the sale comes from (the connector name).
    pub source_system: String,
    /// The store.
    pub store_id: String,
    /// The register.
    pub register_id: String,
    /// The receipt number printed on the receipt.
    pub receipt_number: String,
    /// Sale, refund, cancellation, null or training receipt.
    pub kind: SaleKind,
    /// For a cancellation: the receipt number it cancels.
    #[serde(default)]
    pub cancels: Option<String>,
    /// The business day it counts for (local to the store).
    pub business_day: NaiveDate,
    /// When it happened, with the store's local offset.
    pub timestamp: DateTime<FixedOffset>,
    /// The store's IANA time zone, when known.
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Who rang it up.
    #[serde(default)]
    pub cashier: Option<Party>,
    /// The customer, if known.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// The lines.
    #[serde(default)]
    pub lines: Vec<SaleLine>,
    /// How it was paid; the amounts add up to the gross total.
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// Totals per VAT rate; they add up to the totals.
    #[serde(default)]
    pub taxes: Vec<TaxLine>,
    /// The receipt's totals.
    pub totals: Totals,
    /// The fiscal signature.
    #[serde(default)]
    pub fiscal: Option<FiscalSignature>,
    /// Loyalty points.
    #[serde(default)]
    pub loyalty: Option<Loyalty>,
    /// Files attached to the receipt.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The vendor's own id for the record.
    #[serde(default)]
    pub raw_id: Option<String>,
}

/// One reason a record does not reconcile: where (a path into the record) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Where in the sale (`totals.gross`, `lines[2]`).
    pub path: String,
    /// What does not add up.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Sale {
    /// The canonical id for the given parts.
    pub fn make_id(source: &str, store: &str, register: &str, receipt: &str) -> String {
        format!("{source}:{store}:{register}:{receipt}")
    }

    /// Checks that the sale reconciles to the cent and returns every violation:
    /// each line's and each tax rate's `net + tax = gross`; lines per rate equal the tax
    /// breakdown; the breakdown equals the totals; payments equal the gross total; every amount
    /// has no more decimals than the currency allows; the currency is an ISO code.
    pub fn validate(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        let mut bad = |path: String, message: String| v.push(Violation { path, message });
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            bad(
                "currency".into(),
                format!("{:?} is not an ISO 4217 code", self.currency),
            );
        }
        let dp = currency_minor_units(&self.currency);
        for (i, l) in self.lines.iter().enumerate() {
            for (f, d) in [("net", l.net), ("tax", l.tax), ("gross", l.gross)] {
                // The path is written only for a violation: this runs for every line of every
                // sale a pipeline checks.
                if d.normalize().scale() > dp {
                    bad(
                        format!("lines[{i}].{f}"),
                        format!("{d} has more than {dp} decimals for {}", self.currency),
                    );
                }
            }
            if l.net + l.tax != l.gross {
                bad(
                    format!("lines[{i}]"),
                    format!("net {} + tax {} != gross {}", l.net, l.tax, l.gross),
                );
            }
        }
        for (i, t) in self.taxes.iter().enumerate() {
            if t.net + t.tax != t.gross {
                bad(
                    format!("taxes[{i}]"),
                    format!(
                        "rate {}: net {} + tax {} != gross {}",
                        t.rate, t.net, t.tax, t.gross
                    ),
                );
            }
        }
        // Lines per rate against the tax breakdown (only when there are lines).
        if !self.lines.is_empty() {
            let mut per_rate: BTreeMap<Decimal, (Decimal, Decimal, Decimal)> = BTreeMap::new();
            for l in &self.lines {
                let e = per_rate.entry(l.tax_rate.normalize()).or_default();
                e.0 += l.net;
                e.1 += l.tax;
                e.2 += l.gross;
            }
            let mut declared: BTreeMap<Decimal, (Decimal, Decimal, Decimal)> = BTreeMap::new();
            for t in &self.taxes {
                let e = declared.entry(t.rate.normalize()).or_default();
                e.0 += t.net;
                e.1 += t.tax;
                e.2 += t.gross;
            }
            for (rate, (n, t, g)) in &per_rate {
                match declared.get(rate) {
                    None if n.is_zero() && t.is_zero() && g.is_zero() => {}
                    None => bad("taxes".into(), format!("no tax breakdown for rate {rate} %")),
                    Some((dn, dt, dg)) if (dn, dt, dg) != (n, t, g) => bad(
                        "taxes".into(),
                        format!(
                            "rate {rate} %: lines sum to net {n} tax {t} gross {g}, breakdown says net {dn} tax {dt} gross {dg}"
                        ),
                    ),
                    _ => {}
                }
            }
            for rate in declared.keys() {
                if !per_rate.contains_key(rate) {
                    bad(
                        "taxes".into(),
                        format!("breakdown has rate {rate} % that no line has"),
                    );
                }
            }
            let lines_gross: Decimal = self.lines.iter().map(|l| l.gross).sum();
            if lines_gross != self.totals.gross {
                bad(
                    "totals.gross".into(),
                    format!(
                        "lines sum to {lines_gross}, total says {}",
                        self.totals.gross
                    ),
                );
            }
        }
        let (tn, tt, tg) = self.taxes.iter().fold(
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO),
            |(a, b, c), t| (a + t.net, b + t.tax, c + t.gross),
        );
        if !self.taxes.is_empty()
            && (tn, tt, tg) != (self.totals.net, self.totals.tax, self.totals.gross)
        {
            bad(
                "totals".into(),
                format!(
                    "tax breakdown sums to net {tn} tax {tt} gross {tg}, totals say net {} tax {} gross {}",
                    self.totals.net, self.totals.tax, self.totals.gross
                ),
            );
        }
        if self.totals.net + self.totals.tax != self.totals.gross {
            bad(
                "totals".into(),
                format!(
                    "net {} + tax {} != gross {}",
                    self.totals.net, self.totals.tax, self.totals.gross
                ),
            );
        }
        for (i, p) in self.payments.iter().enumerate() {
            if p.currency != self.currency {
                bad(
                    format!("payments[{i}].currency"),
                    format!("{} differs from the sale's {}", p.currency, self.currency),
                );
            }
        }
        let paid: Decimal = self.payments.iter().map(|p| p.amount).sum();
        if self.kind != SaleKind::Training && paid != self.totals.gross {
            bad(
                "payments".into(),
                format!(
                    "payments sum to {paid}, gross total is {}",
                    self.totals.gross
                ),
            );
        }
        if self.kind == SaleKind::Cancellation && self.cancels.is_none() {
            bad(
                "cancels".into(),
                "a cancellation must name the receipt it cancels".into(),
            );
        }
        v
    }

    /// A small valid sale, for examples and tests.
    pub fn example() -> Self {
        use std::str::FromStr;
        let d = |s: &str| Decimal::from_str(s).unwrap();
        Sale {
            id: Sale::make_id("demo", "S1", "R1", "1"),
            source_system: "demo".into(),
            store_id: "S1".into(),
            register_id: "R1".into(),
            receipt_number: "1".into(),
            kind: SaleKind::Sale,
            cancels: None,
            business_day: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
            timestamp: DateTime::parse_from_rfc3339("2026-02-01T10:00:00+01:00").unwrap(),
            timezone: Some("Europe/Berlin".into()),
            currency: "EUR".into(),
            cashier: None,
            customer: None,
            lines: vec![
                SaleLine {
                    product_id: Some("P1".into()),
                    name: "Bio-Vollmilch".into(),
                    category: None,
                    barcode: None,
                    quantity: d("2"),
                    unit_price: d("1.19"),
                    discount: d("0"),
                    tax_rate: d("7"),
                    net: d("2.22"),
                    tax: d("0.16"),
                    gross: d("2.38"),
                },
                SaleLine {
                    product_id: Some("P2".into()),
                    name: "Tragetasche".into(),
                    category: None,
                    barcode: None,
                    quantity: d("1"),
                    unit_price: d("1.19"),
                    discount: d("0"),
                    tax_rate: d("19"),
                    net: d("1.00"),
                    tax: d("0.19"),
                    gross: d("1.19"),
                },
            ],
            payments: vec![Payment {
                method: "cash".into(),
                amount: d("3.57"),
                currency: "EUR".into(),
                psp_reference: None,
                method_raw: None,
            }],
            taxes: vec![
                TaxLine {
                    rate: d("7"),
                    net: d("2.22"),
                    tax: d("0.16"),
                    gross: d("2.38"),
                },
                TaxLine {
                    rate: d("19"),
                    net: d("1.00"),
                    tax: d("0.19"),
                    gross: d("1.19"),
                },
            ],
            totals: Totals {
                net: d("3.22"),
                tax: d("0.35"),
                gross: d("3.57"),
                discount: d("0"),
            },
            fiscal: None,
            loyalty: None,
            attachments: vec![],
            raw_id: None,
        }
    }
}
