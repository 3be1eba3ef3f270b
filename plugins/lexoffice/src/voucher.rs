//! From a canonical sale or daily closure to the vouchers that book it: items per tax rate with
//! their posting category, positive rates on a `salesinvoice`, negative rates (refunds,
//! cancellations, or the returns inside a closure) as a `salescreditnote` with the amounts
//! turned positive. Invoice minus credit note equals the record's totals to the cent.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Europe::Berlin;
use posbridge_plugin_api::model::{Closure, Decimal, Sale, SaleKind, TaxLine};

use crate::config::TaxType;
use crate::json_text::Json;
use crate::mapping::{rate_key, Contact, Mapping};

/// Voucher numbers the connector writes start with this, followed by the idempotency key.
pub const NUMBER_PREFIX: &str = "PB-";
/// How many characters of the idempotency key go into a voucher number (96 bits).
const KEY_CHARS: usize = 24;
/// Suffix of the credit-note part of a record that has both parts.
const CREDIT_SUFFIX: &str = "-G";
/// lexoffice books vouchers in euros only.
const CURRENCY: &str = "EUR";

/// The common shape of what is booked: one sale or one closure.
#[derive(Debug, Clone)]
pub struct Booking {
    /// The canonical id (written into the remark so a voucher can be traced back).
    pub reference: String,
    pub store_id: String,
    pub register_id: String,
    pub day: NaiveDate,
    pub currency: String,
    /// Net, tax and gross per rate, signed as in the canonical model.
    pub rates: Vec<TaxLine>,
    /// Method and signed amount.
    pub payments: Vec<(String, Decimal)>,
    /// The refund kind whose categories a credit-note part uses.
    pub credit_kind: &'static str,
    /// Whether the record is revenue at all (training and null receipts are not).
    pub is_revenue: bool,
}

impl Booking {
    /// A sale, with its tax breakdown (or, when it has none, its lines summed per rate).
    pub fn from_sale(s: &Sale) -> Self {
        let rates = if s.taxes.is_empty() {
            let mut per_rate: BTreeMap<Decimal, TaxLine> = BTreeMap::new();
            for l in &s.lines {
                let t = per_rate
                    .entry(l.tax_rate.normalize())
                    .or_insert_with(|| zero_line(l.tax_rate));
                t.net += l.net;
                t.tax += l.tax;
                t.gross += l.gross;
            }
            per_rate.into_values().collect()
        } else {
            s.taxes.clone()
        };
        Self {
            reference: s.id.clone(),
            store_id: s.store_id.clone(),
            register_id: s.register_id.clone(),
            day: s.business_day,
            currency: s.currency.clone(),
            rates,
            payments: s
                .payments
                .iter()
                .map(|p| (p.method.clone(), p.amount))
                .collect(),
            credit_kind: if s.kind == SaleKind::Cancellation {
                "cancellation"
            } else {
                "refund"
            },
            is_revenue: s.kind.is_revenue(),
        }
    }

    /// A daily closure: its rates and payments as summed by the host.
    pub fn from_closure(c: &Closure) -> Self {
        Self {
            reference: c.id.clone(),
            store_id: c.store_id.clone(),
            register_id: c.register_id.clone(),
            day: c.business_day,
            currency: c.currency.clone(),
            rates: c.taxes.clone(),
            payments: c
                .payments
                .iter()
                .map(|p| (p.method.clone(), p.amount))
                .collect(),
            credit_kind: "refund",
            is_revenue: true,
        }
    }
}

fn zero_line(rate: Decimal) -> TaxLine {
    TaxLine {
        rate: rate.normalize(),
        net: Decimal::ZERO,
        tax: Decimal::ZERO,
        gross: Decimal::ZERO,
    }
}

/// `salesinvoice` or `salescreditnote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoucherType {
    SalesInvoice,
    SalesCreditNote,
}

impl VoucherType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SalesInvoice => "salesinvoice",
            Self::SalesCreditNote => "salescreditnote",
        }
    }
}

/// One voucher item: amounts positive, per rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub rate: Decimal,
    pub net: Decimal,
    pub tax: Decimal,
    pub gross: Decimal,
    pub category_id: String,
}

/// A voucher ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVoucher {
    pub voucher_type: VoucherType,
    pub number: String,
    pub day: NaiveDate,
    pub items: Vec<Item>,
    pub contact: Contact,
    pub remark: String,
}

impl PlannedVoucher {
    pub fn total_gross(&self) -> Decimal {
        self.items.iter().map(|i| i.gross).sum()
    }

    pub fn total_tax(&self) -> Decimal {
        self.items.iter().map(|i| i.tax).sum()
    }

