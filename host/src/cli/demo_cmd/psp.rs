//! The PSP step: stripe holds the card payments the POS terminals took; the demo takes one
//! more card payment and refunds part of it through the stripe plugin's actions, then reads
//! `payments`, `refunds` and `balance_transactions` back through the plugin.
//!
//! The stripe simulator is seeded as its doc page says: every card payment of a plain sale
//! becomes a succeeded PaymentIntent with `metadata.sale_id` (every seventh is half refunded
//! later, as customers do; those refunds show in the account checks, not in the POS rows).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use posbridge_plugin_api::model::{BalanceTransaction, Decimal, PspPayment, PspRefund, Sale};
use posbridge_plugin_api::ReadRequest;
use posbridge_sandbox::stripe::{StripeSimulator, DEFAULT_SECRET_KEY, DEFAULT_WEBHOOK_SECRET};
use posbridge_sandbox::{start, Faults};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::reconciliation::{add, Check, Measure, Sums};
use crate::pipeline::{BlockingPageLoop, Delivery};
use crate::plugins::{ConnectorHandle, OpenOptions, Registry};
use crate::runtime::CancelFlag;

/// The connector and simulator name.
pub const STRIPE: &str = "stripe";
/// The demo's own card payment and the part of it refunded (EUR).
pub const DEMO_PAYMENT: &str = "24.90";
const DEMO_REFUND: &str = "10.00";
const DEMO_CURRENCY: &str = "EUR";
/// The sale id the demo payment carries: no POS sale, so it stays out of the POS rows.
const DEMO_SALE_ID: &str = "posbridge-demo:card-payment";
/// Stripe's test card that succeeds.
const TEST_CARD: &str = "pm_card_visa";
/// Stripe's largest page.
const PAGE_SIZE: usize = 100;

/// What the PSP step found.
pub struct PspOutcome {
    /// Card charges per share of the POS sales (in the order given), on the business day of
    /// the sale each payment belongs to.
    pub card_charged: Vec<Sums>,
    /// The demo payment and the account, checked against the balance transactions.
    pub checks: Vec<Check>,
}

/// Runs the PSP step over the POS sales, given in shares (each sale in one).
pub fn run(reg: &Registry, pos: &[Vec<Sale>]) -> anyhow::Result<PspOutcome> {
    let all: Vec<Sale> = pos.iter().flatten().cloned().collect();
    let sim = Arc::new(StripeSimulator::new(
        DEFAULT_SECRET_KEY,
        DEFAULT_WEBHOOK_SECRET,
        &all,
    ));
    let sandbox =
        start(sim.clone(), 0, Faults::default()).context("cannot start the stripe simulator")?;
    println!(
        "{STRIPE} simulator on {}: {} card payments of the POS sales",
        sandbox.base_url,
        sim.payment_intents().len()
    );
    let handle = reg
        .open(
            STRIPE,
            &json!({"base_url": sandbox.base_url, "secret_key": DEFAULT_SECRET_KEY}),
            OpenOptions::default(),
        )
        .context("cannot open the stripe connector")?;

    let demo = take_and_refund(&handle)?;
    let payments: Vec<PspPayment> = read_all(&handle, "payments")?;
    let refunds: Vec<PspRefund> = read_all(&handle, "refunds")?;
    let txns: Vec<BalanceTransaction> = read_all(&handle, "balance_transactions")?;
    println!(
        "  read back through the plugin: {} payments, {} refunds, {} balance transactions",
        payments.len(),
        refunds.len(),
        txns.len()
    );

    let mut checks = demo_checks(&demo, &payments, &txns)?;
    checks.extend(account_checks(&payments, &refunds, &txns));
    Ok(PspOutcome {
        card_charged: card_charged(pos, &payments),
        checks,
    })
}

/// The demo's payment and refund as stripe answered them.
struct DemoPayment {
    payment_id: String,
    charge_id: String,
    refund_id: String,
    amount: Decimal,
    refunded: Decimal,
}

fn text(v: &Value, field: &str, action: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("{STRIPE} {action} answered no {field}: {v}"))
}

