//! What one voucher books: positions per tax rate, payments per check account, built from a
//! canonical sale (`per_sale`) or a daily closure (`daily_summary`) and the mapping.
//!
//! Every voucher is revenue (`creditDebit: D`, "you sold something") under a revenue tax rule.
//! Refunds and cancellations, and days whose credits outweigh their sales, are credit notes on
//! the revenue side: the same kind of voucher with negative sums, never an expense voucher
//! (`C`, "you bought something").

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone};
use posbridge_plugin_api::model::{Closure, Decimal, Sale, SaleKind};

use crate::config::{Config, VoucherStatus};
use crate::mapping::{allowed_rates, rate_key, Mapping};

/// The marker before the idempotency key in a voucher's description; the lookup searches it.
pub const KEY_MARKER: &str = "PB-";

/// One voucher position: the gross (and the source's net) of one tax rate on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub account_datev: u64,
    pub rate: Decimal,
    pub net: Decimal,
    pub gross: Decimal,
}

/// One payment booked on a check account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentBooking {
    pub check_account: u64,
    pub amount: Decimal,
}

/// Whom a voucher is addressed to: the spec wants "either the supplier object or a
/// supplierName" on every voucher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counterparty {
    /// `supplierName`: the sale's customer, or the configured name of the register.
    Name(String),
    /// `supplier`: a sevDesk contact (`counterparty_contact_id`).
    Contact(u64),
}

impl Counterparty {
    /// The configured counterparty of a register's vouchers without a named customer.
    fn of_register(cfg: &Config, store: &str, register: &str) -> Self {
        match cfg.counterparty_contact_id {
            Some(id) => Self::Contact(id),
            None => Self::Name(cfg.counterparty_name_for(store, register)),
        }
    }
}

/// Everything a voucher and its payments carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// Description: a readable reference plus `PB-{idempotency key}`.
    pub description: String,
    pub date: DateTime<FixedOffset>,
    pub currency: String,
    pub tax_rule: u64,
    pub accounting_type: u64,
    pub cost_centre: Option<u64>,
    pub counterparty: Counterparty,
    /// Signed as revenue: negative for refunds, cancellations and a day of credits.
    pub positions: Vec<Position>,
    pub payments: Vec<PaymentBooking>,
}

impl Booking {
    /// The gross total of the voucher.
    pub fn gross(&self) -> Decimal {
        self.positions.iter().map(|p| p.gross).sum()
    }
}

/// The description of a voucher with this key.
pub fn description(reference: &str, key: &str) -> String {
    format!("{reference} {KEY_MARKER}{key}")
}

/// Whether payments are booked: sevDesk books open vouchers only.
fn books_payments(cfg: &Config) -> bool {
    cfg.voucher_status == VoucherStatus::Open
}

/// A booking for one sale; `Ok(None)` for receipts that are no revenue (training, null receipts).
pub fn from_sale(
    sale: &Sale,
    key: &str,
    mapping: &Mapping,
    cfg: &Config,
) -> Result<Option<Booking>, String> {
    if !sale.kind.is_revenue() {
        return Ok(None);
    }
    let refund = matches!(sale.kind, SaleKind::Refund | SaleKind::Cancellation);
    let mut per_rate: BTreeMap<Decimal, (Decimal, Decimal)> = BTreeMap::new();
    for t in &sale.taxes {
        let e = per_rate.entry(t.rate.normalize()).or_default();
        e.0 += t.net;
        e.1 += t.gross;
    }
    let mut positions = Vec::new();
    for (rate, (net, gross)) in per_rate {
        let account = if refund {
            mapping.refund_account(sale.kind, rate)?
        } else {
            mapping.revenue_account(rate)?
        };
        // Refunds keep their negative amounts: negative revenue on the refund accounts.
        positions.push(Position {
            account_datev: account,
            rate,
            net,
            gross,
        });
    }
    let payments = if books_payments(cfg) {
        payment_bookings(
            sale.payments.iter().map(|p| (p.method.as_str(), p.amount)),
            mapping,
        )?
    } else {
        Vec::new()
    };
    let reference = format!(
        "{} {}/{}/{}",
        if refund {
            "Storno/Erstattung"
        } else {
            "Kassenbon"
        },
        sale.store_id,
        sale.register_id,
        sale.receipt_number
    );
    finish(Booking {
        description: description(&reference, key),
        date: sale.timestamp,
        currency: sale.currency.clone(),
        tax_rule: mapping.tax_rule()?,
        accounting_type: mapping.accounting_type()?,
        cost_centre: mapping.cost_centre(&sale.store_id, &sale.register_id)?,
        counterparty: match sale.customer.as_ref().and_then(|c| c.name.as_deref()) {
            Some(name) if !name.trim().is_empty() => Counterparty::Name(name.trim().to_string()),
            _ => Counterparty::of_register(cfg, &sale.store_id, &sale.register_id),
        },
        positions,
        payments,
    })
    .map(Some)
}

