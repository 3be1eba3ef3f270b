//! The write side: sales (`per_sale`) and closures (`daily_summary`) → one voucher each through
//! `POST /Voucher/Factory/saveVoucher`, then one `PUT /Voucher/{id}/bookAmount` per check
//! account. A voucher already carrying the record's idempotency key in its description is
//! found with `GET /Voucher?descriptionLike=` and not saved again.

use posbridge_plugin_api::model::{decimal_from_json, Closure, Decimal, Sale};
use posbridge_plugin_api::{ConnectorError, RecordOutcome, WriteRequest};
use serde_json::Value;

use crate::booking::{self, Booking, KEY_MARKER};
use crate::config::VoucherStatus;
use crate::error::SevdeskError;
use crate::http::{encode_query_value, id_of, objects, Client};
use crate::mapping::Mapping;
use crate::voucher_body;

/// sevDesk's status of an open (unpaid) voucher.
const STATUS_OPEN: u64 = 100;

/// Writes batches of sales or closures as vouchers.
pub struct VoucherWriter<'a> {
    pub client: &'a Client,
}

/// A voucher found by its key.
struct Existing {
    id: u64,
    status: u64,
    paid: Decimal,
}

impl VoucherWriter<'_> {
    pub fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        if request.stream != "sales" && request.stream != "closures" {
            return Err(ConnectorError::Config(format!(
                "sevdesk writes the sales and closures streams, not {:?}",
                request.stream
            )));
        }
        let mapping = Mapping::new(&request.mapping);
        let mut outcomes = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let Some(key) = request.idempotency_keys.get(i) else {
                outcomes.push(RecordOutcome::Rejected {
                    reason: format!("record {i} has no idempotency key"),
                });
                continue;
            };
            let booking = match self.prepare(&request.stream, record, key, &mapping) {
                Ok(Some(b)) => b,
                // Not revenue (training, null receipt): nothing to book.
                Ok(None) => {
                    outcomes.push(RecordOutcome::Written { external_id: None });
                    continue;
                }
                Err(reason) => {
                    outcomes.push(RecordOutcome::Rejected { reason });
                    continue;
                }
            };
            let outcome = RecordOutcome::of_write(self.book(key, &booking))?;
            // sevDesk is down or rate limiting: the rest waits for the host's backoff.
            let rest = RecordOutcome::untried_after(&outcome);
            outcomes.push(outcome);
            if let Some(rest) = rest {
                outcomes.resize(records.len(), rest);
                break;
            }
        }
        Ok(outcomes)
    }

    fn book_payments(&self) -> bool {
        self.client.config().voucher_status == VoucherStatus::Open
    }

    /// Parses a record and builds its booking; `Err` is the reason to reject it.
    fn prepare(
        &self,
        stream: &str,
        record: &Value,
        key: &str,
        mapping: &Mapping,
    ) -> Result<Option<Booking>, String> {
        if stream == "closures" {
            let closure: Closure = serde_json::from_value(record.clone())
                .map_err(|e| format!("record is not a canonical closure: {e}"))?;
            booking::from_closure(&closure, key, mapping, self.book_payments()).map(Some)
        } else {
            let sale: Sale = serde_json::from_value(record.clone())
                .map_err(|e| format!("record is not a canonical sale: {e}"))?;
            booking::from_sale(&sale, key, mapping, self.book_payments())
        }
    }

    /// Saves one voucher (unless its key is found) and books what is not yet paid. An `Err`
    /// leaves nothing half-known: a resend looks the key up again and finds the voucher if the
    /// failed save landed after all, then books only the payments still missing.
    fn book(&self, key: &str, b: &Booking) -> Result<RecordOutcome, ConnectorError> {
        if let Some(found) = self.find(key)? {
            if found.status == STATUS_OPEN && self.book_payments() {
                if let Err(reason) = self.pay(found.id, b, found.paid)? {
                    return Ok(RecordOutcome::Rejected { reason });
                }
            }
            return Ok(RecordOutcome::Duplicate {
                external_id: Some(found.id.to_string()),
            });
        }
        let body = voucher_body::save_voucher(b, self.client.config().voucher_status);
        let endpoint = "POST Voucher/Factory/saveVoucher";
        let answer = match self
            .client
            .send_json("POST", "Voucher/Factory/saveVoucher", body)
        {
            Ok(a) => a,
            Err(SevdeskError::Refused { msg, status, .. }) => {
                return Ok(RecordOutcome::Rejected {
                    reason: format!("sevdesk refused the voucher (HTTP {status}): {msg}"),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let id = answer
            .pointer("/objects/voucher")
            .and_then(id_of)
            .ok_or_else(|| SevdeskError::bad_field(endpoint, "objects.voucher.id", "an id"))?;
        if self.book_payments() {
            if let Err(reason) = self.pay(id, b, Decimal::ZERO)? {
                return Ok(RecordOutcome::Rejected { reason });
            }
        }
        Ok(RecordOutcome::Written {
            external_id: Some(id.to_string()),
        })
    }

    /// Books the payments in order, skipping those `already_paid` covers (a run that stopped
    /// between two bookings resumes after the last one). `Ok(Err(reason))` when sevDesk refused.
    fn pay(
        &self,
        voucher_id: u64,
        b: &Booking,
        already_paid: Decimal,
    ) -> Result<Result<(), String>, ConnectorError> {
        let full = b.payments.len() == 1 && b.payments[0].amount == b.gross();
        let mut cumulative = Decimal::ZERO;
        for p in &b.payments {
            cumulative += p.amount;
            if !already_paid.is_zero() && cumulative <= already_paid {
                continue;
            }
            let path = format!("Voucher/{voucher_id}/bookAmount");
            let body = voucher_body::book_amount(p, &b.date, full);
            match self.client.send_json("PUT", &path, body) {
                Ok(_) => {}
                Err(SevdeskError::Refused { msg, status, .. }) => {
                    return Ok(Err(format!(
                        "voucher {voucher_id} was saved, but sevdesk refused booking {} on check account {} (HTTP {status}): {msg}",
                        p.amount, p.check_account
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Ok(()))
    }

    /// The voucher whose description carries this key, if any.
    fn find(&self, key: &str) -> Result<Option<Existing>, SevdeskError> {
        let needle = format!("{KEY_MARKER}{key}");
        let path = format!(
            "Voucher?descriptionLike={}&limit=10",
            encode_query_value(&needle)
        );
        let body = self.client.get(&path)?;
        let found = objects(&body, "GET Voucher")?.iter().find(|v| {
            v.get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.contains(&needle))
        });
        let Some(v) = found else { return Ok(None) };
        let id = id_of(v).ok_or_else(|| SevdeskError::bad_field("GET Voucher", "id", "an id"))?;
        let status = v
            .get("status")
            .and_then(decimal_from_json)
            .and_then(|d| u64::try_from(d).ok())
            .unwrap_or_default();
        let paid = v
            .get("paidAmount")
            .and_then(decimal_from_json)
            .unwrap_or_default();
        Ok(Some(Existing { id, status, paid }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use posbridge_plugin_api::model::Sale;
    use posbridge_plugin_api::testing::{json_response, ScriptedHost};
    use posbridge_plugin_api::HttpResponse;
    use serde_json::json;

    use super::*;
    use crate::config::Config;

    /// When the scripted 503 strikes a save: before sevDesk stored the voucher, or after (the
    /// answer was lost on the way back).
    #[derive(Clone, Copy, PartialEq)]
    enum Fault {
        BeforeSave,
        AfterSave,
    }

    /// A sevDesk that keeps vouchers in memory and answers the `fail_save`-th save (0-based,
    /// counted over the whole test) with a 503.
    #[derive(Default)]
    struct Vendor {
        /// (id, description, paid)
        vouchers: Vec<(u64, String, Decimal)>,
        saves: usize,
    }

    fn sevdesk(fail_save: usize, fault: Fault) -> (ScriptedHost, Arc<Mutex<Vendor>>) {
        let vendor = Arc::new(Mutex::new(Vendor::default()));
        let v = vendor.clone();
        let host = ScriptedHost::new(move |req| {
            let mut v = v.lock().unwrap();
            let path = req.url.split("/api/v1/").nth(1).unwrap_or_default();
            if req.method == "GET" && path.starts_with("Voucher?") {
                // The sink matches the description itself: list everything.
                let objects: Vec<Value> = v
                    .vouchers
                    .iter()
                    .map(|(id, d, paid)| json!({"id": id.to_string(), "description": d, "status": "100", "paidAmount": paid.to_string()}))
                    .collect();
                return Ok(json_response(200, &json!({ "objects": objects })));
            }
            if path == "Voucher/Factory/saveVoucher" {
                let n = v.saves;
                v.saves += 1;
                let unavailable = HttpResponse {
                    status: 503,
                    headers: vec![],
                    body: b"Service Unavailable".to_vec(),
                };
                if n == fail_save && fault == Fault::BeforeSave {
                    return Ok(unavailable);
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let description = body["voucher"]["description"].as_str().unwrap().to_string();
                let id = 1000 + v.vouchers.len() as u64;
                v.vouchers.push((id, description, Decimal::ZERO));
                if n == fail_save {
                    return Ok(unavailable);
                }
                return Ok(json_response(
                    200,
                    &json!({"objects": {"voucher": {"id": id.to_string()}}}),
                ));
            }
            if let Some(id) = path
                .strip_prefix("Voucher/")
                .and_then(|p| p.strip_suffix("/bookAmount"))
            {
                let id: u64 = id.parse().unwrap();
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let amount = decimal_from_json(&body["amount"]).unwrap();
                let voucher = v.vouchers.iter_mut().find(|x| x.0 == id).unwrap();
                voucher.2 += amount;
                return Ok(json_response(200, &json!({"objects": {}})));
            }
            Ok(json_response(
                404,
                &json!({"error": {"message": format!("no route {path}")}}),
            ))
        });
        (host, vendor)
    }

    fn client(host: &ScriptedHost) -> Client {
        let cfg: Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9/api/v1", "api_token": "0123456789abcdef0123456789abcdef"
        }))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    fn batch(keys: &[String]) -> (WriteRequest, Vec<Value>) {
        let request = WriteRequest {
            stream: "sales".into(),
            mapping: json!({
                "accounting_type": 26,
                "tax_rates": {"19": 8400, "7": 8300},
                "payment_methods": {"cash": 1},
            }),
            idempotency_keys: keys.to_vec(),
            ..WriteRequest::default()
        };
        let records = keys
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let mut s = Sale::example();
                s.receipt_number = (i + 1).to_string();
                s.id = Sale::make_id("demo", "S1", "R1", &s.receipt_number);
                serde_json::to_value(s).unwrap()
            })
            .collect();
        (request, records)
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("key-{i}")).collect()
    }

    #[test]
    fn a_503_on_record_3_keeps_records_0_to_2_and_retries_the_rest_untried() {
        let (host, vendor) = sevdesk(3, Fault::BeforeSave);
        let c = client(&host);
        let keys = keys(6);
        let (request, records) = batch(&keys);
        let outcomes = VoucherWriter { client: &c }
            .write(&request, &records)
            .unwrap();
        assert_eq!(outcomes.len(), 6);
        assert!(outcomes[..3].iter().all(|o| matches!(
            o,
            RecordOutcome::Written {
                external_id: Some(_)
            }
        )));
        assert!(
            outcomes[3..].iter().all(RecordOutcome::is_retry),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[3], RecordOutcome::Retry { reason, .. } if reason.contains("503"))
        );
        // Records 4 and 5 were not tried: 3 saves + the failed one.
        assert_eq!(vendor.lock().unwrap().saves, 4);

        // The host resends only the retried records, with their keys.
        let (mut again, _) = batch(&keys);
        again.idempotency_keys = keys[3..].to_vec();
        let outcomes = VoucherWriter { client: &c }
            .write(&again, &records[3..])
            .unwrap();
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, RecordOutcome::Written { .. })),
            "{outcomes:?}"
        );
        let v = vendor.lock().unwrap();
        assert_eq!(v.vouchers.len(), 6, "every sale once");
        for k in &keys {
            let found: Vec<_> = v
                .vouchers
                .iter()
                .filter(|x| x.1.ends_with(k.as_str()))
                .collect();
            assert_eq!(found.len(), 1, "{k}");
            assert_eq!(
                found[0].2,
                Sale::example().totals.gross,
                "{k} paid in full once"
            );
        }
    }

    #[test]
    fn a_save_that_landed_but_lost_its_answer_is_found_on_the_resend() {
        let (host, vendor) = sevdesk(3, Fault::AfterSave);
        let c = client(&host);
        let keys = keys(6);
        let (request, records) = batch(&keys);
        let outcomes = VoucherWriter { client: &c }
            .write(&request, &records)
            .unwrap();
        assert!(
            outcomes[3..].iter().all(RecordOutcome::is_retry),
            "{outcomes:?}"
        );
        assert_eq!(vendor.lock().unwrap().vouchers.len(), 4, "record 3 landed");

        let (mut again, _) = batch(&keys);
        again.idempotency_keys = keys[3..].to_vec();
        let outcomes = VoucherWriter { client: &c }
            .write(&again, &records[3..])
            .unwrap();
        assert!(
            matches!(outcomes[0], RecordOutcome::Duplicate { external_id: Some(ref id) } if id == "1003"),
            "{outcomes:?}"
        );
        assert!(outcomes[1..]
            .iter()
            .all(|o| matches!(o, RecordOutcome::Written { .. })));
        let v = vendor.lock().unwrap();
        assert_eq!(v.vouchers.len(), 6, "nothing saved twice");
        // The landed voucher's payment, never booked before, is booked on the resend.
        assert!(v
            .vouchers
            .iter()
            .all(|x| x.2 == Sale::example().totals.gross));
    }

    #[test]
    fn a_refused_token_fails_the_call() {
        let host = ScriptedHost::new(|_| {
            Ok(json_response(
                401,
                &json!({"error": {"message": "Authentication required"}}),
            ))
        });
        let c = client(&host);
        let (request, records) = batch(&keys(2));
        let err = VoucherWriter { client: &c }
            .write(&request, &records)
            .unwrap_err();
        assert!(matches!(err, ConnectorError::Auth(_)), "{err:?}");
        assert_eq!(host.request_count(), 1, "the second record is not tried");
    }
}
