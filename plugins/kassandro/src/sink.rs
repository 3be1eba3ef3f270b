//! The write side: canonical sales → `POST /receipts` with the register's token, recognising
//! receipts already written by the idempotency key in their `customText`, then attachments.
//! A cancellation names the source's receipt; it is translated to the receipt this sink wrote
//! for that sale, found by the canonical sale id in its `customText`.

use std::collections::{BTreeSet, HashMap};

use chrono::{Days, NaiveDate};
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{ConnectorError, HttpRequest, RecordOutcome, WriteRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::attachment::AttachmentFile;
use crate::auth::TokenKind;
use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::error::KassandroError;
use crate::fields::array_answer;
use crate::receipt_details::{
    cancellation_details, receipt_details, ReceiptRequest, ID_LABEL, KEY_LABEL,
};
use crate::vienna;

/// How many days before a cancellation the sink looks for the receipt it cancels when that
/// receipt is not on the cancellation's own day (an assumption: Storno is a same-day or
/// short-term correction).
pub const CANCELLED_RECEIPT_LOOKBACK_DAYS: u64 = 31;

/// One record of the batch, prepared for sending.
struct Prepared {
    key: String,
    /// The canonical sale id, written into `customText` under [`ID_LABEL`].
    sale_id: String,
    /// The Vienna business day of the sale, where its receipt (or, for a cancellation, the
    /// cancelled receipt) is looked for first.
    day: NaiveDate,
    action: Action,
}

/// What a prepared record asks Kassandro to do.
enum Action {
    /// Create a receipt from this body, then upload these files.
    Create {
        body: String,
        files: Vec<AttachmentFile>,
    },
    /// Cancel the receipt this sink wrote for `cancelled_sale_id` (the source's number is
    /// `cancels`, for messages).
    Cancel {
        cancelled_sale_id: String,
        cancels: String,
    },
}

/// The register's receipts that posbridge wrote, by what their `customText` carries.
#[derive(Default)]
struct WrittenReceipts {
    /// Idempotency key → receipt number.
    by_key: HashMap<String, String>,
    /// Canonical sale id → receipt number.
    by_sale_id: HashMap<String, String>,
}

impl WrittenReceipts {
    fn add_listed(&mut self, receipt: &Value) {
        let Some(number) = receipt.get("receiptNumber").and_then(Value::as_str) else {
            return;
        };
        if let Some(key) = custom_text(receipt, KEY_LABEL) {
            self.by_key.insert(key, number.to_string());
        }
        if let Some(id) = custom_text(receipt, ID_LABEL) {
            self.by_sale_id.insert(id, number.to_string());
        }
    }

    fn add_written(&mut self, p: &Prepared, number: &str) {
        self.by_key.insert(p.key.clone(), number.to_string());
        self.by_sale_id
            .insert(p.sale_id.clone(), number.to_string());
    }
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
            .filter_map(|p| Some(p.as_ref().ok()?.day))
            .collect();
        let mut written = WrittenReceipts::default();
        for day in &days {
            self.scan(kind, *day, *day, &mut written)?;
        }
        // Cancelled receipts older than their cancellation's day are looked up once per batch.
        let cancel_days: BTreeSet<NaiveDate> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .filter(|p| matches!(p.action, Action::Cancel { .. }))
            .map(|p| p.day)
            .collect();
        let mut looked_back = false;

        let mut outcomes = Vec::with_capacity(records.len());
        for p in prepared {
            let p = match p {
                Ok(p) => p,
                Err(reason) => {
                    outcomes.push(RecordOutcome::Rejected { reason });
                    continue;
                }
            };
            if let Some(number) = written.by_key.get(&p.key) {
                outcomes.push(RecordOutcome::Duplicate {
                    external_id: Some(number.clone()),
                });
                continue;
            }
            let (body, files) = match &p.action {
                Action::Create { body, files } => (body.clone(), files.as_slice()),
                Action::Cancel {
                    cancelled_sale_id,
                    cancels,
                } => {
                    if !written.by_sale_id.contains_key(cancelled_sale_id) && !looked_back {
                        looked_back = true;
                        self.look_back(kind, &cancel_days, &mut written)?;
                    }
                    match written.by_sale_id.get(cancelled_sale_id) {
                        Some(target) => (cancellation_details(target).to_text(), &[][..]),
                        None => {
                            outcomes.push(RecordOutcome::Rejected {
                                reason: format!(
                                    "the cancelled receipt {cancels} ({cancelled_sale_id}) was not written by this sink"
                                ),
                            });
                            continue;
                        }
                    }
                }
            };
            let url = self.client.config().endpoint("receipts");
            let answer = self.client.send(kind, "POST receipts", || {
                HttpRequest::post(url.clone())
                    .header("Content-Type", "application/json")
                    .body(body.clone().into_bytes())
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
            written.add_written(&p, &number);
            if !files.is_empty() {
                let id = receipt.get("_id").and_then(Value::as_str).ok_or_else(|| {
                    KassandroError::bad_field("POST receipts", "receipt._id", "a string")
                })?;
                if let Err(reason) = self.upload_all(kind, id, files)? {
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

    /// Adds the receipts from [`CANCELLED_RECEIPT_LOOKBACK_DAYS`] before the first of
    /// `cancel_days` through the last of them.
    fn look_back(
        &self,
        kind: TokenKind,
        cancel_days: &BTreeSet<NaiveDate>,
        into: &mut WrittenReceipts,
    ) -> Result<(), ConnectorError> {
        let (Some(first), Some(last)) = (cancel_days.first(), cancel_days.last()) else {
            return Ok(());
        };
        let from = first
            .checked_sub_days(Days::new(CANCELLED_RECEIPT_LOOKBACK_DAYS))
            .unwrap_or(*first);
        self.scan(kind, from, *last, into)
    }

    /// Lists the register's receipts from day `from` to day `to` (inclusive) into `into`.
    fn scan(
        &self,
        kind: TokenKind,
        from: NaiveDate,
        to: NaiveDate,
        into: &mut WrittenReceipts,
    ) -> Result<(), ConnectorError> {
        let mut offset = 0usize;
        loop {
            // The cash-register endpoint spells its parameters in camel case (document).
            let q = format!(
                "receipts?dateFrom={from}T00:00:00&dateTo={to}T23:59:59&limit={MAX_PAGE_SIZE}&offset={offset}&withItems=false"
            );
            let page_name = format!("receipts?dateFrom={from}&dateTo={to}&offset={offset}");
            let body = self.client.get(kind, &q, &page_name)?;
            let receipts = array_answer(&body, &page_name)?;
            receipts.iter().for_each(|r| into.add_listed(r));
            offset += receipts.len();
            if receipts.len() < MAX_PAGE_SIZE as usize {
                return Ok(());
            }
        }
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

/// The value under `label` in a receipt's `customText`.
fn custom_text(receipt: &Value, label: &str) -> Option<String> {
    receipt
        .get("customText")?
        .as_array()?
        .iter()
        .find(|t| t.get("label").and_then(Value::as_str) == Some(label))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// Parses and checks one record; `Err` is the reason to reject it.
fn prepare(record: &Value, key: String) -> Result<Prepared, String> {
    let sale: Sale = serde_json::from_value(record.clone())
        .map_err(|e| format!("record is not a canonical sale: {e}"))?;
    let action = match receipt_details(&sale, &key)? {
        ReceiptRequest::Cancel { cancelled_sale_id } => Action::Cancel {
            cancelled_sale_id,
            cancels: sale.cancels.clone().unwrap_or_default(),
        },
        ReceiptRequest::Create(body) => {
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
            Action::Create {
                body: body.to_text(),
                files,
            }
        }
    };
    Ok(Prepared {
        key,
        day: vienna::to_vienna(&sale.timestamp).date_naive(),
        sale_id: sale.id,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use posbridge_plugin_api::model::Attachment;
    use serde_json::json;

    #[test]
    fn finds_key_and_sale_id_in_custom_text() {
        let r = json!({"receiptNumber": "1-000007", "customText": [{"label": "Tisch", "value": "4"},
            {"label": KEY_LABEL, "value": "k-9"}, {"label": ID_LABEL, "value": "src:s1:r1:42"}]});
        assert_eq!(custom_text(&r, KEY_LABEL).as_deref(), Some("k-9"));
        assert_eq!(custom_text(&json!({"receiptNumber": "1"}), KEY_LABEL), None);
        let mut written = WrittenReceipts::default();
        written.add_listed(&r);
        written.add_listed(&json!({"receiptNumber": "1-000008", "customText": []}));
        assert_eq!(
            written.by_key.get("k-9").map(String::as_str),
            Some("1-000007")
        );
        assert_eq!(
            written.by_sale_id.get("src:s1:r1:42").map(String::as_str),
            Some("1-000007")
        );
        assert_eq!((written.by_key.len(), written.by_sale_id.len()), (1, 1));
    }

    #[test]
    fn a_cancellation_points_at_the_cancelled_sale_of_the_same_register() {
        let mut sale = Sale::example();
        sale.kind = posbridge_plugin_api::model::SaleKind::Cancellation;
        sale.cancels = Some("000123".into());
        let p = prepare(&serde_json::to_value(&sale).unwrap(), "k".into()).unwrap();
        match p.action {
            Action::Cancel {
                cancelled_sale_id,
                cancels,
            } => {
                assert_eq!(cancels, "000123");
                assert_eq!(
                    cancelled_sale_id,
                    format!(
                        "{}:{}:{}:000123",
                        sale.source_system, sale.store_id, sale.register_id
                    )
                );
            }
            Action::Create { .. } => panic!("a cancellation must not create a receipt"),
        }
        assert_eq!(p.day.to_string(), "2026-02-01");
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
        assert!(matches!(&p.action, Action::Create { files, .. } if files.len() == 1));
        assert_eq!(p.day.to_string(), "2026-02-01");
        assert_eq!(p.sale_id, sale.id);
    }

    #[test]
    fn rejects_records_that_are_not_sales() {
        let reason = prepare(&json!({"id": 1}), "k".into()).err().unwrap();
        assert!(reason.contains("not a canonical sale"));
    }
}