/// A booking for one daily closure. Negative parts (a rate or a payment method whose refunds
/// outweigh the sales, or a whole day of credits) stay negative positions or payment bookings
/// on a revenue voucher, so the voucher sums exactly what the sales sum.
pub fn from_closure(
    closure: &Closure,
    key: &str,
    mapping: &Mapping,
    cfg: &Config,
) -> Result<Booking, String> {
    let mut positions = Vec::new();
    for t in &closure.taxes {
        positions.push(Position {
            account_datev: mapping.revenue_account(t.rate)?,
            rate: t.rate.normalize(),
            net: t.net,
            gross: t.gross,
        });
    }
    let payments = if books_payments(cfg) {
        payment_bookings(
            closure
                .payments
                .iter()
                .map(|p| (p.method.as_str(), p.amount)),
            mapping,
        )?
    } else {
        Vec::new()
    };
    let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default();
    let date = FixedOffset::east_opt(0)
        .and_then(|utc| {
            utc.from_local_datetime(&closure.business_day.and_time(noon))
                .single()
        })
        .ok_or_else(|| format!("business day {} has no date-time", closure.business_day))?;
    // A day's refunds and cancellations come as a closure of their own (kind `credits`),
    // booked as a voucher of their own: say so in the text the accountant sees.
    let title = match closure.kind {
        posbridge_plugin_api::model::ClosureKind::Credits => "Tagesabschluss Gutschriften",
        posbridge_plugin_api::model::ClosureKind::Sales => "Tagesabschluss",
    };
    let reference = format!(
        "{title} {}/{} {}",
        closure.store_id,
        closure.register_id,
        day_text(closure.business_day)
    );
    finish(Booking {
        description: description(&reference, key),
        date,
        currency: closure.currency.clone(),
        tax_rule: mapping.tax_rule()?,
        accounting_type: mapping.accounting_type()?,
        cost_centre: mapping.cost_centre(&closure.store_id, &closure.register_id)?,
        counterparty: Counterparty::of_register(cfg, &closure.store_id, &closure.register_id),
        positions,
        payments,
    })
}

