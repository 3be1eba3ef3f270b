//! The actions: `process_payment` (create and confirm a PaymentIntent), `refund_payment`
//! (create a Refund) — each sent with an `Idempotency-Key` — and `verify_webhook`.

use std::collections::BTreeMap;

use posbridge_plugin_api::model::{decimal_from_json, Decimal};
use posbridge_plugin_api::ConnectorError;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::amount::to_minor;
use crate::client::{Client, Form};
use crate::error::StripeError;
use crate::records;
use crate::webhook;

/// Input of `process_payment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentInput {
    /// Decimal string (or JSON number) in the currency's main unit, e.g. `"12.34"`.
    amount: Value,
    /// ISO 4217 code, any case.
    currency: String,
    #[serde(default)]
    description: Option<String>,
    /// Stored as `metadata[sale_id]` and read back as `PspPayment::sale_id`.
    #[serde(default)]
    sale_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// A PaymentMethod id; else the config's `default_payment_method`.
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Input of `refund_payment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundInput {
    /// A PaymentIntent (`pi_…`) or Charge (`ch_…`/`py_…`) id.
    payment_id: String,
    /// Omitted: whatever remains of the payment.
    #[serde(default)]
    amount: Option<Value>,
    /// When given, must be the payment's currency.
    #[serde(default)]
    currency: Option<String>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default)]
    reason: Option<String>,
    /// Tells apart refunds of the same amount on the same payment (e.g. the refund receipt's id);
    /// stored as `metadata[reference]` and part of the default idempotency key.
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Input of `verify_webhook`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookInput {
    /// The raw request body, exactly as received.
    payload: String,
    /// The `Stripe-Signature` header value.
    #[serde(default)]
    signature_header: Option<String>,
    /// Overrides the config's `webhook_secret`.
    #[serde(default)]
    secret: Option<String>,
}

fn input<T: for<'de> Deserialize<'de>>(action: &str, v: Value) -> Result<T, StripeError> {
    serde_json::from_value(v).map_err(|e| StripeError::Input(format!("{action}: bad input: {e}")))
}

fn decimal(action: &str, field: &str, v: &Value) -> Result<Decimal, StripeError> {
    decimal_from_json(v)
        .ok_or_else(|| StripeError::Input(format!("{action}: {field} {v} is not a decimal amount")))
}

fn minor(action: &str, amount: Decimal, currency: &str) -> Result<i64, StripeError> {
    if amount <= Decimal::ZERO {
        return Err(StripeError::Input(format!(
            "{action}: amount {amount} must be positive"
        )));
    }
    to_minor(amount, currency).map_err(|e| StripeError::Input(format!("{action}: {e}")))
}

/// A key derived from what the request means, so that repeating the same call (e.g. after a
/// dropped connection) reuses the key and Stripe acts once.
fn derived_key(action: &str, meaning: &Value) -> String {
    let digest = Sha256::digest(meaning.to_string().as_bytes());
    format!("posbridge-{action}-{}", &hex::encode(digest)[..40])
}

fn metadata_fields(form: &mut Form, metadata: &BTreeMap<String, String>) {
    for (k, v) in metadata {
        form.push((format!("metadata[{k}]"), v.clone()));
    }
}

/// `process_payment`.
pub fn process_payment(client: &Client, raw: Value) -> Result<Value, StripeError> {
    const ACTION: &str = "process_payment";
    let inp: PaymentInput = input(ACTION, raw)?;
    let currency = inp.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(StripeError::Input(format!(
            "{ACTION}: currency {:?} is not an ISO 4217 code",
            inp.currency
        )));
    }
    let amount = decimal(ACTION, "amount", &inp.amount)?;
    let amount_minor = minor(ACTION, amount, &currency)?;
    let payment_method = inp
        .payment_method
        .clone()
        .or_else(|| client.config().default_payment_method.clone())
        .ok_or_else(|| {
            StripeError::Input(format!(
                "{ACTION}: no payment_method given and no default_payment_method configured"
            ))
        })?;
    let mut metadata = inp.metadata.clone();
    if let Some(s) = &inp.sale_id {
        metadata.insert("sale_id".into(), s.clone());
    }
    let key = inp.idempotency_key.clone().unwrap_or_else(|| {
        derived_key(
            "payment",
            &json!({
                "amount": amount_minor, "currency": currency, "description": inp.description,
                "metadata": metadata, "payment_method": payment_method,
            }),
        )
    });

    let mut form: Form = vec![
        ("amount".into(), amount_minor.to_string()),
        // Stripe wants lower-case currency codes.
        ("currency".into(), currency.to_ascii_lowercase()),
        ("payment_method".into(), payment_method),
        ("confirm".into(), "true".into()),
        ("automatic_payment_methods[enabled]".into(), "true".into()),
        // A POS confirms server-side: no redirecting method, so no return_url is needed.
        (
            "automatic_payment_methods[allow_redirects]".into(),
            "never".into(),
        ),
        ("expand[]".into(), "latest_charge".into()),
    ];
    if let Some(d) = &inp.description {
        form.push(("description".into(), d.clone()));
    }
    metadata_fields(&mut form, &metadata);
    let reply = client.post_idempotent("payment_intents", &form, &key, "payment_intents")?;
    let payment = records::payment_from_intent(&reply.body, "payment_intents")?;
    Ok(json!({
        "id": payment.id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "charge_id": reply.body.get("latest_charge").and_then(|c| c.get("id").or(Some(c))).cloned(),
        "idempotency_key": key,
        "replayed": reply.replayed,
        "payment": serde_json::to_value(&payment).unwrap_or(Value::Null),
    }))
}

/// `refund_payment`.
pub fn refund_payment(client: &Client, raw: Value) -> Result<Value, StripeError> {
    const ACTION: &str = "refund_payment";
    let inp: RefundInput = input(ACTION, raw)?;
    let id = inp.payment_id.trim().to_string();
    let is_intent = id.starts_with("pi_");
    if !(is_intent || id.starts_with("ch_") || id.starts_with("py_")) {
        return Err(StripeError::Input(format!(
            "{ACTION}: payment_id {id:?} is neither a PaymentIntent (pi_…) nor a Charge (ch_…, py_…)"
        )));
    }
    let amount_minor = match &inp.amount {
        None => None,
        Some(v) => {
            let amount = decimal(ACTION, "amount", v)?;
            // The payment's currency decides the scale of the integer amount.
            let path = if is_intent {
                "payment_intents"
            } else {
                "charges"
            };
            let payment = client.get(&format!("{path}/{id}"), &Vec::new(), path)?;
            let currency = payment
                .get("currency")
                .and_then(Value::as_str)
                .ok_or_else(|| StripeError::bad_field(path, format!("{id}.currency"), "a string"))?
                .to_ascii_uppercase();
            if let Some(c) = &inp.currency {
                if !c.trim().eq_ignore_ascii_case(&currency) {
                    return Err(StripeError::Input(format!(
                        "{ACTION}: currency {c} differs from the payment's {currency}"
                    )));
                }
            }
            Some(minor(ACTION, amount, &currency)?)
        }
    };
    let mut metadata = inp.metadata.clone();
    if let Some(r) = &inp.reference {
        metadata.insert("reference".into(), r.clone());
    }
    let key = inp.idempotency_key.clone().unwrap_or_else(|| {
        derived_key(
            "refund",
            &json!({"payment": id, "amount": amount_minor, "reason": inp.reason, "metadata": metadata}),
        )
    });
    let mut form: Form = vec![(
        if is_intent {
            "payment_intent"
        } else {
            "charge"
        }
        .into(),
        id.clone(),
    )];
    if let Some(a) = amount_minor {
        form.push(("amount".into(), a.to_string()));
    }
    if let Some(r) = &inp.reason {
        form.push(("reason".into(), r.clone()));
    }
    metadata_fields(&mut form, &metadata);
    let reply = client.post_idempotent("refunds", &form, &key, "refunds")?;
    let refund = records::refund(&reply.body, "refunds")?;
    Ok(json!({
        "id": refund.id,
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "payment_id": refund.payment_id,
        "idempotency_key": key,
        "replayed": reply.replayed,
        "refund": serde_json::to_value(&refund).unwrap_or(Value::Null),
    }))
}

/// `verify_webhook`: the event JSON, or a `Permanent` error saying why it is refused.
pub fn verify_webhook(client: &Client, raw: Value) -> Result<Value, ConnectorError> {
    let inp: WebhookInput = input("verify_webhook", raw)?;
    let secret = inp
        .secret
        .or_else(|| client.config().webhook_secret.clone())
        .unwrap_or_default();
    let now = client.host().now_millis().div_euclid(1000);
    webhook::verify(
        &inp.payload,
        inp.signature_header.as_deref().unwrap_or(""),
        &secret,
        now,
    )
    .map_err(|e| ConnectorError::Permanent(format!("stripe: webhook refused: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_depend_on_the_meaning_only() {
        let a = derived_key("payment", &json!({"amount": 1999, "currency": "EUR"}));
        let b = derived_key("payment", &json!({"amount": 1999, "currency": "EUR"}));
        let c = derived_key("payment", &json!({"amount": 2000, "currency": "EUR"}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("posbridge-payment-") && a.len() <= 255);
    }

    #[test]
    fn amounts_must_be_positive_and_exact() {
        assert!(minor("x", Decimal::new(-1, 0), "EUR").is_err());
        assert!(minor("x", Decimal::new(12345, 3), "EUR").is_err());
        assert_eq!(minor("x", Decimal::new(1234, 2), "EUR").unwrap(), 1234);
    }
}
