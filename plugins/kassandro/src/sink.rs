//! The write side: canonical sales → `POST /receipts` with the register's token, recognising
//! receipts already written by the idempotency key in their `customText`, then attachments.
//! A cancellation names the source's receipt; it is translated to the receipt this sink wrote
//! for that sale, found by the canonical sale id in its `customText`.

use std::collections::{BTreeSet, HashMap};

use chrono::{Days, NaiveDate};
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{ConnectorError, RecordOutcome, WriteRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::attachment::AttachmentFile;
use crate::auth::TokenKind;
use crate::client::Client;
use crate::config::MAX_PAGE_SIZE;
use crate::error::KassandroError;
use crate::fields::array_answer;
use crate::payment_names::{offered_names, PaymentNames};
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
    /// Idempotency key → the receipt.
    by_key: HashMap<String, Found>,
    /// Canonical sale id → receipt number.
    by_sale_id: HashMap<String, String>,
}

/// A receipt found by its idempotency key.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    number: String,
    /// Its `_id`, which attachments are uploaded to.
    id: Option<String>,
    /// The file names of its `attachmentUrls` (the last path segment).
    attachments: Vec<String>,
}

impl WrittenReceipts {
    fn add_listed(&mut self, receipt: &Value) {
        let Some(number) = receipt.get("receiptNumber").and_then(Value::as_str) else {
            return;
        };
        if let Some(key) = custom_text(receipt, KEY_LABEL) {
            let attachments = receipt
                .get("attachmentUrls")
                .and_then(Value::as_array)
                .map(|urls| {
                    urls.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|u| u.rsplit('/').next())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let id = receipt
                .get("_id")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.by_key.insert(
                key,
                Found {
                    number: number.to_string(),
                    id,
                    attachments,
                },
            );
        }
        if let Some(id) = custom_text(receipt, ID_LABEL) {
            self.by_sale_id.insert(id, number.to_string());
        }
    }

    fn add_written(&mut self, p: &Prepared, number: &str, id: Option<&str>) {
        self.by_key.insert(
            p.key.clone(),
            Found {
                number: number.to_string(),
                id: id.map(str::to_string),
                attachments: Vec::new(),
            },
        );
        self.by_sale_id
            .insert(p.sale_id.clone(), number.to_string());
    }
}

/// What one `write` call has learned so far.
struct BatchState {
    kind: TokenKind,
    written: WrittenReceipts,
    /// The days of the batch's cancellations, for the look-back.
    cancel_days: BTreeSet<NaiveDate>,
    looked_back: bool,
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
        let names = self.payment_names(kind)?;

