//! The write side: sales (`per_sale`) and closures (`daily_summary`) → `POST /v1/vouchers`.
//!
//! lexoffice has no idempotency header, so each voucher carries a number derived from the
//! record's idempotency key (`PB-<key>`). Before a batch is booked, the vouchers already on
//! its days are listed (`voucherlist` filtered by type, any status and the batch's date range)
//! and a record whose numbers are all there is answered `Duplicate`.
//!
//! A 5xx, 429 or dropped connection on a record answers it `Retry` and leaves the rest of the
//! batch untried (`Retry` too); the host resends them, and the listing finds any voucher that
//! landed although its answer was lost.

use std::collections::HashMap;

use chrono::NaiveDate;
use posbridge_plugin_api::model::{Closure, Sale};
use posbridge_plugin_api::{ConnectorError, RecordOutcome, WriteRequest};
use serde_json::Value;

use crate::client::{page_endpoint, Client};
use crate::config::MAX_PAGE_SIZE;
use crate::mapping::Mapping;
use crate::voucher::{plan, Booking, PlannedVoucher, NUMBER_PREFIX};
use posbridge_plugin_api::rest::{Position, RestError};

/// The voucher types the sink writes, as the `voucherType` filter spells them.
pub const SALES_TYPES: &str = "salesinvoice,salescreditnote";

/// Writes batches of sales or closures.
pub struct VoucherWriter<'a> {
    pub client: &'a Client,
}

impl VoucherWriter<'_> {
    pub fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        let stream = request.stream.as_str();
        if stream != "sales" && stream != "closures" {
            return Err(ConnectorError::Config(format!(
                "lexoffice writes the sales and closures streams, not {stream:?}"
            )));
        }
        let mapping = Mapping::parse(&request.mapping)
            .map_err(|e| ConnectorError::Config(format!("lexoffice: {e}")))?;
        let plans: Vec<Result<Vec<PlannedVoucher>, String>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = request
                    .idempotency_keys
                    .get(i)
                    .ok_or_else(|| format!("record {i} has no idempotency key"))?;
                let booking = booking(stream, r)?;
                plan(&booking, &mapping, key)
            })
            .collect();

        let days: Vec<NaiveDate> = plans
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .flatten()
            .map(|v| v.day)
            .collect();
        let mut existing = match (days.iter().min(), days.iter().max()) {
            (Some(from), Some(to)) => self.existing_numbers(*from, *to)?,
            _ => HashMap::new(),
        };

        let tax_type = self.client.config().tax_type;
        let mut outcomes = Vec::with_capacity(records.len());
        'records: for p in plans {
            // lexoffice is down or rate limiting: the rest waits for the host's backoff.
            if let Some(rest) = outcomes.last().and_then(RecordOutcome::untried_after) {
                outcomes.resize(records.len(), rest);
                break;
            }
            let vouchers = match p {
                Ok(v) => v,
                Err(reason) => {
                    outcomes.push(RecordOutcome::Rejected { reason });
                    continue;
                }
            };
            if vouchers.is_empty() {
                // Not revenue (training, null receipt) or nothing but zeros: nothing to book.
                outcomes.push(RecordOutcome::Written { external_id: None });
                continue;
            }
            let mut ids = Vec::new();
            let mut created = false;
            for v in &vouchers {
                if let Some(id) = existing.get(&v.number) {
                    ids.push(id.clone());
                    continue;
                }
                match self
                    .client
                    .post_json("vouchers", v.body(tax_type), "POST vouchers")
                {
                    Ok(answer) => {
                        let Some(id) = answer.get("id").and_then(Value::as_str) else {
                            let e = crate::client::bad_field("POST vouchers", "id", "a string");
                            outcomes.push(RecordOutcome::failed(&e.into()));
                            continue 'records;
                        };
                        existing.insert(v.number.clone(), id.to_string());
                        ids.push(id.to_string());
                        created = true;
                    }
                    Err(RestError::Permanent {
                        message: msg,
                        status,
                        ..
                    }) => {
                        let booked = if ids.is_empty() {
                            String::new()
                        } else {
                            format!(" (already booked: {})", ids.join(","))
                        };
                        outcomes.push(RecordOutcome::Rejected {
                            reason: format!(
                                "lexoffice refused voucher {} (HTTP {status}): {msg}{booked}",
                                v.number
                            ),
                        });
                        continue 'records;
                    }
                    Err(e) => match ConnectorError::from(e) {
                        // A refused key fails every record alike: the whole call fails.
                        e @ ConnectorError::Auth(_) => return Err(e),
                        // The vouchers already posted are found by number on the resend.
                        e => {
                            outcomes.push(RecordOutcome::failed(&e));
                            continue 'records;
                        }
                    },
                }
            }
            let external_id = Some(ids.join(","));
            outcomes.push(if created {
                RecordOutcome::Written { external_id }
            } else {
                RecordOutcome::Duplicate { external_id }
            });
        }
        Ok(outcomes)
    }

    /// Voucher number → id of the connector's vouchers dated within `from..=to`.
    fn existing_numbers(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let mut found = HashMap::new();
        let query = [
            ("voucherType", SALES_TYPES.to_string()),
            ("voucherStatus", "any".to_string()),
            ("voucherDateFrom", from.to_string()),
            ("voucherDateTo", to.to_string()),
        ];
        let mut at = Some(Position::Page(0));
        while let Some(page) = at {
            let name = page_endpoint("voucherlist", &page);
            let list = self
                .client
                .list_page("voucherlist", &query, MAX_PAGE_SIZE, &page, &name)?;
            for v in &list.items {
                if let (Some(number), Some(id)) = (
                    v.get("voucherNumber").and_then(Value::as_str),
                    v.get("id").and_then(Value::as_str),
                ) {
                    if number.starts_with(NUMBER_PREFIX) {
                        found.insert(number.to_string(), id.to_string());
                    }
                }
            }
            at = list.next;
        }
        Ok(found)
    }
}

