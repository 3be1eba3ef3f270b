//! The read side: `payments`, `refunds`, `payouts` and `balance_transactions`, each a Stripe
//! list paged with `limit` + `starting_after` + `has_more` and bounded by `created[gte|lte]`.

use posbridge_plugin_api::rest::{fetch_page, HasMore, Pass};
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::config::PaymentsObject;
use crate::cursor::{self, plan};
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

/// Stripe's pager: `has_more`, and the last object's id sent back as `starting_after`.
fn pages() -> HasMore {
    HasMore::new("starting_after", "/has_more", "/id")
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
    let mut cursor = cursor::read(request.cursor.as_ref(), spec.path)?;
    let (mut scan, at) = plan(&cursor, spec.path, request.from, request.to, cfg.start_date);
    let limit = cfg.page_size.min(request.page_size.max(1) as u32).max(1);

    // `limit` first, as the documented examples spell it; `starting_after` comes from the pager.
    let list = client
        .api()
        .get(spec.path)
        .query("limit", limit)
        .query_opt("created[gte]", scan.window.gte)
        .query_opt("created[lte]", scan.window.lte)
        .query_opt("expand[]", spec.expand)
        .endpoint(spec.path);
    let page = fetch_page(list, &pages(), &at, "/data").map_err(StripeError::from)?;

    let mut out = Vec::with_capacity(page.items.len());
    for obj in &page.items {
        if let Some(created) = obj.get("created").and_then(Value::as_i64) {
            scan.newest = Some(scan.newest.map_or(created, |n| n.max(created)));
        }
        out.push((spec.convert)(obj, spec.path)?);
    }
    let has_more = page.next.is_some();
    match page.next {
        Some(at) => {
            cursor.pass = Some(Pass {
                partition: 0,
                key: spec.path.into(),
                window: scan,
                at,
            });
        }
        None => {
            cursor.pass = None;
            let synced = scan.newest.or(scan.window.gte).unwrap_or(0);
            cursor.partitions.insert(spec.path.into(), synced);
        }
    }
    Ok(Page {
        records: out,
        cursor: Some(cursor.to_json()),
        has_more,
    })
}