    /// The body of `POST /v1/vouchers`, numbers written exactly.
    pub fn body(&self, tax_type: TaxType) -> String {
        let items = self
            .items
            .iter()
            .map(|i| {
                let amount = match tax_type {
                    TaxType::Gross => i.gross,
                    TaxType::Net => i.net,
                };
                Json::obj([
                    ("amount", Json::Num(amount)),
                    ("taxAmount", Json::Num(i.tax)),
                    ("taxRatePercent", Json::Num(i.rate.normalize())),
                    ("categoryId", Json::str(&i.category_id)),
                ])
            })
            .collect();
        let mut fields = vec![
            ("type".to_string(), Json::str(self.voucher_type.as_str())),
            ("voucherNumber".to_string(), Json::str(&self.number)),
            ("voucherDate".to_string(), Json::str(voucher_date(self.day))),
            (
                "totalGrossAmount".to_string(),
                Json::Num(self.total_gross()),
            ),
            ("totalTaxAmount".to_string(), Json::Num(self.total_tax())),
            ("taxType".to_string(), Json::str(tax_type.as_str())),
        ];
        match &self.contact {
            Contact::Collective => {
                fields.push(("useCollectiveContact".into(), Json::Bool(true)));
            }
            Contact::Id(id) => {
                fields.push(("useCollectiveContact".into(), Json::Bool(false)));
                fields.push(("contactId".into(), Json::str(id)));
            }
        }
        fields.push(("remark".into(), Json::str(&self.remark)));
        fields.push(("voucherItems".into(), Json::Arr(items)));
        Json::Obj(fields).to_text()
    }
}

/// Midnight of the day in Europe/Berlin, as lexoffice writes dates
/// (`yyyy-MM-ddTHH:mm:ss.SSSXXX`).
pub fn voucher_date(day: NaiveDate) -> String {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    match Berlin.from_local_datetime(&midnight).earliest() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        // Berlin never skips midnight; keep a valid date all the same.
        None => format!("{day}T00:00:00.000+01:00"),
    }
}

/// The voucher number of a record: the prefix and the start of its idempotency key.
pub fn voucher_number(key: &str) -> String {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(KEY_CHARS)
        .collect();
    format!("{NUMBER_PREFIX}{k}")
}

