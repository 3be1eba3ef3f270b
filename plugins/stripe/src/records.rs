//! Stripe objects → canonical PSP records. Amounts are integers in the currency's smallest
//! unit (see [`crate::amount`]); currencies come lower case and go out upper case (ISO 4217);
//! `created` is Unix seconds and goes out as UTC.

use chrono::{DateTime, FixedOffset};
use posbridge_plugin_api::model::{BalanceTransaction, Decimal, PspPayment, PspPayout, PspRefund};
use serde_json::Value;

use crate::amount::from_minor;
use crate::error::StripeError;

/// Reads the fields of one object of a list answer, naming it in errors.
struct Fields<'a> {
    obj: &'a Value,
    endpoint: &'a str,
    at: String,
}

impl<'a> Fields<'a> {
    fn new(obj: &'a Value, endpoint: &'a str) -> Self {
        let at = obj
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| "?".into(), str::to_string);
        Self { obj, endpoint, at }
    }

    fn bad(&self, field: &str, expected: &'static str) -> StripeError {
        StripeError::bad_field(self.endpoint, format!("{}.{field}", self.at), expected)
    }

    fn text(&self, field: &str) -> Result<String, StripeError> {
        self.opt_text(field)
            .ok_or_else(|| self.bad(field, "a string"))
    }

    fn opt_text(&self, field: &str) -> Option<String> {
        self.obj
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn int(&self, field: &str) -> Result<i64, StripeError> {
        self.obj
            .get(field)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.bad(field, "an integer"))
    }

    fn time(&self, field: &str) -> Result<DateTime<FixedOffset>, StripeError> {
        DateTime::from_timestamp(self.int(field)?, 0)
            .map(|t| t.fixed_offset())
            .ok_or_else(|| self.bad(field, "a Unix time"))
    }

    fn currency(&self) -> Result<String, StripeError> {
        Ok(self.text("currency")?.to_ascii_uppercase())
    }

    fn money(&self, field: &str, currency: &str) -> Result<Decimal, StripeError> {
        Ok(from_minor(self.int(field)?, currency))
    }

    /// The id of a field that is an id or an expanded object.
    fn id_of(&self, field: &str) -> Option<String> {
        match self.obj.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    fn sale_id(&self) -> Option<String> {
        self.obj
            .pointer("/metadata/sale_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

fn method_of_charge(charge: &Value) -> Option<String> {
    charge
        .pointer("/payment_method_details/type")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A PaymentIntent (with `latest_charge` expanded when available).
pub fn payment_from_intent(pi: &Value, endpoint: &str) -> Result<PspPayment, StripeError> {
    let f = Fields::new(pi, endpoint);
    let currency = f.currency()?;
    let charge = pi.get("latest_charge").filter(|c| c.is_object());
    let refunded = match charge.and_then(|c| c.get("amount_refunded")) {
        Some(v) => from_minor(
            v.as_i64()
                .ok_or_else(|| f.bad("latest_charge.amount_refunded", "an integer"))?,
            &currency,
        ),
        None => from_minor(0, &currency),
    };
    let method = charge.and_then(method_of_charge).or_else(|| {
        pi.pointer("/payment_method_types/0")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    Ok(PspPayment {
        id: f.text("id")?,
        amount: f.money("amount", &currency)?,
        status: f.text("status")?,
        created: f.time("created")?,
        amount_refunded: refunded,
        method,
        sale_id: f.sale_id(),
        description: f.opt_text("description"),
        currency,
    })
}

/// A Charge.
pub fn payment_from_charge(ch: &Value, endpoint: &str) -> Result<PspPayment, StripeError> {
    let f = Fields::new(ch, endpoint);
    let currency = f.currency()?;
    Ok(PspPayment {
        id: f.text("id")?,
        amount: f.money("amount", &currency)?,
        status: f.text("status")?,
        created: f.time("created")?,
        amount_refunded: f.money("amount_refunded", &currency)?,
        method: method_of_charge(ch),
        sale_id: f.sale_id(),
        description: f.opt_text("description"),
        currency,
    })
}

/// A Refund; `payment_id` is its PaymentIntent, else its Charge.
pub fn refund(re: &Value, endpoint: &str) -> Result<PspRefund, StripeError> {
    let f = Fields::new(re, endpoint);
    let currency = f.currency()?;
    let payment_id = f
        .id_of("payment_intent")
        .or_else(|| f.id_of("charge"))
        .ok_or_else(|| f.bad("payment_intent", "a PaymentIntent or Charge id"))?;
    Ok(PspRefund {
        id: f.text("id")?,
        payment_id,
        amount: f.money("amount", &currency)?,
        status: f.text("status")?,
        created: f.time("created")?,
        reason: f.opt_text("reason"),
        currency,
    })
}

/// A Payout.
pub fn payout(po: &Value, endpoint: &str) -> Result<PspPayout, StripeError> {
    let f = Fields::new(po, endpoint);
    let currency = f.currency()?;
    let arrival_date = match po.get("arrival_date") {
        None | Some(Value::Null) => None,
        Some(_) => Some(f.time("arrival_date")?),
    };
    Ok(PspPayout {
        id: f.text("id")?,
        amount: f.money("amount", &currency)?,
        status: f.text("status")?,
        created: f.time("created")?,
        arrival_date,
        currency,
    })
}

/// A BalanceTransaction (`net = amount - fee`, as Stripe keeps it).
pub fn balance_transaction(tx: &Value, endpoint: &str) -> Result<BalanceTransaction, StripeError> {
    let f = Fields::new(tx, endpoint);
    let currency = f.currency()?;
    Ok(BalanceTransaction {
        id: f.text("id")?,
        kind: f.text("type")?,
        amount: f.money("amount", &currency)?,
        fee: f.money("fee", &currency)?,
        net: f.money("net", &currency)?,
        created: f.time("created")?,
        source: f.id_of("source"),
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payment_intent_with_expanded_charge() {
        let pi = json!({
            "id": "pi_1", "object": "payment_intent", "amount": 1999, "currency": "eur",
            "status": "succeeded", "created": 1767225600, "description": "Bon 7",
            "metadata": {"sale_id": "demo:S1:R1:7"}, "payment_method_types": ["card"],
            "latest_charge": {"id": "ch_1", "amount_refunded": 500,
                              "payment_method_details": {"type": "card_present"}}
        });
        let p = payment_from_intent(&pi, "payment_intents").unwrap();
        assert_eq!(p.amount.to_string(), "19.99");
        assert_eq!(p.amount_refunded.to_string(), "5.00");
        assert_eq!(p.currency, "EUR");
        assert_eq!(p.method.as_deref(), Some("card_present"));
        assert_eq!(p.sale_id.as_deref(), Some("demo:S1:R1:7"));
        assert_eq!(p.created.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn zero_decimal_and_unexpanded_charge() {
        let pi = json!({"id": "pi_2", "amount": 500, "currency": "jpy", "status": "requires_payment_method",
                        "created": 1767225600, "latest_charge": "ch_2", "payment_method_types": ["card"]});
        let p = payment_from_intent(&pi, "payment_intents").unwrap();
        assert_eq!(
            (p.amount.to_string(), p.amount_refunded.to_string()),
            ("500".into(), "0".into())
        );
        assert_eq!(p.method.as_deref(), Some("card"));
    }

    #[test]
    fn refunds_payouts_and_balance_transactions() {
        let r = refund(
            &json!({"id": "re_1", "amount": 250, "currency": "usd", "status": "succeeded",
            "created": 1767225600, "charge": "ch_1", "payment_intent": "pi_1", "reason": null}),
            "refunds",
        )
        .unwrap();
        assert_eq!(
            (r.payment_id.as_str(), r.amount.to_string()),
            ("pi_1", "2.50".into())
        );
        let p = payout(
            &json!({"id": "po_1", "amount": 100000, "currency": "eur", "status": "paid",
            "created": 1767225600, "arrival_date": 1767312000}),
            "payouts",
        )
        .unwrap();
        assert_eq!(
            p.arrival_date.unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        let t = balance_transaction(
            &json!({"id": "txn_1", "type": "refund", "amount": -250, "fee": 0,
            "net": -250, "currency": "eur", "created": 1767225600, "source": "re_1"}),
            "balance_transactions",
        )
        .unwrap();
        assert_eq!(
            (t.kind.as_str(), t.net.to_string(), t.source.as_deref()),
            ("refund", "-2.50".into(), Some("re_1"))
        );
        let bad = refund(
            &json!({"id": "re_2", "amount": "x", "currency": "eur"}),
            "refunds",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("re_2.payment_intent"), "{bad}");
    }
}
