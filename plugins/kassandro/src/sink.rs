//! The write side: canonical sales → `POST /receipts` with the register's token, recognising
//! receipts already written by the idempotency key in their `customText`, then attachments.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use posbridge_plugin_api::model::{Sale, SaleKind};
use posbridge_plugin_api::{ConnectorError, HttpRequest, RecordOutcome, WriteRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::attachment::AttachmentFile;
use crate::auth::TokenKind;
use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::error::KassandroError;
use crate::fields::array_answer;
use crate::receipt_details::{receipt_details, KEY_LABEL};
use crate::vienna;

/// One record of the batch, prepared for sending.
struct Prepared {
    key: String,
    day: Option<NaiveDate>,
    body: String,
    files: Vec<AttachmentFile>,
}

/// Writes batches of sales for the configured register.
pub struct ReceiptWriter<'a> {
    pub client: &'a Client,
}

impl ReceiptWriter<'_> {
    pub fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        if request.stream != "sales" {
            return Err(ConnectorError::Config(format!(
                "kassandro writes only the sales stream, not {:?}",
                request.stream
            )));
        }
        let register = self.client.config().cash_register_id.ok_or_else(|| {
            ConnectorError::Config("kassandro: cash_register_id is needed to write receipts".into())
        })?;
        let kind = TokenKind::CashRegister(register);

        let prepared: Vec<Result<Prepared, String>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = request
                    .idempotency_keys
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("record {i} has no idempotency key"))?;
                prepare(r, key)
            })
            .collect();

        let days: BTreeSet<NaiveDate> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok()?.day)
            .collect();
        let mut written = self.existing_keys(kind, &days)?;

        let mut outcomes = Vec::with_capacity(records.len());
        for p in prepared {
            let p = match p {
                Ok(p) => p,
                Err(reason) => {
                    outcomes.push(RecordOutcome::Rejected { reason });
                    continue;
                }
            };
            if let Some(number) = written.get(&p.key) {
                outcomes.push(RecordOutcome::Duplicate {
                    external_id: Some(number.clone()),
                });
                continue;
            }
            let url = self.client.config().endpoint("receipts");
            let answer = self.client.send(kind, "POST receipts", || {
                HttpRequest::post(url.clone())
                    .header("Content-Type", "application/json")
                    .body(p.body.clone().into_bytes())
            });
            let receipt = match answer {
                Ok(body) => body.get("receipt").cloned().unwrap_or(Value::Null),
                Err(KassandroError::Refused { msg, .. }) => {
                    outcomes.push(RecordOutcome::Rejected {
                        reason: format!("kassandro: {msg}"),
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let number = receipt
                .get("receiptNumber")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    KassandroError::bad_field("POST receipts", "receipt.receiptNumber", "a string")
                })?
                .to_string();
            written.insert(p.key.clone(), number.clone());
            if !p.files.is_empty() {
                let id = receipt.get("_id").and_then(Value::as_str).ok_or_else(|| {
                    KassandroError::bad_field("POST receipts", "receipt._id", "a string")
                })?;
                if let Err(reason) = self.upload_all(kind, id, &p.files)? {
                    outcomes.push(RecordOutcome::Rejected {
                        reason: format!("receipt {number} was written, but {reason}"),
                    });
                    continue;
                }
            }
            outcomes.push(RecordOutcome::Written {
                external_id: Some(number),
            });
        }
        Ok(outcomes)
    }

    /// Idempotency key → receipt number of the register's receipts on these days.
    fn existing_keys(
        &self,
        kind: TokenKind,
        days: &BTreeSet<NaiveDate>,
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let mut found = HashMap::new();
        for day in days {
            let mut offset = 0usize;
            loop {
                // The cash-register endpoint spells its parameters in camel case (document).
                let q = format!(
                    "receipts?dateFrom={day}T00:00:00&dateTo={day}T23:59:59&limit={MAX_PAGE_SIZE}&offset={offset}&withItems=false"
                );
                let page_name = format!("receipts?dateFrom={day}&offset={offset}");
                let body = self.client.get(kind, &q, &page_name)?;
                let receipts = array_answer(&body, &page_name)?;
                for r in receipts {
                    if let (Some(key), Some(number)) =
                        (key_of(r), r.get("receiptNumber").and_then(Value::as_str))
                    {
                        found.insert(key, number.to_string());
                    }
                }
                offset += receipts.len();
                if receipts.len() < MAX_PAGE_SIZE as usize {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Uploads the files of one receipt; `Ok(Err(reason))` when the API refused one.
    pub fn upload_all(
        &self,
        kind: TokenKind,
        receipt_id: &str,
        files: &[AttachmentFile],
    ) -> Result<Result<(), String>, ConnectorError> {
        for f in files {
            match self.upload(kind, receipt_id, f) {
                Ok(_) => {}
                Err(KassandroError::Refused { msg, .. }) => {
                    return Ok(Err(format!("attachment {} was refused: {msg}", f.name)))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Ok(()))
    }

    /// `POST /receiptattachment` of one (already checked) file.
    pub fn upload(
        &self,
        kind: TokenKind,
        receipt_id: &str,
        file: &AttachmentFile,
    ) -> Result<Value, KassandroError> {
        let boundary = format!(
            "posbridge-{}",
            &hex::encode(Sha256::digest(
                [receipt_id.as_bytes(), file.name.as_bytes()].concat()
            ))[..24]
        );
        let (body, content_type) = file.multipart(receipt_id, &boundary);
        let url = self.client.config().endpoint("receiptattachment");
        self.client.send(kind, "POST receiptattachment", || {
            HttpRequest::post(url.clone())
                .header("Content-Type", content_type.clone())
                .body(body.clone())
        })
    }
}

/// The idempotency key a receipt carries in its `customText`.
fn key_of(receipt: &Value) -> Option<String> {
    receipt
        .get("customText")?
        .as_array()?
        .iter()
        .find(|t| t.get("label").and_then(Value::as_str) == Some(KEY_LABEL))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// Parses and checks one record; `Err` is the reason to reject it.
fn prepare(record: &Value, key: String) -> Result<Prepared, String> {
    let sale: Sale = serde_json::from_value(record.clone())
        .map_err(|e| format!("record is not a canonical sale: {e}"))?;
    let body = receipt_details(&sale, &key)?.to_text();
    let mut files = Vec::new();
    for a in &sale.attachments {
        let Some(url) = a.url.as_deref() else {
            continue;
        };
        if let Some(file) = AttachmentFile::from_data_url(&a.name, url) {
            let file = file.map_err(|e| e.to_string())?;
            file.check().map_err(|e| e.to_string())?;
            files.push(file);
        }
    }
    // Cancellations carry no customText, so only the other kinds can be looked up by key.
    let day = (sale.kind != SaleKind::Cancellation)
        .then(|| vienna::to_vienna(&sale.timestamp).date_naive());
    Ok(Prepared {
        key,
        day,
        body,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use posbridge_plugin_api::model::Attachment;
    use serde_json::json;

    #[test]
    fn finds_the_key_in_custom_text() {
        let r = json!({"receiptNumber": "1", "customText": [{"label": "Tisch", "value": "4"},
            {"label": KEY_LABEL, "value": "k-9"}]});
        assert_eq!(key_of(&r).as_deref(), Some("k-9"));
        assert_eq!(key_of(&json!({"receiptNumber": "1"})), None);
    }

    #[test]
    fn rejects_bad_attachments_before_sending() {
        let mut sale = Sale::example();
        let big =
            base64::engine::general_purpose::STANDARD
                .encode(vec![0u8; crate::attachment::MAX_BYTES + 1]);
        sale.attachments = vec![Attachment {
            name: "scan.pdf".into(),
            url: Some(format!("data:application/pdf;base64,{big}")),
            content_type: None,
        }];
        let reason = prepare(&serde_json::to_value(&sale).unwrap(), "k".into())
            .err()
            .unwrap();
        assert!(reason.contains("5 MB"), "{reason}");
        sale.attachments[0] = Attachment {
            name: "run.exe".into(),
            url: Some("data:x;base64,AA==".into()),
            content_type: None,
        };
        let reason = prepare(&serde_json::to_value(&sale).unwrap(), "k".into())
            .err()
            .unwrap();
        assert!(reason.contains("extension"), "{reason}");
        sale.attachments[0] = Attachment {
            name: "bon.txt".into(),
            url: Some("data:text/plain;base64,aGk=".into()),
            content_type: None,
        };
        let p = prepare(&serde_json::to_value(&sale).unwrap(), "k".into()).unwrap();
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.day.unwrap().to_string(), "2026-02-01");
    }

    #[test]
    fn rejects_records_that_are_not_sales() {
        let reason = prepare(&json!({"id": 1}), "k".into()).err().unwrap();
        assert!(reason.contains("not a canonical sale"));
    }
}
