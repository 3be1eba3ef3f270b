//! The write side: sales (`per_sale`) and closures (`daily_summary`) → one voucher each through
//! `POST /Voucher/Factory/saveVoucher`, then one `PUT /Voucher/{id}/bookAmount` per check
//! account. A voucher is saved once: a record whose payments failed before is found in the
//! plugin state ([`crate::pending`]), any other by the idempotency key in its description
//! (`GET /Voucher?descriptionLike=`); either way only the payments still missing are booked.

use posbridge_plugin_api::model::{decimal_from_json, Closure, Decimal, Sale};
use posbridge_plugin_api::{ConnectorError, RecordOutcome, WriteRequest};
use serde_json::Value;

use crate::booking::{self, Booking, KEY_MARKER};
use crate::config::{PaymentRefused, VoucherStatus};
use crate::error::{bad_field, RestError};
use crate::http::{encode_query_value, id_of, objects, Client};
use crate::mapping::Mapping;
use crate::pending::{payments_covered, PendingVoucher, PendingVouchers};
use crate::voucher_body;

/// sevDesk's voucher statuses: draft, open (unpaid), paid (750, partially paid, is read from
/// its `paidAmount`).
const STATUS_DRAFT: u64 = 50;
const STATUS_OPEN: u64 = 100;
const STATUS_PAID: u64 = 1000;

/// Writes batches of sales or closures as vouchers.
pub struct VoucherWriter<'a> {
    pub client: &'a Client,
}

/// A voucher as sevDesk shows it: its status and what has been paid.
struct Stored {
    id: u64,
    status: u64,
    paid: Option<Decimal>,
}

/// Where the voucher of a record stands before its payments are booked.
struct Saved {
    id: u64,
    /// Saved by this attempt (nothing can be paid yet).
    now: bool,
    /// The pending record's count of booked payments.
    hint: Option<usize>,
    /// sevDesk's view, for a voucher saved by an earlier attempt.
    stored: Option<Stored>,
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

