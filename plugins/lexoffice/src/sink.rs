//! The write side: sales (`per_sale`) and closures (`daily_summary`) → `POST /v1/vouchers`.
//!
//! lexoffice has no idempotency header, so each voucher carries a number derived from the
//! record's idempotency key (`PB-<key>`). Before a batch is booked, the vouchers already on
//! its days are listed (`voucherlist` filtered by type, any status and the batch's date range)
//! and a record whose numbers are all there is answered `Duplicate`.

use std::collections::HashMap;

use chrono::NaiveDate;
use posbridge_plugin_api::model::{Closure, Sale};
use posbridge_plugin_api::{ConnectorError, RecordOutcome, WriteRequest};
use serde_json::Value;

use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::error::LexofficeError;
use crate::mapping::Mapping;
use crate::voucher::{plan, Booking, PlannedVoucher, NUMBER_PREFIX};

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
                        let id = answer.get("id").and_then(Value::as_str).ok_or_else(|| {
                            LexofficeError::bad_field("POST vouchers", "id", "a string")
                        })?;
                        existing.insert(v.number.clone(), id.to_string());
                        ids.push(id.to_string());
                        created = true;
                    }
                    Err(LexofficeError::Refused { msg, status, .. }) => {
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
                    Err(e) => return Err(e.into()),
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
        let mut page = 0u32;
        loop {
            let q = format!(
                "voucherlist?voucherType={SALES_TYPES}&voucherStatus=any&voucherDateFrom={from}&voucherDateTo={to}&page={page}&size={MAX_PAGE_SIZE}"
            );
            let name = format!("voucherlist (page {page})");
            let body = self.client.get(&q, &name)?;
            let content = body
                .get("content")
                .and_then(Value::as_array)
                .ok_or_else(|| LexofficeError::bad_field(&name, "content", "an array"))?;
            for v in content {
                if let (Some(number), Some(id)) = (
                    v.get("voucherNumber").and_then(Value::as_str),
                    v.get("id").and_then(Value::as_str),
                ) {
                    if number.starts_with(NUMBER_PREFIX) {
                        found.insert(number.to_string(), id.to_string());
                    }
                }
            }
            let last = body.get("last").and_then(Value::as_bool).unwrap_or(true);
            if last || content.is_empty() {
                return Ok(found);
            }
            page += 1;
        }
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
    use super::*;
    use serde_json::json;

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