fn day_text(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// Payments summed per check account (two methods may share one), zero sums left out.
fn payment_bookings<'a>(
    payments: impl Iterator<Item = (&'a str, Decimal)>,
    mapping: &Mapping,
) -> Result<Vec<PaymentBooking>, String> {
    let mut per_account: BTreeMap<u64, Decimal> = BTreeMap::new();
    for (method, amount) in payments {
        *per_account
            .entry(mapping.check_account(method)?)
            .or_default() += amount;
    }
    Ok(per_account
        .into_iter()
        .filter(|(_, a)| !a.is_zero())
        .map(|(check_account, amount)| PaymentBooking {
            check_account,
            amount,
        })
        .collect())
}

/// Checks what sevDesk would refuse: a rule that cannot book revenue in a voucher, rates the
/// tax rule does not allow, an empty voucher.
fn finish(b: Booking) -> Result<Booking, String> {
    let allowed = allowed_rates(b.tax_rule)?;
    for p in &b.positions {
        if !allowed.iter().any(|r| Decimal::from(*r) == p.rate) {
            return Err(format!(
                "sevDesk's taxRule {} does not allow tax rate {} % (allowed: {:?})",
                b.tax_rule,
                rate_key(p.rate),
                allowed
            ));
        }
    }
    if b.positions.is_empty() {
        return Err("nothing to book: the record has no tax breakdown".into());
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::model::{Customer, PaymentTotal, TaxLine};
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn mapping() -> serde_json::Value {
        json!({
            "accounting_type": 26,
            "tax_rates": {"19": 8400, "7": 8300},
            "payment_methods": {"cash": 1, "card": 2, "voucher": 2},
            "refund_kinds": {"refund": {"19": 8700, "7": 8710}, "cancellation": {"19": 8400, "7": 8300}},
        })
    }

    fn config(extra: serde_json::Value) -> Config {
        let mut c = json!({"api_token": "t"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            c[k] = v;
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn a_sale_books_its_rates_and_payments() {
        let raw = mapping();
        let m = Mapping::new(&raw);
        let sale = Sale::example();
        let b = from_sale(&sale, "k1", &m, &config(json!({})))
            .unwrap()
            .unwrap();
        assert_eq!(b.gross(), sale.totals.gross);
        assert_eq!(b.positions.len(), 2);
        assert_eq!(b.positions[0].rate, dec!(7));
        assert_eq!(b.positions[0].account_datev, 8300);
        assert_eq!(
            b.payments,
            vec![PaymentBooking {
                check_account: 1,
                amount: sale.totals.gross
            }]
        );
        assert!(b.description.ends_with("PB-k1"), "{}", b.description);
    }

    #[test]
    fn every_voucher_has_a_counterparty() {
        let raw = mapping();
        let m = Mapping::new(&raw);
        let mut sale = Sale::example();
        sale.customer = None;
        let b = |sale: &Sale, cfg: &Config| from_sale(sale, "k", &m, cfg).unwrap().unwrap();
        let register = Counterparty::Name(format!("Kasse {}/{}", sale.store_id, sale.register_id));
        assert_eq!(b(&sale, &config(json!({}))).counterparty, register);
        let fixed = config(json!({"counterparty_name": "Barverkauf"}));
        assert_eq!(
            b(&sale, &fixed).counterparty,
            Counterparty::Name("Barverkauf".into())
        );
        let contact = config(json!({"counterparty_contact_id": 77}));
        assert_eq!(b(&sale, &contact).counterparty, Counterparty::Contact(77));
        // A customer without a name counts as none; a named one is the counterparty.
        sale.customer = Some(Customer {
            id: Some("c1".into()),
            name: Some(" ".into()),
            external_id: None,
            phone: None,
        });
        assert_eq!(b(&sale, &config(json!({}))).counterparty, register);
        sale.customer.as_mut().unwrap().name = Some("Erika Mustermann".into());
        assert_eq!(
            b(&sale, &contact).counterparty,
            Counterparty::Name("Erika Mustermann".into())
        );
        let c = Closure::from_sales(&[Sale::example()]).remove(0);
        let closure = from_closure(&c, "k", &m, &config(json!({}))).unwrap();
        assert_eq!(
            closure.counterparty,
            Counterparty::Name(format!("Kasse {}/{}", c.store_id, c.register_id))
        );
        assert_eq!(
            from_closure(&c, "k", &m, &contact).unwrap().counterparty,
            Counterparty::Contact(77)
        );
    }

    #[test]
    fn a_refund_is_negative_revenue_on_the_refund_accounts() {
        let raw = mapping();
        let m = Mapping::new(&raw);
        for kind in [SaleKind::Refund, SaleKind::Cancellation] {
            let mut sale = Sale::example();
            sale.kind = kind;
            for t in &mut sale.taxes {
                t.net = -t.net;
                t.gross = -t.gross;
            }
            for p in &mut sale.payments {
                p.amount = -p.amount;
            }
            let b = from_sale(&sale, "k", &m, &config(json!({})))
                .unwrap()
                .unwrap();
            assert_eq!(b.gross(), dec!(-3.57), "{kind:?}");
            assert_eq!(b.tax_rule, 1, "a revenue rule");
            let account = if kind == SaleKind::Refund { 8700 } else { 8400 };
            assert_eq!(b.positions[1].account_datev, account);
            assert_eq!(b.payments[0].amount, dec!(-3.57), "money paid out");
            assert!(b.description.starts_with("Storno/Erstattung"));
        }
    }

    #[test]
    fn unmapped_rates_and_rules_are_named() {
        let raw = mapping();
        let m = Mapping::new(&raw);
        let cfg = config(json!({}));
        let mut sale = Sale::example();
        sale.taxes[1].rate = dec!(13);
        let err = from_sale(&sale, "k", &m, &cfg).unwrap_err();
        assert_eq!(
            err,
            "no mapping for tax rate 13 % (mapping.tax_rates.\"13\")"
        );
        let mut raw = mapping();
        raw["tax_rates"]["10"] = json!(8410);
        sale.taxes[1].rate = dec!(10);
        let err = from_sale(&sale, "k", &Mapping::new(&raw), &cfg).unwrap_err();
        assert!(err.contains("does not allow tax rate 10 %"), "{err}");
        // An expense rule cannot book revenue, nor refunds of it.
        let mut expense = mapping();
        expense["tax_rule"] = json!(9);
        let err = from_sale(&Sale::example(), "k", &Mapping::new(&expense), &cfg).unwrap_err();
        assert!(err.contains("taxRule 9 is an expense rule"), "{err}");
        let mut training = Sale::example();
        training.kind = SaleKind::Training;
        assert_eq!(from_sale(&training, "k", &m, &cfg), Ok(None));
    }

    #[test]
    fn a_closure_keeps_negative_parts_and_a_negative_day_stays_revenue() {
        let raw = mapping();
        let m = Mapping::new(&raw);
        let mut c = Closure::from_sales(&[Sale::example()]).remove(0);
        c.taxes[0] = TaxLine {
            rate: dec!(7),
            net: dec!(-1.00),
            tax: dec!(-0.07),
            gross: dec!(-1.07),
        };
        c.payments = vec![
            PaymentTotal {
                method: "cash".into(),
                amount: dec!(-0.50),
            },
            PaymentTotal {
                method: "card".into(),
                amount: dec!(0.62),
            },
        ];
        let b = from_closure(&c, "k", &m, &config(json!({}))).unwrap();
        assert_eq!(b.gross(), dec!(0.12));
        assert_eq!(
            b.payments.iter().map(|p| p.amount).sum::<Decimal>(),
            dec!(0.12)
        );
        assert_eq!(b.date.to_rfc3339(), "2026-02-01T12:00:00+00:00");
        c.taxes[1].gross = dec!(-1.00);
        c.taxes[1].net = dec!(-0.84);
        c.totals.gross = dec!(-2.07);
        let draft = config(json!({"voucher_status": "draft"}));
        let negative = from_closure(&c, "k", &m, &draft).unwrap();
        assert_eq!(negative.gross(), dec!(-2.07));
        assert!(negative.payments.is_empty(), "drafts book no payments");
    }
}