        let prepared: Vec<Result<Prepared, String>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = request
                    .idempotency_keys
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("record {i} has no idempotency key"))?;
                prepare(r, key, &names)
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
        let mut batch = BatchState {
            kind,
            written,
            cancel_days,
            looked_back: false,
        };
        let mut outcomes = Vec::with_capacity(records.len());
        for p in prepared {
            let p = match p {
                Ok(p) => p,
                Err(reason) => {
                    outcomes.push(RecordOutcome::Rejected { reason });
                    continue;
                }
            };
            let outcome = RecordOutcome::of_write(self.write_one(&p, &mut batch))?;
            // Kassandro is down or rate limiting: the rest waits for the host's backoff.
            let rest = RecordOutcome::untried_after(&outcome);
            outcomes.push(outcome);
            if let Some(rest) = rest {
                outcomes.resize(records.len(), rest);
                break;
            }
        }
        Ok(outcomes)
    }

    /// Writes one prepared record. An `Err` leaves nothing half-known: the resend finds the
    /// receipt by its key if it was created, and uploads the attachments it still lacks.
    fn write_one(
        &self,
        p: &Prepared,
        batch: &mut BatchState,
    ) -> Result<RecordOutcome, ConnectorError> {
        let kind = batch.kind;
        if let Some(found) = batch.written.by_key.get(&p.key) {
            let number = found.number.clone();
            // A receipt written by an earlier attempt whose attachment upload failed.
            if let (Action::Create { files, .. }, Some(id)) = (&p.action, &found.id) {
                let missing: Vec<AttachmentFile> = files
                    .iter()
                    .filter(|f| !found.attachments.contains(&f.name))
                    .cloned()
                    .collect();
                if let Err(reason) = self.upload_all(kind, id, &missing)? {
                    return Ok(RecordOutcome::Rejected {
                        reason: format!("receipt {number} was written, but {reason}"),
                    });
                }
            }
            return Ok(RecordOutcome::Duplicate {
                external_id: Some(number),
            });
        }
        let (body, files) = match &p.action {
            Action::Create { body, files } => (body.clone(), files.as_slice()),
            Action::Cancel {
                cancelled_sale_id,
                cancels,
            } => {
                if !batch.written.by_sale_id.contains_key(cancelled_sale_id) && !batch.looked_back {
                    self.look_back(kind, &batch.cancel_days, &mut batch.written)?;
                    batch.looked_back = true;
                }
                match batch.written.by_sale_id.get(cancelled_sale_id) {
                    Some(target) => (cancellation_details(target).to_text(), &[][..]),
                    None => {
                        return Ok(RecordOutcome::Rejected {
                            reason: format!(
                                "the cancelled receipt {cancels} ({cancelled_sale_id}) was not written by this sink"
                            ),
                        });
                    }
                }
            }
        };
        let answer = self.client.send(kind, "POST receipts", |api| {
            api.post("receipts")
                .body(body.clone().into_bytes(), "application/json")
        });
        let receipt = match answer {
            Ok(body) => body.get("receipt").cloned().unwrap_or(Value::Null),
            Err(KassandroError::Refused { msg, .. }) => {
                return Ok(RecordOutcome::Rejected {
                    reason: format!("kassandro: {msg}"),
                });
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
        let id = receipt.get("_id").and_then(Value::as_str);
        batch.written.add_written(p, &number, id);
        if !files.is_empty() {
            let id = id.ok_or_else(|| {
                KassandroError::bad_field("POST receipts", "receipt._id", "a string")
            })?;
            if let Err(reason) = self.upload_all(kind, id, files)? {
                return Ok(RecordOutcome::Rejected {
                    reason: format!("receipt {number} was written, but {reason}"),
                });
            }
        }
        Ok(RecordOutcome::Written {
            external_id: Some(number),
        })
    }

    /// The register's payment method names (`GET /paymentmethods` with its token) and the
    /// configured table. A list the API refuses (an error answer) leaves the German fallback
    /// names, with a warning; a failed call fails the batch, to be retried.
    fn payment_names(&self, kind: TokenKind) -> Result<PaymentNames, ConnectorError> {
        let configured = self.client.config().payment_methods.clone();
        let offered = match self
            .client
            .get(kind, "paymentmethods", &[], "paymentmethods")
        {
            Ok(body) => Some(offered_names(&body)).filter(|names| !names.is_empty()),
            Err(KassandroError::Refused { msg, .. }) => {
                self.client.host().warn(&format!(
                    "kassandro: the register's payment methods could not be read ({msg}); writing the configured or German names"
                ));
                None
            }
            Err(e) => return Err(e.into()),
        };
        Ok(PaymentNames::new(configured, offered))
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
            let q = [
                ("dateFrom", format!("{from}T00:00:00")),
                ("dateTo", format!("{to}T23:59:59")),
                ("limit", MAX_PAGE_SIZE.to_string()),
                ("offset", offset.to_string()),
                ("withItems", "false".to_string()),
            ];
            let page_name = format!("receipts?dateFrom={from}&dateTo={to}&offset={offset}");
            let body = self.client.get(kind, "receipts", &q, &page_name)?;
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
        self.client.send(kind, "POST receiptattachment", |api| {
            api.post("receiptattachment")
                .body(body.clone(), &content_type)
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
fn prepare(record: &Value, key: String, names: &PaymentNames) -> Result<Prepared, String> {
    let sale: Sale = serde_json::from_value(record.clone())
        .map_err(|e| format!("record is not a canonical sale: {e}"))?;
    let action = match receipt_details(&sale, &key, names)? {
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
    use std::sync::{Arc, Mutex};

    use super::*;
    use base64::Engine;
    use posbridge_plugin_api::model::Attachment;
    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use posbridge_plugin_api::HttpResponse;
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
            written.by_key.get("k-9").map(|f| f.number.as_str()),
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
        let p = prepare(
            &serde_json::to_value(&sale).unwrap(),
            "k".into(),
            &PaymentNames::default(),
        )
        .unwrap();
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
        let reason = prepare(
            &serde_json::to_value(&sale).unwrap(),
            "k".into(),
            &PaymentNames::default(),
        )
        .err()
        .unwrap();
        assert!(reason.contains("5 MB"), "{reason}");
        sale.attachments[0] = Attachment {
            name: "run.exe".into(),
            url: Some("data:x;base64,AA==".into()),
            content_type: None,
        };
        let reason = prepare(
            &serde_json::to_value(&sale).unwrap(),
            "k".into(),
            &PaymentNames::default(),
        )
        .err()
        .unwrap();
        assert!(reason.contains("extension"), "{reason}");
        sale.attachments[0] = Attachment {
            name: "bon.txt".into(),
            url: Some("data:text/plain;base64,aGk=".into()),
            content_type: None,
        };
        let p = prepare(
            &serde_json::to_value(&sale).unwrap(),
            "k".into(),
            &PaymentNames::default(),
        )
        .unwrap();
        assert!(matches!(&p.action, Action::Create { files, .. } if files.len() == 1));
        assert_eq!(p.day.to_string(), "2026-02-01");
        assert_eq!(p.sale_id, sale.id);
    }

    /// A Kassandro keeping receipts in memory: `(number, _id, customText, attachment names)`.
    type Receipts = Arc<Mutex<Vec<(String, String, Value, Vec<String>)>>>;

    /// Which request the scripted 503 strikes (0-based, counted over the whole test).
    #[derive(Clone, Copy)]
    enum Fault {
        CreateReceipt(usize),
        Upload(usize),
    }

    fn kassandro(fault: Fault) -> (FakeHost, Receipts) {
        let receipts: Receipts = Arc::default();
        let counts = Arc::new(Mutex::new((0usize, 0usize)));
        let r = receipts.clone();
        let host = FakeHost::with_vendor(move |req| {
            let mut r = r.lock().unwrap();
            let mut counts = counts.lock().unwrap();
            let unavailable = HttpResponse {
                status: 503,
                headers: vec![],
                body: b"Service Unavailable".to_vec(),
            };
            let path = req.url.split("/v1.0/").nth(1).unwrap_or_default();
            if path.starts_with("gettoken?") {
                return Ok(json_response(
                    200,
                    &json!([{"error": false, "accountToken": "acc",
                    "cashRegisterToken": "reg", "cashRegisterId": 1}]),
                ));
            }
            if req.method == "GET" && path.starts_with("receipts?") {
                let list: Vec<Value> = r
                    .iter()
                    .map(|(n, id, t, files)| json!({"receiptNumber": n, "_id": id, "customText": t,
                        "attachmentUrls": files.iter().map(|f| format!("/cdn/storage/files.attachments/{id}/original/{f}")).collect::<Vec<_>>()}))
                    .collect();
                return Ok(json_response(200, &Value::Array(list)));
            }
            if req.method == "POST" && path == "receipts" {
                counts.0 += 1;
                if matches!(fault, Fault::CreateReceipt(n) if n + 1 == counts.0) {
                    return Ok(unavailable);
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                let number = format!("1-{:06}", r.len() + 1);
                let id = format!("rid{}", r.len() + 1);
                r.push((
                    number.clone(),
                    id.clone(),
                    body["customText"].clone(),
                    vec![],
                ));
                return Ok(json_response(
                    200,
                    &json!({"receipt": {"receiptNumber": number, "_id": id}}),
                ));
            }
            if req.method == "POST" && path == "receiptattachment" {
                counts.1 += 1;
                if matches!(fault, Fault::Upload(n) if n + 1 == counts.1) {
                    return Ok(unavailable);
                }
                let text = String::from_utf8_lossy(&req.body).to_string();
                let receipt = r
                    .iter_mut()
                    .find(|x| text.contains(&format!("\r\n\r\n{}\r\n", x.1)))
                    .unwrap();
                receipt.3.push("bon.txt".into());
                return Ok(json_response(200, &json!({"error": false})));
            }
            Ok(json_response(
                404,
                &json!({"error": true, "msg": "no route"}),
            ))
        });
        (host, receipts)
    }

    fn client(host: &FakeHost) -> Client {
        let cfg: crate::config::Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9", "api_key": "key", "cash_register_id": 1
        }))
        .unwrap();
        Client::new(host.host(), cfg)
    }

    fn batch(keys: &[String], from: usize) -> (WriteRequest, Vec<Value>) {
        let request = WriteRequest {
            stream: "sales".into(),
            idempotency_keys: keys[from..].to_vec(),
            ..WriteRequest::default()
        };
        let records = (from..keys.len())
            .map(|i| {
                let mut s = Sale::example();
                s.receipt_number = (i + 1).to_string();
                s.id = Sale::make_id("demo", "S1", "R1", &s.receipt_number);
                s.attachments = vec![Attachment {
                    name: "bon.txt".into(),
                    url: Some("data:text/plain;base64,aGk=".into()),
                    content_type: None,
                }];
                serde_json::to_value(s).unwrap()
            })
            .collect();
        (request, records)
    }

    fn assert_every_sale_once_with_its_file(receipts: &Receipts, keys: &[String]) {
        let r = receipts.lock().unwrap();
        assert_eq!(r.len(), keys.len(), "one receipt per sale");
        for k in keys {
            let found: Vec<_> = r
                .iter()
                .filter(|x| {
                    custom_text(&json!({"customText": x.2}), KEY_LABEL).as_deref() == Some(k)
                })
                .collect();
            assert_eq!(found.len(), 1, "{k}");
            assert_eq!(
                found[0].3,
                vec!["bon.txt".to_string()],
                "{k}: the file once"
            );
        }
    }

    #[test]
    fn a_503_on_record_3_keeps_records_0_to_2_and_the_resend_writes_each_sale_once() {
        for fault in [Fault::CreateReceipt(3), Fault::Upload(3)] {
            let (host, receipts) = kassandro(fault);
            let c = client(&host);
            let keys: Vec<String> = (0..6).map(|i| format!("key-{i}")).collect();
            let (request, records) = batch(&keys, 0);
            let outcomes = ReceiptWriter { client: &c }
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
            assert_eq!(
                receipts.lock().unwrap().len(),
                match fault {
                    Fault::CreateReceipt(_) => 3,
                    Fault::Upload(_) => 4,
                }
            );

            let (again, rest) = batch(&keys, 3);
            let outcomes = ReceiptWriter { client: &c }.write(&again, &rest).unwrap();
            assert!(outcomes.iter().all(|o| !o.is_retry()), "{outcomes:?}");
            if let Fault::Upload(_) = fault {
                assert!(
                    matches!(&outcomes[0], RecordOutcome::Duplicate { external_id: Some(n) } if n == "1-000004")
                );
            }
            assert_every_sale_once_with_its_file(&receipts, &keys);
        }
    }

    #[test]
    fn rejects_records_that_are_not_sales() {
        let reason = prepare(&json!({"id": 1}), "k".into(), &PaymentNames::default())
            .err()
            .unwrap();
        assert!(reason.contains("not a canonical sale"));
    }
}