/// Reads one record of the stream as a booking; `Err` is the reason to reject it.
fn booking(stream: &str, record: &Value) -> Result<Booking, String> {
    if stream == "closures" {
        let c: Closure = serde_json::from_value(record.clone())
            .map_err(|e| format!("record is not a canonical closure: {e}"))?;
        Ok(Booking::from_closure(&c))
    } else {
        let s: Sale = serde_json::from_value(record.clone())
            .map_err(|e| format!("record is not a canonical sale: {e}"))?;
        Ok(Booking::from_sale(&s))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::config::Config;
    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use posbridge_plugin_api::HttpResponse;
    use serde_json::json;

    /// The vouchers (number, id) the scripted lexoffice keeps.
    type Vouchers = Arc<Mutex<Vec<(String, String)>>>;

    /// A lexoffice keeping vouchers (number, id) in memory; the `fail_post`-th POST (0-based,
    /// over the whole test) is answered 503, before or after the voucher was stored.
    fn lexoffice(fail_post: usize, lands: bool) -> (FakeHost, Vouchers) {
        let vouchers: Vouchers = Arc::default();
        let posts = Arc::new(Mutex::new(0usize));
        let v = vouchers.clone();
        let host = FakeHost::with_vendor(move |req| {
            let mut v = v.lock().unwrap();
            let unavailable = HttpResponse {
                status: 503,
                headers: vec![],
                body: b"{\"message\":\"Service Unavailable\"}".to_vec(),
            };
            if req.method == "GET" && req.url.contains("/v1/voucherlist?") {
                let content: Vec<Value> = v
                    .iter()
                    .map(|(n, id)| json!({"voucherNumber": n, "id": id}))
                    .collect();
                return Ok(json_response(
                    200,
                    &json!({"content": content, "last": true}),
                ));
            }
            if req.method == "POST" && req.url.ends_with("/v1/vouchers") {
                let mut n = posts.lock().unwrap();
                let this = *n;
                *n += 1;
                if this == fail_post && !lands {
                    return Ok(unavailable);
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let number = body["voucherNumber"].as_str().unwrap().to_string();
                let id = format!("v-{}", v.len());
                v.push((number, id.clone()));
                if this == fail_post {
                    return Ok(unavailable);
                }
                return Ok(json_response(200, &json!({ "id": id })));
            }
            Ok(json_response(404, &json!({"message": "no route"})))
        });
        (host, vouchers)
    }

    fn client(host: &FakeHost) -> Client {
        let cfg: Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9", "api_key": "secret-key"
        }))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    fn batch(keys: &[String]) -> (WriteRequest, Vec<Value>) {
        let request = WriteRequest {
            stream: "sales".into(),
            mapping: json!({
                "tax_rates": {"19": "c19", "7": "c7"},
                "payment_methods": {"cash": "Bar"}
            }),
            idempotency_keys: keys.to_vec(),
            ..WriteRequest::default()
        };
        let records = (0..keys.len())
            .map(|i| {
                let mut s = Sale::example();
                s.receipt_number = (i + 1).to_string();
                s.id = Sale::make_id("demo", "S1", "R1", &s.receipt_number);
                serde_json::to_value(s).unwrap()
            })
            .collect();
        (request, records)
    }

    fn resend_of(keys: &[String], from: usize) -> (WriteRequest, Vec<Value>) {
        let (mut request, records) = batch(keys);
        request.idempotency_keys = keys[from..].to_vec();
        (request, records[from..].to_vec())
    }

    #[test]
    fn a_503_on_record_3_keeps_records_0_to_2_and_nothing_is_booked_twice() {
        for lands in [false, true] {
            let (host, vouchers) = lexoffice(3, lands);
            let c = client(&host);
            let keys: Vec<String> = (0..6)
                .map(|i| format!("{i}123456789abcdef0123456789abcdef"))
                .collect();
            let (request, records) = batch(&keys);
            let outcomes = VoucherWriter { client: &c }
                .write(&request, &records)
                .unwrap();
            assert_eq!(outcomes.len(), 6);
            assert!(
                outcomes[..3].iter().all(|o| matches!(
                    o,
                    RecordOutcome::Written {
                        external_id: Some(_)
                    }
                )),
                "{outcomes:?}"
            );
            assert!(
                outcomes[3..].iter().all(RecordOutcome::is_retry),
                "{outcomes:?}"
            );
            let posts = |h: &FakeHost| h.requests().iter().filter(|r| r.method == "POST").count();
            assert_eq!(posts(&host), 4, "records 4 and 5 were not tried");

            let (again, rest) = resend_of(&keys, 3);
            let outcomes = VoucherWriter { client: &c }.write(&again, &rest).unwrap();
            assert_eq!(
                matches!(outcomes[0], RecordOutcome::Duplicate { .. }),
                lands,
                "{outcomes:?}"
            );
            assert!(outcomes.iter().all(|o| !o.is_retry()), "{outcomes:?}");
            let v = vouchers.lock().unwrap();
            let mut numbers: Vec<&String> = v.iter().map(|(n, _)| n).collect();
            numbers.sort();
            numbers.dedup();
            assert_eq!((v.len(), numbers.len()), (6, 6), "every sale once");
        }
    }

    #[test]
    fn records_of_the_wrong_shape_are_rejected_with_a_reason() {
        assert!(booking("sales", &json!({"id": 1}))
            .unwrap_err()
            .contains("not a canonical sale"));
        assert!(booking("closures", &json!({"id": "x"}))
            .unwrap_err()
            .contains("not a canonical closure"));
        let sale = serde_json::to_value(Sale::example()).unwrap();
        assert_eq!(booking("sales", &sale).unwrap().rates.len(), 2);
    }
}