/// One card payment through `process_payment`, part of it refunded through `refund_payment`.
fn take_and_refund(handle: &ConnectorHandle) -> anyhow::Result<DemoPayment> {
    let paid = handle.action(
        "process_payment",
        &json!({
            "amount": DEMO_PAYMENT,
            "currency": DEMO_CURRENCY,
            "description": "posbridge demo: card payment",
            "sale_id": DEMO_SALE_ID,
            "payment_method": TEST_CARD,
        }),
    )?;
    let status = text(&paid, "status", "process_payment")?;
    anyhow::ensure!(
        status == "succeeded",
        "the demo card payment is {status}, not succeeded"
    );
    let payment_id = text(&paid, "id", "process_payment")?;
    let charge_id = text(&paid, "charge_id", "process_payment")?;
    let refunded = handle.action(
        "refund_payment",
        &json!({
            "payment_id": payment_id,
            "amount": DEMO_REFUND,
            "currency": DEMO_CURRENCY,
            "reason": "requested_by_customer",
            "reference": "posbridge-demo-refund",
        }),
    )?;
    let refund_id = text(&refunded, "id", "refund_payment")?;
    println!(
        "  demo card payment {payment_id}: {DEMO_PAYMENT} {DEMO_CURRENCY} charged, \
         {DEMO_REFUND} refunded ({refund_id})"
    );
    Ok(DemoPayment {
        payment_id,
        charge_id,
        refund_id,
        amount: DEMO_PAYMENT.parse()?,
        refunded: DEMO_REFUND.parse()?,
    })
}

/// Every record of a stream, page after page (through the one page loop), as canonical records.
fn read_all<T: DeserializeOwned>(handle: &ConnectorHandle, stream: &str) -> anyhow::Result<Vec<T>> {
    let request = ReadRequest {
        stream: stream.into(),
        cursor: None,
        page_size: PAGE_SIZE,
        from: None,
        to: None,
        ..Default::default()
    };
    let mut pages = BlockingPageLoop::new(
        handle.clone(),
        request,
        &Delivery::default(),
        CancelFlag::new(),
    )?;
    let mut out = Vec::new();
    while let Some(page) = pages.next_page()? {
        for r in page.records {
            out.push(
                serde_json::from_value(r)
                    .with_context(|| format!("{STRIPE} {stream}: not a canonical record"))?,
            );
        }
    }
    Ok(out)
}

/// Card charges per share of the POS sales and business day, found through each payment's
/// `sale_id`.
fn card_charged(pos: &[Vec<Sale>], payments: &[PspPayment]) -> Vec<Sums> {
    let sale_day: BTreeMap<&str, (usize, NaiveDate)> = pos
        .iter()
        .enumerate()
        .flat_map(|(i, sales)| {
            sales
                .iter()
                .map(move |s| (s.id.as_str(), (i, s.business_day)))
        })
        .collect();
    let mut out = vec![Sums::new(); pos.len()];
    for p in payments.iter().filter(|p| p.status == "succeeded") {
        if let Some((i, day)) = p.sale_id.as_deref().and_then(|id| sale_day.get(id)) {
            add(
                &mut out[*i],
                *day,
                &p.currency,
                Measure::CardCharged,
                p.amount,
            );
        }
    }
    out
}

/// The demo payment: charge − refund = net movement on the balance, net = movement − fees.
fn demo_checks(
    demo: &DemoPayment,
    payments: &[PspPayment],
    txns: &[BalanceTransaction],
) -> anyhow::Result<Vec<Check>> {
    let txn_of = |source: &str| {
        txns.iter()
            .find(|t| t.source.as_deref() == Some(source))
            .with_context(|| format!("{STRIPE}: no balance transaction for {source}"))
    };
    let charge = txn_of(&demo.charge_id)?;
    let refund = txn_of(&demo.refund_id)?;
    let payment = payments
        .iter()
        .find(|p| p.id == demo.payment_id)
        .with_context(|| format!("{STRIPE}: payment {} not read back", demo.payment_id))?;
    let fees = charge.fee + refund.fee;
    let movement = demo.amount - demo.refunded;
    let check = |what: String, expected, found| Check {
        what,
        expected,
        found,
    };
    Ok(vec![
        check(
            "demo payment: charged (balance transaction)".into(),
            demo.amount,
            charge.amount,
        ),
        check(
            "demo payment: refunded (payment read back)".into(),
            demo.refunded,
            payment.amount_refunded,
        ),
        check(
            "demo payment: refund (balance transaction)".into(),
            -demo.refunded,
            refund.amount,
        ),
        check(
            "demo payment: net movement = charge - refund".into(),
            movement,
            charge.amount + refund.amount,
        ),
        check(
            format!("demo payment: net after stripe's fees of {fees}"),
            movement - fees,
            charge.net + refund.net,
        ),
    ])
}

