//! The read side: `payments`, `refunds`, `payouts` and `balance_transactions`, each a Stripe
//! list paged with `limit` + `starting_after` + `has_more` and bounded by `created[gte|lte]`.

use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde::Serialize;
use serde_json::Value;

use crate::client::{Client, Form};
use crate::config::PaymentsObject;
use crate::cursor::{plan, ListCursor};
use crate::error::StripeError;
use crate::records;

/// One Stripe list and how its objects become canonical records.
struct ListSpec {
    path: &'static str,
    expand: Option<&'static str>,
    convert: fn(&Value, &str) -> Result<Value, StripeError>,
}

fn canonical<T: Serialize>(r: Result<T, StripeError>) -> Result<Value, StripeError> {
    serde_json::to_value(r?).map_err(|e| {
        StripeError::from(ConnectorError::Bug(format!(
            "record does not serialize: {e}"
        )))
    })
}

fn spec(stream: &str, payments: PaymentsObject) -> Option<ListSpec> {
    Some(match (stream, payments) {
        ("payments", PaymentsObject::PaymentIntents) => ListSpec {
            path: "payment_intents",
            // The charge carries `amount_refunded` and the method actually used.
            expand: Some("data.latest_charge"),
            convert: |v, e| canonical(records::payment_from_intent(v, e)),
        },
        ("payments", PaymentsObject::Charges) => ListSpec {
            path: "charges",
            expand: None,
            convert: |v, e| canonical(records::payment_from_charge(v, e)),
        },
        ("refunds", _) => ListSpec {
            path: "refunds",
            expand: None,
            convert: |v, e| canonical(records::refund(v, e)),
        },
        ("payouts", _) => ListSpec {
            path: "payouts",
            expand: None,
            convert: |v, e| canonical(records::payout(v, e)),
        },
        ("balance_transactions", _) => ListSpec {
            path: "balance_transactions",
            expand: None,
            convert: |v, e| canonical(records::balance_transaction(v, e)),
        },
        _ => return None,
    })
}

/// Reads one page of `request.stream`.
pub fn read(client: &Client, request: &ReadRequest) -> Result<Page, ConnectorError> {
    let cfg = client.config();
    let spec = spec(&request.stream, cfg.payments_object).ok_or_else(|| {
        ConnectorError::Config(format!(
            "stripe has no stream {:?} (it reads payments, refunds, payouts, balance_transactions)",
            request.stream
        ))
    })?;
    let cursor = ListCursor::parse(request.cursor.as_ref())?;
    let (window, starting_after, mut newest) =
        plan(cursor, request.from, request.to, cfg.start_date);
    let limit = cfg.page_size.min(request.page_size.max(1) as u32).max(1);

    let mut query: Form = vec![("limit".into(), limit.to_string())];
    if let Some(gte) = window.gte {
        query.push(("created[gte]".into(), gte.to_string()));
    }
    if let Some(lte) = window.lte {
        query.push(("created[lte]".into(), lte.to_string()));
    }
    if let Some(after) = &starting_after {
        query.push(("starting_after".into(), after.clone()));
    }
    if let Some(expand) = spec.expand {
        query.push(("expand[]".into(), expand.into()));
    }
    let body = client.get(spec.path, &query, spec.path)?;
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| StripeError::bad_field(spec.path, "data", "an array"))?;
    let has_more = body
        .get("has_more")
        .and_then(Value::as_bool)
        .ok_or_else(|| StripeError::bad_field(spec.path, "has_more", "a boolean"))?;

    let mut out = Vec::with_capacity(data.len());
    for obj in data {
        if let Some(created) = obj.get("created").and_then(Value::as_i64) {
            newest = Some(newest.map_or(created, |n| n.max(created)));
        }
        out.push((spec.convert)(obj, spec.path)?);
    }
    let last_id = data
        .last()
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let next = match (has_more, last_id) {
        (true, Some(starting_after)) => ListCursor::Paging {
            window,
            starting_after,
            newest,
        },
        (true, None) => {
            return Err(StripeError::bad_field(spec.path, "data", "non-empty when has_more").into())
        }
        (false, _) => ListCursor::Synced {
            synced_through: newest.or(window.gte).unwrap_or(0),
        },
    };
    let more = matches!(next, ListCursor::Paging { .. });
    Ok(Page {
        records: out,
        cursor: Some(next.to_json()),
        has_more: more,
    })
}