    fn pending(&self) -> PendingVouchers<'_> {
        PendingVouchers::new(self.client.host())
    }

    /// Parses a record and builds its booking; `Err` is the reason to reject it.
    fn prepare(
        &self,
        stream: &str,
        record: &Value,
        key: &str,
        mapping: &Mapping,
    ) -> Result<Option<Booking>, String> {
        let cfg = self.client.config();
        if stream == "closures" {
            let closure: Closure = serde_json::from_value(record.clone())
                .map_err(|e| format!("record is not a canonical closure: {e}"))?;
            booking::from_closure(&closure, key, mapping, cfg).map(Some)
        } else {
            let sale: Sale = serde_json::from_value(record.clone())
                .map_err(|e| format!("record is not a canonical sale: {e}"))?;
            booking::from_sale(&sale, key, mapping, cfg)
        }
    }

    /// Saves one voucher unless an earlier attempt did, then books what is not yet paid. An
    /// `Err` before the save leaves nothing half-known: a resend looks the key up again and
    /// finds the voucher if the failed save landed after all.
    fn book(&self, key: &str, b: &Booking) -> Result<RecordOutcome, ConnectorError> {
        let saved = match self.saved_before(key)? {
            Some(saved) => saved,
            None => match self.save(b)? {
                Ok(id) => Saved {
                    id,
                    now: true,
                    hint: Some(0),
                    stored: None,
                },
                Err(reason) => return Ok(RecordOutcome::Rejected { reason }),
            },
        };
        let external_id = Some(saved.id.to_string());
        if !self.book_payments() {
            return Ok(if saved.now {
                RecordOutcome::Written { external_id }
            } else {
                RecordOutcome::Duplicate { external_id }
            });
        }
        let start = match self.first_unpaid(&saved, b) {
            Ok(start) => start,
            Err(reason) => return Ok(RecordOutcome::Rejected { reason }),
        };
        if let Some(failed) = self.pay(key, saved.id, b, start)? {
            return Ok(failed);
        }
        if saved.hint.is_some() && !saved.now {
            self.pending().clear(key);
        }
        Ok(if saved.now || start < b.payments.len() {
            RecordOutcome::Written { external_id }
        } else {
            RecordOutcome::Duplicate { external_id }
        })
    }

    /// The voucher an earlier attempt saved: from the pending record (checked against sevDesk:
    /// a voucher deleted there is saved again) or found by its key.
    fn saved_before(&self, key: &str) -> Result<Option<Saved>, RestError> {
        if let Some(p) = self.pending().get(key) {
            if let Some(stored) = self.stored(p.voucher_id)? {
                return Ok(Some(Saved {
                    id: p.voucher_id,
                    now: false,
                    hint: Some(p.booked),
                    stored: Some(stored),
                }));
            }
            self.client.host().warn(&format!(
                "sevdesk: voucher {} of a pending payment is gone; the record is booked anew",
                p.voucher_id
            ));
            self.pending().clear(key);
        }
        Ok(self.find(key)?.map(|stored| Saved {
            id: stored.id,
            now: false,
            hint: None,
            stored: Some(stored),
        }))
    }

    /// `saveVoucher`; `Ok(Err(reason))` when sevDesk refused the voucher.
    fn save(&self, b: &Booking) -> Result<Result<u64, String>, ConnectorError> {
        let cfg = self.client.config();
        let body = voucher_body::save_voucher(b, cfg.voucher_status, cfg.voucher_pos);
        let endpoint = "POST Voucher/Factory/saveVoucher";
        let answer = match self
            .client
            .send_json("POST", "Voucher/Factory/saveVoucher", body)
        {
            Ok(a) => a,
            Err(RestError::Permanent {
                message, status, ..
            }) => {
                return Ok(Err(format!(
                    "sevdesk refused the voucher (HTTP {status}): {message}"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let id = answer
            .pointer("/objects/voucher")
            .and_then(id_of)
            .ok_or_else(|| bad_field(endpoint, "objects.voucher.id", "an id"))?;
        Ok(Ok(id))
    }

    /// The index of the first payment still to book; `Err` is the reason to set the record
    /// aside for a person (what sevDesk shows paid is no prefix of the payments).
    fn first_unpaid(&self, saved: &Saved, b: &Booking) -> Result<usize, String> {
        let Some(stored) = &saved.stored else {
            return Ok(0);
        };
        let all = b.payments.len();
        let paid = match (stored.status, stored.paid) {
            (STATUS_PAID, _) => return Ok(all),
            (STATUS_DRAFT, _) => {
                return Err(format!(
                    "voucher {} is a draft in sevdesk, so its payments cannot be booked; open it and retry",
                    stored.id
                ))
            }
            (_, Some(paid)) => paid,
            // No paidAmount shown: an open voucher has none, a partly paid one is unknown.
            (STATUS_OPEN, None) => Decimal::ZERO,
            (status, None) => {
                return Err(format!(
                    "voucher {} has status {status} but no paidAmount; book its payments by hand",
                    stored.id
                ))
            }
        };
        payments_covered(&b.payments, paid, saved.hint).ok_or_else(|| {
            format!(
                "voucher {} shows {paid} paid, which matches no prefix of its payments {:?}; book the rest by hand",
                stored.id,
                b.payments.iter().map(|p| p.amount.to_string()).collect::<Vec<_>>()
            )
        })
    }

    /// Books the payments from `start` on, in order. `Ok(None)` when all are booked; otherwise
    /// the pending record is written and the record's outcome returned: `retry` (the voucher
    /// is not saved again), or `rejected` for a refusal under `payment_refused: dead_letter`.
    fn pay(
        &self,
        key: &str,
        voucher_id: u64,
        b: &Booking,
        start: usize,
    ) -> Result<Option<RecordOutcome>, ConnectorError> {
        let full = b.payments.len() == 1 && b.payments[0].amount == b.gross();
        for (i, p) in b.payments.iter().enumerate().skip(start) {
            let path = format!("Voucher/{voucher_id}/bookAmount");
            let body = voucher_body::book_amount(p, &b.date, full);
            let Err(e) = self.client.send_json("PUT", &path, body) else {
                continue;
            };
            self.pending().put(
                key,
                PendingVoucher {
                    voucher_id,
                    booked: i,
                },
            );
            let what = format!(
                "voucher {voucher_id} is saved, but booking payment {} of {} ({} on check account {}) failed",
                i + 1,
                b.payments.len(),
                p.amount,
                p.check_account
            );
            self.client.host().warn(&format!("sevdesk: {what}: {e}"));
            let outcome = match e {
                RestError::Permanent {
                    status, message, ..
                } => {
                    let cause = format!("{what}: sevdesk refused it (HTTP {status}): {message}");
                    match self.client.config().payment_refused {
                        PaymentRefused::Retry => RecordOutcome::Retry {
                            reason: format!("{cause}; the next attempt books the missing payments only"),
                            retry_after_ms: None,
                        },
                        PaymentRefused::DeadLetter => RecordOutcome::Rejected {
                            reason: format!("payment pending, the voucher is not refused: {cause}; `posbridge dlq retry` books the missing payments only"),
                        },
                    }
                }
                other => {
                    let err = ConnectorError::from(other);
                    if matches!(err, ConnectorError::Auth(_)) {
                        return Err(err);
                    }
                    match RecordOutcome::failed(&err) {
                        RecordOutcome::Retry {
                            reason,
                            retry_after_ms,
                        } => RecordOutcome::Retry {
                            reason: format!("{what}: {reason}; the next attempt books the missing payments only"),
                            retry_after_ms,
                        },
                        // A broken answer: the booking's fate is unknown; the next attempt reads
                        // the paid amount first, so it may as well be tried again.
                        _ => RecordOutcome::Retry {
                            reason: format!("{what}: {err}"),
                            retry_after_ms: None,
                        },
                    }
                }
            };
            return Ok(Some(outcome));
        }
        Ok(None)
    }

    /// `GET /Voucher/{id}`: the voucher's status and paid amount; `None` when it does not exist.
    fn stored(&self, id: u64) -> Result<Option<Stored>, RestError> {
        let body = match self.client.get(&format!("Voucher/{id}")) {
            Ok(b) => b,
            // sevDesk answers 400 "Voucher was not found" (spec), or maybe 404.
            Err(RestError::Permanent {
                status: 400 | 404, ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // The spec shows `objects` as an array of one voucher; accept a bare object too.
        let v = match body.get("objects") {
            Some(Value::Array(items)) => items.first(),
            Some(o @ Value::Object(_)) => Some(o),
            _ => None,
        };
        Ok(v.map(|v| stored_of(v, id)))
    }

    /// The voucher whose description carries this key, if any.
    fn find(&self, key: &str) -> Result<Option<Stored>, RestError> {
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
        let id = id_of(v).ok_or_else(|| bad_field("GET Voucher", "id", "an id"))?;
        Ok(Some(stored_of(v, id)))
    }
}

/// Status and paid amount of a voucher as sevDesk writes it (numbers or strings; `paidAmount`
/// is nullable in the spec). A missing status reads as open.
fn stored_of(v: &Value, id: u64) -> Stored {
    let status = v
        .get("status")
        .and_then(decimal_from_json)
        .and_then(|d| u64::try_from(d).ok())
        .unwrap_or(STATUS_OPEN);
    let paid = v.get("paidAmount").and_then(decimal_from_json);
    Stored { id, status, paid }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use posbridge_plugin_api::model::Sale;
    use posbridge_plugin_api::testing::{json_response, FakeHost};
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

    /// How the scripted payment bookings fail: the first `failures` bookings of each voucher
    /// answer `status`, booked first when `after_booking`.
    #[derive(Clone, Copy, Default)]
    struct PaymentFault {
        failures: u32,
        status: u16,
        after_booking: bool,
    }

    struct StoredVoucher {
        id: u64,
        description: String,
        gross: Decimal,
        paid: Decimal,
        bookings: u32,
        attempts: u32,
    }

    impl StoredVoucher {
        fn json(&self) -> Value {
            let status = if self.paid == self.gross {
                "1000"
            } else {
                "100"
            };
            json!({"id": self.id.to_string(), "description": self.description,
                   "status": status, "paidAmount": self.paid.to_string()})
        }
    }

    /// A sevDesk that keeps vouchers in memory and answers the `fail_save`-th save (0-based,
    /// counted over the whole test) with a 503.
    #[derive(Default)]
    struct Vendor {
        vouchers: Vec<StoredVoucher>,
        saves: usize,
        payment_fault: PaymentFault,
    }

    fn unavailable(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: b"Service Unavailable".to_vec(),
        }
    }

    fn sevdesk(fail_save: usize, fault: Fault) -> (FakeHost, Arc<Mutex<Vendor>>) {
        let vendor = Arc::new(Mutex::new(Vendor::default()));
        let v = vendor.clone();
        let host = FakeHost::with_vendor(move |req| {
            let mut v = v.lock().unwrap();
            let path = req.url.split("/api/v1/").nth(1).unwrap_or_default();
            if req.method == "GET" && path.starts_with("Voucher?") {
                // The sink matches the description itself: list everything.
                let objects: Vec<Value> = v.vouchers.iter().map(StoredVoucher::json).collect();
                return Ok(json_response(200, &json!({ "objects": objects })));
            }
            if req.method == "GET" {
                if let Some(id) = path.strip_prefix("Voucher/") {
                    return Ok(match v.vouchers.iter().find(|x| x.id.to_string() == id) {
                        Some(x) => json_response(200, &json!({"objects": [x.json()]})),
                        None => json_response(
                            400,
                            &json!({"error": {"message": "Voucher was not found"}}),
                        ),
                    });
                }
            }
            if path == "Voucher/Factory/saveVoucher" {
                let n = v.saves;
                v.saves += 1;
                if n == fail_save && fault == Fault::BeforeSave {
                    return Ok(unavailable(503));
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let description = body["voucher"]["description"].as_str().unwrap().to_string();
                let gross = body["voucherPosSave"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| decimal_from_json(&p["sumGross"]).unwrap())
                    .sum();
                let id = 1000 + v.vouchers.len() as u64;
                v.vouchers.push(StoredVoucher {
                    id,
                    description,
                    gross,
                    paid: Decimal::ZERO,
                    bookings: 0,
                    attempts: 0,
                });
                if n == fail_save {
                    return Ok(unavailable(503));
                }
                return Ok(json_response(
                    201,
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
                let fault = v.payment_fault;
                let voucher = v.vouchers.iter_mut().find(|x| x.id == id).unwrap();
                voucher.attempts += 1;
                let failing = voucher.attempts <= fault.failures;
                if failing && !fault.after_booking {
                    return Ok(json_response(
                        fault.status,
                        &json!({"error": {"message": "injected"}}),
                    ));
                }
                if voucher.paid + amount > voucher.gross {
                    return Ok(json_response(
                        422,
                        &json!({"error": {"message": "would pay too much"}}),
                    ));
                }
                voucher.paid += amount;
                voucher.bookings += 1;
                if failing {
                    return Ok(unavailable(fault.status));
                }
                return Ok(json_response(200, &json!({"objects": {}})));
            }
            Ok(json_response(
                404,
                &json!({"error": {"message": format!("no route {path}")}}),
            ))
        });
        (host, vendor)
    }

    fn client_with(host: &FakeHost, extra: Value) -> Client {
        let mut cfg = json!({
            "base_url": "http://127.0.0.1:9/api/v1", "api_token": "0123456789abcdef0123456789abcdef"
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            cfg[k] = v;
        }
        let cfg: Config = serde_json::from_value(cfg).unwrap();
        Client::new(host.host(), cfg)
    }

    fn client(host: &FakeHost) -> Client {
        client_with(host, json!({}))
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

    /// Every key saved once and paid in full by exactly one booking.
    fn assert_saved_and_paid_once(vendor: &Mutex<Vendor>, keys: &[String]) {
        let v = vendor.lock().unwrap();
        assert_eq!(v.vouchers.len(), keys.len(), "every sale once");
        for k in keys {
            let found: Vec<_> = v
                .vouchers
                .iter()
                .filter(|x| x.description.ends_with(k.as_str()))
                .collect();
            assert_eq!(found.len(), 1, "{k}");
            assert_eq!(
                found[0].paid,
                Sale::example().totals.gross,
                "{k} paid in full"
            );
            assert_eq!(found[0].bookings, 1, "{k} paid once");
        }
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
        assert_saved_and_paid_once(&vendor, &keys);
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
        // The landed voucher's payment, never booked before, is booked on the resend.
        assert!(
            matches!(outcomes[0], RecordOutcome::Written { external_id: Some(ref id) } if id == "1003"),
            "{outcomes:?}"
        );
        assert!(outcomes[1..]
            .iter()
            .all(|o| matches!(o, RecordOutcome::Written { .. })));
        assert_saved_and_paid_once(&vendor, &keys);
    }

    /// The payment of a saved voucher fails (503 before booking, or booked with its answer
    /// lost): the record is retried, not refused, the pending record names the voucher, and the
    /// resend books the missing payment without saving or paying twice.
    #[test]
    fn a_payment_that_fails_after_the_save_is_retried_without_saving_again() {
        for after_booking in [false, true] {
            let (host, vendor) = sevdesk(usize::MAX, Fault::BeforeSave);
            vendor.lock().unwrap().payment_fault = PaymentFault {
                failures: 1,
                status: if after_booking { 500 } else { 503 },
                after_booking,
            };
            let c = client(&host);
            let keys = keys(3);
            let (request, records) = batch(&keys);
            let outcomes = VoucherWriter { client: &c }
                .write(&request, &records)
                .unwrap();
            assert!(
                matches!(&outcomes[0], RecordOutcome::Retry { reason, .. }
                    if reason.contains("voucher 1000 is saved") && reason.contains("payment 1 of 1")),
                "{outcomes:?}"
            );
            assert!(
                outcomes.iter().all(RecordOutcome::is_retry),
                "the rest waits"
            );
            let pending = PendingVouchers::new(c.host()).get(&keys[0]);
            assert_eq!(
                pending,
                Some(PendingVoucher {
                    voucher_id: 1000,
                    booked: 0
                })
            );
            // The host resends the retried records until none is left.
            let mut left: Vec<usize> = (0..keys.len()).collect();
            for _round in 0..6 {
                let (mut again, _) = batch(&keys);
                again.idempotency_keys = left.iter().map(|i| keys[*i].clone()).collect();
                let recs: Vec<Value> = left.iter().map(|i| records[*i].clone()).collect();
                let outcomes = VoucherWriter { client: &c }.write(&again, &recs).unwrap();
                assert!(
                    !outcomes
                        .iter()
                        .any(|o| matches!(o, RecordOutcome::Rejected { .. })),
                    "{outcomes:?}"
                );
                left = left
                    .into_iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| o.is_retry())
                    .map(|(i, _)| i)
                    .collect();
                if left.is_empty() {
                    break;
                }
            }
            assert!(left.is_empty(), "all written after retries");
            let saves = host
                .requests()
                .iter()
                .filter(|r| r.url.ends_with("saveVoucher"))
                .count();
            assert_eq!(saves, keys.len(), "each voucher saved once");
            assert_saved_and_paid_once(&vendor, &keys);
            assert_eq!(
                PendingVouchers::new(c.host()).get(&keys[0]),
                None,
                "cleared"
            );
            // Once more: everything is there, nothing is booked.
            let outcomes = VoucherWriter { client: &c }
                .write(&request, &records)
                .unwrap();
            assert!(outcomes
                .iter()
                .all(|o| matches!(o, RecordOutcome::Duplicate { .. })));
            assert_saved_and_paid_once(&vendor, &keys);
        }
    }

    #[test]
    fn a_refused_payment_is_retried_or_parked_as_pending_never_refused_as_a_voucher() {
        for (option, parked) in [("retry", false), ("dead_letter", true)] {
            let (host, vendor) = sevdesk(usize::MAX, Fault::BeforeSave);
            vendor.lock().unwrap().payment_fault = PaymentFault {
                failures: u32::MAX,
                status: 422,
                after_booking: false,
            };
            let c = client_with(&host, json!({"payment_refused": option}));
            let keys = keys(2);
            let (request, records) = batch(&keys);
            let outcomes = VoucherWriter { client: &c }
                .write(&request, &records)
                .unwrap();
            for o in &outcomes[..if parked { 2 } else { 1 }] {
                match o {
                    RecordOutcome::Rejected { reason } if parked => {
                        assert!(
                            reason.starts_with("payment pending, the voucher is not refused"),
                            "{reason}"
                        );
                        assert!(reason.contains("HTTP 422"), "{reason}");
                    }
                    RecordOutcome::Retry { reason, .. } if !parked => {
                        assert!(reason.contains("refused it (HTTP 422)"), "{reason}")
                    }
                    other => panic!("{option}: {other:?}"),
                }
            }
            // The refusal passes (a check account was fixed): the next attempt pays only.
            vendor.lock().unwrap().payment_fault = PaymentFault::default();
            VoucherWriter { client: &c }
                .write(&request, &records)
                .unwrap();
            assert_saved_and_paid_once(&vendor, &keys);
        }
    }

    #[test]
    fn a_pending_voucher_deleted_in_sevdesk_is_booked_anew() {
        let (host, vendor) = sevdesk(usize::MAX, Fault::BeforeSave);
        let c = client(&host);
        let keys = keys(1);
        PendingVouchers::new(c.host()).put(
            &keys[0],
            PendingVoucher {
                voucher_id: 4242,
                booked: 0,
            },
        );
        let (request, records) = batch(&keys);
        let outcomes = VoucherWriter { client: &c }
            .write(&request, &records)
            .unwrap();
        assert!(
            matches!(outcomes[0], RecordOutcome::Written { .. }),
            "{outcomes:?}"
        );
        assert_saved_and_paid_once(&vendor, &keys);
    }

    #[test]
    fn a_refused_token_fails_the_call() {
        let host = FakeHost::with_vendor(|_| {
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
