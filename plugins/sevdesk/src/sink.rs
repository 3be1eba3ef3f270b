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
            outcomes.push(self.book(key, &booking)?);
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

    /// Saves one voucher (unless its key is found) and books what is not yet paid.
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