/// The whole account per currency: the balance transactions against the payments and refunds
/// read, and `net = amount - fee` summed.
fn account_checks(
    payments: &[PspPayment],
    refunds: &[PspRefund],
    txns: &[BalanceTransaction],
) -> Vec<Check> {
    #[derive(Default)]
    struct Totals {
        paid: Decimal,
        refunded: Decimal,
        charge_txns: Decimal,
        refund_txns: Decimal,
        amount: Decimal,
        fee: Decimal,
        net: Decimal,
    }
    let mut per_currency: BTreeMap<&str, Totals> = BTreeMap::new();
    for p in payments.iter().filter(|p| p.status == "succeeded") {
        per_currency.entry(&p.currency).or_default().paid += p.amount;
    }
    for r in refunds.iter().filter(|r| r.status == "succeeded") {
        per_currency.entry(&r.currency).or_default().refunded += r.amount;
    }
    for t in txns {
        let e = per_currency.entry(&t.currency).or_default();
        match t.kind.as_str() {
            "charge" | "payment" => e.charge_txns += t.amount,
            "refund" | "payment_refund" => e.refund_txns += t.amount,
            _ => {}
        }
        e.amount += t.amount;
        e.fee += t.fee;
        e.net += t.net;
    }
    let mut out = Vec::new();
    for (cur, t) in per_currency {
        out.push(Check {
            what: format!("account {cur}: charges = payments read"),
            expected: t.paid,
            found: t.charge_txns,
        });
        out.push(Check {
            what: format!("account {cur}: refunds = refunds read"),
            expected: -t.refunded,
            found: t.refund_txns,
        });
        out.push(Check {
            what: format!(
                "account {cur}: net = movement {} - fees {}",
                t.amount, t.fee
            ),
            expected: t.amount - t.fee,
            found: t.net,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn txn(id: &str, kind: &str, amount: i64, fee: i64, source: &str) -> BalanceTransaction {
        BalanceTransaction {
            id: id.into(),
            kind: kind.into(),
            amount: Decimal::new(amount, 2),
            fee: Decimal::new(fee, 2),
            net: Decimal::new(amount - fee, 2),
            currency: "EUR".into(),
            created: DateTime::parse_from_rfc3339("2025-01-06T10:00:00+00:00").unwrap(),
            source: Some(source.into()),
        }
    }

    fn payment(id: &str, amount: i64, refunded: i64, sale_id: &str) -> PspPayment {
        PspPayment {
            id: id.into(),
            amount: Decimal::new(amount, 2),
            currency: "EUR".into(),
            status: "succeeded".into(),
            created: DateTime::parse_from_rfc3339("2025-01-06T10:00:00+00:00").unwrap(),
            amount_refunded: Decimal::new(refunded, 2),
            method: Some("card".into()),
            sale_id: Some(sale_id.into()),
            description: None,
        }
    }

    #[test]
    fn the_demo_payment_reconciles_with_its_balance_transactions() {
        let demo = DemoPayment {
            payment_id: "pi_1".into(),
            charge_id: "ch_1".into(),
            refund_id: "re_1".into(),
            amount: Decimal::new(2490, 2),
            refunded: Decimal::new(1000, 2),
        };
        let payments = [payment("pi_1", 2490, 1000, DEMO_SALE_ID)];
        let txns = [
            txn("t1", "charge", 2490, 60, "ch_1"),
            txn("t2", "refund", -1000, 0, "re_1"),
        ];
        let checks = demo_checks(&demo, &payments, &txns).unwrap();
        assert_eq!(checks.len(), 5);
        assert!(checks.iter().all(Check::matches), "{checks:?}");
        assert_eq!(checks[3].found, Decimal::new(1490, 2));
        assert_eq!(checks[4].expected, Decimal::new(1430, 2));

        let short = [txns[0].clone(), txn("t2", "refund", -900, 0, "re_1")];
        let checks = demo_checks(&demo, &payments, &short).unwrap();
        assert_eq!(checks.iter().filter(|c| !c.matches()).count(), 3);
    }

    #[test]
    fn card_charges_land_on_the_share_and_day_of_their_sale() {
        let sale = Sale::example();
        let mut other = Sale::example();
        other.id.push_str("-2");
        let pos = [vec![other], vec![sale.clone()]];
        let payments = [
            payment("pi_1", 500, 0, &sale.id),
            payment("pi_2", 2490, 0, DEMO_SALE_ID),
        ];
        let sums = card_charged(&pos, &payments);
        let key = (sale.business_day, "EUR".to_string(), Measure::CardCharged);
        assert_eq!(sums[1][&key], Decimal::new(500, 2));
        assert_eq!(sums[1].len(), 1, "the demo payment is no POS sale");
        assert!(sums[0].is_empty(), "no payment of the other share");
    }

    #[test]
    fn the_account_checks_find_a_missing_refund_transaction() {
        let payments = [payment("pi_1", 2490, 1000, "x")];
        let refund = PspRefund {
            id: "re_1".into(),
            payment_id: "pi_1".into(),
            amount: Decimal::new(1000, 2),
            currency: "EUR".into(),
            status: "succeeded".into(),
            created: DateTime::parse_from_rfc3339("2025-01-06T10:00:00+00:00").unwrap(),
            reason: None,
        };
        let txns = [txn("t1", "charge", 2490, 60, "ch_1")];
        let checks = account_checks(&payments, &[refund], &txns);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.matches())
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(failed, ["account EUR: refunds = refunds read"]);
    }
}
