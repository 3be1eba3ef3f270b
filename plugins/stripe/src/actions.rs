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
    /// Stored as `metadata[sale_id]` and read back as `PspPayment::sale_id`. Without an
    /// `idempotency_key`, the key is derived from it (one payment per sale and content).
    #[serde(default)]
    sale_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// A PaymentMethod id; else the config's `default_payment_method`.
    #[serde(default)]
    payment_method: Option<String>,
    /// Names this payment: a repeat of the call with the same key charges once; two payments
    /// need two keys. Required unless `sale_id` is given.
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
    /// stored as `metadata[reference]` and part of the derived idempotency key.
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// Names this refund. A partial refund (with `amount`) needs it or a `reference`.
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

/// A caller's key, as Stripe accepts it (1 to 255 characters).
fn explicit_key(action: &str, key: &str) -> Result<String, StripeError> {
    let key = key.trim();
    if key.is_empty() || key.len() > 255 {
        return Err(StripeError::Input(format!(
            "{action}: idempotency_key must have 1 to 255 characters"
        )));
    }
    Ok(key.to_string())
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
    // A key derived from the content alone would make two real, identical payments (two
    // customers paying 4.50 EUR) one charge: the caller names the payment, or its sale does.
    let key = match (&inp.idempotency_key, &inp.sale_id) {
        (Some(k), _) => explicit_key(ACTION, k)?,
        (None, Some(_)) => derived_key(
            "payment",
            &json!({
                "amount": amount_minor, "currency": currency, "description": inp.description,
                "metadata": metadata, "payment_method": payment_method,
            }),
        ),
        (None, None) => {
            return Err(StripeError::Input(format!(
                "{ACTION}: idempotency_key (or sale_id) is required: it tells a repeated call, charged once, from a second payment of the same amount"
            )))
        }
    };

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
    // A full refund happens once per payment; partial ones are told apart by the caller.
    let key = match (&inp.idempotency_key, &inp.reference, amount_minor) {
        (Some(k), _, _) => explicit_key(ACTION, k)?,
        (None, Some(_), _) | (None, None, None) => derived_key(
            "refund",
            &json!({"payment": id, "amount": amount_minor, "reason": inp.reason, "metadata": metadata}),
        ),
        (None, None, Some(_)) => {
            return Err(StripeError::Input(format!(
                "{ACTION}: a partial refund needs idempotency_key (or reference): it tells a repeated call, refunded once, from a second refund of the same amount"
            )))
        }
    };
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
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::Config;
    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use posbridge_plugin_api::HttpResponse;

    /// A Stripe answering every POST with a new succeeded PaymentIntent or Refund, after
    /// `failures` scripted answers (each a 503 or a 429 with `Retry-After: 3`).
    fn stripe(failures: Vec<u16>) -> FakeHost {
        let failures = Arc::new(Mutex::new(failures));
        FakeHost::with_vendor(move |req| {
            if let Some(status) = failures.lock().unwrap().pop() {
                return Ok(HttpResponse {
                    status,
                    headers: vec![("Retry-After".into(), "3".into())],
                    body: br#"{"error":{"type":"api_error","message":"try later"}}"#.to_vec(),
                });
            }
            let n = req.body.len();
            if req.url.ends_with("/v1/refunds") {
                return Ok(json_response(
                    200,
                    &json!({"id": format!("re_{n}"), "object": "refund",
                    "amount": 100, "currency": "eur", "status": "succeeded", "created": 1,
                    "payment_intent": "pi_1"}),
                ));
            }
            Ok(json_response(
                200,
                &json!({"id": format!("pi_{n}"), "object": "payment_intent",
                "amount": 450, "currency": "eur", "status": "succeeded", "created": 1,
                "payment_method_types": ["card"], "metadata": {}}),
            ))
        })
    }

    fn client(host: &FakeHost) -> Client {
        let cfg: Config = serde_json::from_value(json!({"base_url": "http://127.0.0.1:9",
            "secret_key": "sk_test_1", "default_payment_method": "pm_card_visa"}))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    fn keys_sent(host: &FakeHost) -> Vec<String> {
        host.requests()
            .iter()
            .filter_map(|r| r.headers.iter().find(|(k, _)| k == "Idempotency-Key"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    #[test]
    fn a_payment_without_key_or_sale_is_refused_before_anything_is_sent() {
        let host = stripe(vec![]);
        let c = client(&host);
        let e = process_payment(&c, json!({"amount": "4.50", "currency": "EUR"})).unwrap_err();
        let e = ConnectorError::from(e);
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.contains("idempotency_key") && m.contains("sale_id")),
            "{e:?}"
        );
        assert_eq!(host.request_count(), 0);
        // Two identical payments with their own keys are two charges.
        let a = process_payment(
            &c,
            json!({"amount": "4.50", "currency": "EUR", "idempotency_key": "till-1:0001"}),
        )
        .unwrap();
        let b = process_payment(
            &c,
            json!({"amount": "4.50", "currency": "EUR", "idempotency_key": "till-1:0002"}),
        )
        .unwrap();
        assert_eq!(
            (a["idempotency_key"].as_str(), b["idempotency_key"].as_str()),
            (Some("till-1:0001"), Some("till-1:0002"))
        );
        assert_eq!(keys_sent(&host), vec!["till-1:0001", "till-1:0002"]);
        let e = process_payment(
            &c,
            json!({"amount": "4.50", "currency": "EUR", "idempotency_key": " "}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("idempotency_key"), "{e}");
    }

    #[test]
    fn a_partial_refund_needs_a_key_or_a_reference() {
        let host = stripe(vec![]);
        let c = client(&host);
        // The amount's currency is looked up first: answer the GET with the payment.
        let e = refund_payment(&c, json!({"payment_id": "pi_1", "amount": "1.00"})).unwrap_err();
        assert!(
            matches!(ConnectorError::from(e.clone()), ConnectorError::Permanent(ref m) if m.contains("idempotency_key") && m.contains("reference")),
            "{e:?}"
        );
        assert!(
            host.requests().iter().all(|r| r.method == "GET"),
            "no refund was sent"
        );
        refund_payment(
            &c,
            json!({"payment_id": "pi_1", "amount": "1.00", "reference": "R-7"}),
        )
        .unwrap();
        refund_payment(
            &c,
            json!({"payment_id": "pi_1", "amount": "1.00", "idempotency_key": "refund-8"}),
        )
        .unwrap();
        // A full refund happens once per payment: its derived key is enough.
        refund_payment(&c, json!({"payment_id": "pi_1"})).unwrap();
        assert_eq!(keys_sent(&host).len(), 3);
    }

    #[test]
    fn a_failed_post_is_sent_once_and_returned_typed_for_the_host_to_retry() {
        let host = stripe(vec![503]);
        let c = client(&host);
        let input = json!({"amount": "4.50", "currency": "EUR", "sale_id": "s-1"});
        let e = ConnectorError::from(process_payment(&c, input.clone()).unwrap_err());
        // A 503 with `Retry-After` is retried after that delay (see `rest::answer`).
        assert!(
            matches!(
                e,
                ConnectorError::RateLimited {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(host.request_count(), 1, "no retry inside the connector");
        // The host's retry sends the same key.
        process_payment(&c, input).unwrap();
        let keys = keys_sent(&host);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1]);

        let host = stripe(vec![429]);
        let c = client(&host);
        let e = process_payment(
            &c,
            json!({"amount": "4.50", "currency": "EUR", "idempotency_key": "k"}),
        )
        .unwrap_err();
        assert!(
            matches!(ConnectorError::from(e), ConnectorError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 3)
        );
        assert_eq!(host.request_count(), 1);
    }

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