/// The payments as written into a remark: `Zahlungen: Bar=12.34; EC-Karte=-5.00`.
fn payments_text(b: &Booking, m: &Mapping) -> Result<String, Vec<String>> {
    let mut per_label: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut missing = Vec::new();
    for (method, amount) in &b.payments {
        match m.payment_label(method) {
            Ok(label) => *per_label.entry(label).or_default() += *amount,
            Err(e) => missing.push(e),
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let parts: Vec<String> = per_label.iter().map(|(l, a)| format!("{l}={a}")).collect();
    Ok(format!("Zahlungen: {}", parts.join("; ")))
}

/// The vouchers that book a record, or the reason it cannot be booked. An empty plan means
/// there is nothing to book (training, null receipts, all amounts zero).
pub fn plan(b: &Booking, m: &Mapping, key: &str) -> Result<Vec<PlannedVoucher>, String> {
    if !b.is_revenue {
        return Ok(Vec::new());
    }
    if b.currency != CURRENCY {
        return Err(format!(
            "lexoffice books vouchers in EUR only, {} is in {}",
            b.reference, b.currency
        ));
    }
    let mut problems = Vec::new();
    let contact = m
        .contact(&b.store_id, &b.register_id)
        .map_err(|e| problems.push(e))
        .ok();
    let mut invoice = Vec::new();
    let mut credit = Vec::new();
    for t in &b.rates {
        if t.gross.is_zero() && t.net.is_zero() && t.tax.is_zero() {
            continue;
        }
        let negative = t.gross < Decimal::ZERO;
        let sign = if negative {
            -Decimal::ONE
        } else {
            Decimal::ONE
        };
        let (net, tax, gross) = (t.net * sign, t.tax * sign, t.gross * sign);
        if gross.is_zero() || net < Decimal::ZERO || tax < Decimal::ZERO {
            problems.push(format!(
                "rate {} %: net {}, tax {} and gross {} do not share one sign",
                rate_key(t.rate),
                t.net,
                t.tax,
                t.gross
            ));
            continue;
        }
        let kind = negative.then_some(b.credit_kind);
        match m.category(t.rate, kind) {
            Ok(id) => {
                let item = Item {
                    rate: t.rate.normalize(),
                    net,
                    tax,
                    gross,
                    category_id: id.to_string(),
                };
                if negative {
                    credit.push(item)
                } else {
                    invoice.push(item)
                }
            }
            Err(e) => problems.push(e),
        }
    }
    let payments = payments_text(b, m).map_err(|e| problems.extend(e)).ok();
    problems.dedup();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let (Some(contact), Some(payments)) = (contact, payments) else {
        return Err("the mapping does not cover this record".into());
    };
    let number = voucher_number(key);
    let mut out = Vec::new();
    let both = !invoice.is_empty() && !credit.is_empty();
    if !invoice.is_empty() {
        out.push(PlannedVoucher {
            voucher_type: VoucherType::SalesInvoice,
            number: number.clone(),
            day: b.day,
            items: invoice,
            contact: contact.clone(),
            remark: format!("posbridge {}\n{payments}", b.reference),
        });
    }
    if !credit.is_empty() {
        let (number, remark) = if both {
            (
                format!("{number}{CREDIT_SUFFIX}"),
                format!("posbridge {} (Gutschrift-Teil)", b.reference),
            )
        } else {
            (number, format!("posbridge {}\n{payments}", b.reference))
        };
        out.push(PlannedVoucher {
            voucher_type: VoucherType::SalesCreditNote,
            number,
            day: b.day,
            items: credit,
            contact,
            remark,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn mapping() -> Mapping {
        Mapping::parse(&json!({
            "tax_rates": {"19": "c19", "7": "c7"},
            "refund_kinds": {"cancellation": {"19": "c19-storno"}},
            "payment_methods": {"cash": "Bar", "card": "EC-Karte"}
        }))
        .unwrap()
    }

    #[test]
    fn a_sale_becomes_one_invoice_with_items_per_rate() {
        let sale = Sale::example();
        let p = plan(
            &Booking::from_sale(&sale),
            &mapping(),
            "0123456789abcdef0123456789abcdef",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        let v = &p[0];
        assert_eq!(v.voucher_type, VoucherType::SalesInvoice);
        assert_eq!(v.number, "PB-0123456789abcdef01234567");
        assert_eq!(v.total_gross(), sale.totals.gross);
        assert_eq!(v.total_tax(), sale.totals.tax);
        let body: serde_json::Value = serde_json::from_str(&v.body(TaxType::Gross)).unwrap();
        assert_eq!(body["type"], "salesinvoice");
        assert_eq!(body["voucherDate"], "2026-02-01T00:00:00.000+01:00");
        assert_eq!(body["useCollectiveContact"], true);
        assert_eq!(body["voucherItems"][0]["categoryId"], "c7");
        assert!(v
            .body(TaxType::Gross)
            .contains(r#""amount":2.38,"taxAmount":0.16,"taxRatePercent":7"#));
        assert!(v
            .body(TaxType::Net)
            .contains(r#""amount":2.22,"taxAmount":0.16"#));
        assert_eq!(
            v.remark,
            format!("posbridge {}\nZahlungen: Bar=3.57", sale.id)
        );
    }

    #[test]
    fn negative_rates_become_a_credit_note_and_totals_still_add_up() {
        let mut c = Closure::from_sales(&[Sale::example()]).remove(0);
        c.taxes[0] = TaxLine {
            rate: dec!(7),
            net: dec!(-2.22),
            tax: dec!(-0.16),
            gross: dec!(-2.38),
        };
        c.payments[0].amount = dec!(-1.19);
        let p = plan(&Booking::from_closure(&c), &mapping(), "k1").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].voucher_type, p[0].number.as_str()),
            (VoucherType::SalesInvoice, "PB-k1")
        );
        assert_eq!(
            (p[1].voucher_type, p[1].number.as_str()),
            (VoucherType::SalesCreditNote, "PB-k1-G")
        );
        assert_eq!(p[0].total_gross() - p[1].total_gross(), dec!(-1.19));
        assert_eq!(p[1].items[0].gross, dec!(2.38));
    }

    #[test]
    fn a_cancellation_uses_its_kind_and_unmapped_keys_are_named() {
        let mut s = Sale::example();
        s.kind = SaleKind::Cancellation;
        s.cancels = Some("0".into());
        for t in &mut s.taxes {
            (t.net, t.tax, t.gross) = (-t.net, -t.tax, -t.gross);
        }
        s.payments[0].amount = -s.payments[0].amount;
        let p = plan(&Booking::from_sale(&s), &mapping(), "k").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].voucher_type, VoucherType::SalesCreditNote);
        assert_eq!(p[0].items[1].category_id, "c19-storno");
        assert_eq!(p[0].items[0].category_id, "c7");

        let mut s = Sale::example();
        s.taxes[1].rate = dec!(13);
        s.payments[0].method = "voucher".into();
        let reason = plan(&Booking::from_sale(&s), &mapping(), "k").unwrap_err();
        assert!(reason.contains("mapping.tax_rates.\"13\""), "{reason}");
        assert!(
            reason.contains("mapping.payment_methods.voucher"),
            "{reason}"
        );
        s.currency = "CHF".into();
        assert!(plan(&Booking::from_sale(&s), &mapping(), "k")
            .unwrap_err()
            .contains("EUR"));
    }

    #[test]
    fn training_receipts_book_nothing_and_summer_dates_carry_summer_time() {
        let mut s = Sale::example();
        s.kind = SaleKind::Training;
        assert!(plan(&Booking::from_sale(&s), &mapping(), "k")
            .unwrap()
            .is_empty());
        assert_eq!(
            voucher_date(NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()),
            "2025-07-01T00:00:00.000+02:00"
        );
    }
}
