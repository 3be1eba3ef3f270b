//! What the runner must know of each record before the ledger and the sink have their say —
//! its key, its fingerprint, whether it is a valid sale — worked out from the record's NDJSON
//! line without building a `serde_json::Value`: keys and fingerprints from a borrowed reading
//! of the line ([`Canonical`]), the sale check from a `Sale` deserialized from that reading.
//! A line that reading does not take (not UTF-8, not an object, a sale without an id whose key
//! needs members not kept, a sale that does not parse) goes the `Value` way, so that its result and its error read as
//! they always did. The line itself goes on to the sink as it came (no serialization again).
//! This is pure work on a page, so the runner does it on threads of its own, two pages at a
//! time and below the writer's priority, while the page before is being written
//! (`analyse_pages`).

use std::collections::VecDeque;
use std::ops::{Deref, Range};
use std::sync::Arc;

use bumpalo::Bump;
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::ConnectorError;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::analysis_threads::{answer_of, AnalysisThreads, JobFailed};
use super::canonical::Canonical;
use super::keys::SALE_FINGERPRINT_FIELDS;
use super::keys::{content_fingerprint, fingerprint_of, idempotency_key, key_of};
use crate::plugins::{PageBytes, ReadPage};

/// A record's NDJSON line (without its newline): a span of its page's bytes, shared by the
/// page's records rather than copied out of it.
#[derive(Clone)]
pub(super) struct Line {
    page: Arc<PageBytes>,
    span: Range<usize>,
}

impl Line {
    /// A line of its own (a record the source handed over as a value).
    pub fn owned(bytes: Vec<u8>) -> Self {
        let span = 0..bytes.len();
        Line {
            page: Arc::new(bytes.into()),
            span,
        }
    }
}

impl Deref for Line {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.page[self.span.clone()]
    }
}

/// One record, analysed.
pub(super) struct Analysed {
    pub key: String,
    pub fingerprint: Option<String>,
    /// The record as one line of compact-or-not JSON.
    pub line: Line,
    /// The line parsed here as one JSON object: the sink need not check it again.
    pub is_object: bool,
    /// Sales under validation: `Err(reason)` when the sale does not parse or reconcile.
    pub check: Option<Result<(), String>>,
    /// `daily_summary`: the parsed sale, or why it does not parse. Boxed: a page's records are
    /// one vector, and a sale inline would make it ~850 KB per 1,000 records.
    pub sale: Option<Result<Box<Sale>, String>>,
}

/// A record's [`Analysed`] facts, before its line joins them.
struct Facts {
    key: String,
    fingerprint: Option<String>,
    check: Option<Result<(), String>>,
    sale: Option<Result<Box<Sale>, String>>,
}

impl Facts {
    fn with_line(self, line: Line) -> Analysed {
        Analysed {
            key: self.key,
            fingerprint: self.fingerprint,
            line,
            is_object: true,
            check: self.check,
            sale: self.sale,
        }
    }
}

/// The members of a sale that its key and fingerprint read.
const SALE_KEY_FIELDS: [&str; 7] = [
    "id",
    SALE_FINGERPRINT_FIELDS[0],
    SALE_FINGERPRINT_FIELDS[1],
    SALE_FINGERPRINT_FIELDS[2],
    SALE_FINGERPRINT_FIELDS[3],
    SALE_FINGERPRINT_FIELDS[4],
    SALE_FINGERPRINT_FIELDS[5],
];

/// The arena a record's tree starts in: a generated sale of 1.6 KB of JSON takes ≈ 5.4 KB of it
/// (measured with `Bump::allocated_bytes`); a bigger record grows it.
const ARENA_BYTES: usize = 16 * 1024;

/// A page, analysed.
pub(super) struct AnalysedPage {
    pub records: Vec<Analysed>,
    pub cursor: Option<Value>,
}

/// Why a page did not come out of the analysis.
#[derive(Debug, thiserror::Error)]
pub(super) enum PageFailure {
    /// Reading it failed, or analysing it did.
    #[error(transparent)]
    Failed(#[from] ConnectorError),
    /// A line of it is not JSON. The source, asked with `ReadRequest::host_checks_lines`, may
    /// not have checked; read again without, it can say where in its own terms.
    #[error(transparent)]
    BadLine(ConnectorError),
}

/// What to work out for the records of one stream.
pub(super) struct Analyser {
    pub source: String,
    pub stream: String,
    /// Check sales with [`check_sale`].
    pub validate: bool,
    /// Keep each parsed sale (`daily_summary` sums them).
    pub keep_sales: bool,
}

impl Analyser {
    /// Parses each record of `page` once and works out what the runner needs of it.
    pub fn page(&self, page: ReadPage) -> Result<AnalysedPage, PageFailure> {
        let mut records = Vec::new();
        match page.lines {
            Some(lines) => {
                let (bytes, spans) = lines.into_parts();
                let bytes = Arc::new(bytes);
                records.reserve(spans.len());
                // Each record's tree, reset after it: one arena chunk serves the whole page.
                let mut arena = Bump::with_capacity(ARENA_BYTES);
                for (i, span) in spans.into_iter().enumerate() {
                    let line = Line {
                        page: bytes.clone(),
                        span,
                    };
                    let facts = self.borrowed(&line, &arena);
                    arena.reset();
                    if let Some(record) = facts {
                        records.push(record.with_line(line));
                        continue;
                    }
                    let value: Value = serde_json::from_slice(&line).map_err(|e| {
                        PageFailure::BadLine(ConnectorError::Permanent(format!(
                            "connector {}: record {} of the page is not valid JSON: {e}",
                            self.source,
                            i + 1
                        )))
                    })?;
                    records.push(self.record(value, line));
                }
            }
            None => {
                for value in page.records {
                    let line = serde_json::to_vec(&value)
                        .map_err(|e| ConnectorError::Bug(format!("record: {e}")))?;
                    records.push(self.record(value, Line::owned(line)));
                }
            }
        }
        Ok(AnalysedPage {
            records,
            cursor: page.cursor,
        })
    }

    /// What the runner needs of a line, from a borrowed reading of it; `None` when the line
    /// must go the `Value` way (see the module docs).
    fn borrowed(&self, line: &[u8], arena: &Bump) -> Option<Facts> {
        let text = std::str::from_utf8(line).ok()?;
        let sales = self.stream == "sales";
        let parse_sale = sales && (self.validate || self.keep_sales);
        // A sale's key reads its id, its fingerprint the money members; the sale check reads
        // everything. What no one reads (fiscal data, attachments, …) is checked but not built.
        let keep = (sales && !parse_sale).then_some(&SALE_KEY_FIELDS[..]);
        let view = Canonical::object_from_str(text, keep, arena).ok()?;
        if keep.is_some()
            && !matches!(
                view.get("id"),
                Some(Canonical::String(_) | Canonical::EscapedString(_) | Canonical::Number(_))
            )
        {
            // Without an id the key hashes the whole record, which was not kept.
            return None;
        }
        let (mut check, mut sale) = (None, None);
        if parse_sale {
            // Read from the tree, not from the line again. A sale that does not parse goes the
            // `Value` way, for the error it always had.
            let parsed = Sale::deserialize(&view).ok()?;
            check = self.validate.then(|| reconciles(&parsed));
            sale = self.keep_sales.then(|| Ok(Box::new(parsed)));
        }
        Some(Facts {
            key: key_of(&self.source, &self.stream, &view),
            fingerprint: fingerprint_of(&self.stream, &view),
            check,
            sale,
        })
    }

    fn record(&self, value: Value, line: Line) -> Analysed {
        let sales = self.stream == "sales";
        Analysed {
            is_object: value.is_object(),
            key: idempotency_key(&self.source, &self.stream, &value),
            fingerprint: content_fingerprint(&self.stream, &value),
            check: (sales && self.validate).then(|| check_sale(&value)),
            sale: (sales && self.keep_sales).then(|| {
                Sale::deserialize(&value)
                    .map(Box::new)
                    .map_err(|e| e.to_string())
            }),
            line,
        }
    }
}

/// Pages analysed at once, each on a blocking thread of its own. On two cores the analysis (a
/// full parse of every record) is the longest stage of a file pipeline; a second page in
/// analysis takes up the time the reader and the writer leave free. Not when the parsed sales
/// are kept (`daily_summary`): a page of them is ≈ 1 MB more, which put the 1 M-sale run over
/// 64 MiB (64.2 against 59.0 MiB), and that run's time is in its write phase anyway.
fn pages_analysed_at_once(analyser: &Analyser) -> usize {
    if analyser.keep_sales {
        1
    } else {
        2
    }
}

/// Analyses the pages coming from the reader, up to [`pages_analysed_at_once`] at a time on
/// threads of their own (at a lower priority than the writer: see [`super::analysis_threads`]), and
/// hands them to the writer in the order they came; ends when either side is gone. An error is
/// handed on as it came, after the pages before it.
pub(super) async fn analyse_pages(
    analyser: Arc<Analyser>,
    mut pages: mpsc::Receiver<Result<ReadPage, ConnectorError>>,
    out: mpsc::Sender<Result<AnalysedPage, PageFailure>>,
) {
    let at_once = pages_analysed_at_once(&analyser);
    let threads = match AnalysisThreads::start(at_once) {
        Ok(threads) => threads,
        Err(e) => {
            let e = ConnectorError::Bug(format!("cannot start the analysis threads: {e}"));
            let _ = out.send(Err(e.into())).await;
            return;
        }
    };
    let mut in_flight: VecDeque<Analysis> = VecDeque::new();
    let mut reading = true;
    loop {
        let room = in_flight.len() < at_once;
        tokio::select! {
            // The oldest first, so that pages leave in order and memory stays bounded.
            biased;
            done = async { in_flight.front_mut().expect("the branch is guarded").await },
                if !in_flight.is_empty() =>
            {
                in_flight.pop_front();
                if out.send(finished(done)).await.is_err() {
                    return;
                }
            }
            page = pages.recv(), if reading && room => match page {
                Some(Ok(page)) => {
                    let a = analyser.clone();
                    in_flight.push_back(threads.run(move || a.page(page)));
                }
                Some(Err(e)) => {
                    // After the pages read before it.
                    while let Some(earlier) = in_flight.pop_front() {
                        if out.send(finished(earlier.await)).await.is_err() {
                            return;
                        }
                    }
                    if out.send(Err(e.into())).await.is_err() {
                        return;
                    }
                }
                None => reading = false,
            },
            else => return,
        }
    }
}

/// A page's analysis on its thread.
type Analysis = oneshot::Receiver<Result<Result<AnalysedPage, PageFailure>, JobFailed>>;

/// What an analysis came to; a panic in it is a bug, reported as the page's error.
fn finished(
    received: Result<
        Result<Result<AnalysedPage, PageFailure>, JobFailed>,
        oneshot::error::RecvError,
    >,
) -> Result<AnalysedPage, PageFailure> {
    answer_of(received).unwrap_or_else(|e| {
        Err(ConnectorError::Bug(format!("analysing a page failed: {e}")).into())
    })
}

/// Checks that a record is a canonical sale that reconciles; the reason otherwise.
pub fn check_sale(record: &Value) -> Result<(), String> {
    // Deserialized from the borrowed value: no copy of the record.
    let sale = Sale::deserialize(record).map_err(|e| format!("not a canonical sale: {e}"))?;
    reconciles(&sale)
}

/// Whether a parsed sale reconciles; the reason otherwise.
fn reconciles(sale: &Sale) -> Result<(), String> {
    let v = sale.validate();
    if v.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "sale {} does not reconcile: {}",
            sale.id,
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::NdjsonLines;

    fn analyser(keep_sales: bool) -> Analyser {
        Analyser {
            source: "generic".into(),
            stream: "sales".into(),
            validate: true,
            keep_sales,
        }
    }

    #[test]
    fn lines_are_parsed_once_and_handed_on_as_they_came() {
        let text = b"{\"id\":\"a\",  \"kind\":\"sale\"}\n\n{\"id\":\"b\"}\n";
        let page = ReadPage {
            lines: Some(NdjsonLines::new(text.to_vec())),
            ..ReadPage::default()
        };
        let out = analyser(true).page(page).unwrap();
        assert_eq!(out.records.len(), 2);
        assert_eq!(&*out.records[0].line, b"{\"id\":\"a\",  \"kind\":\"sale\"}");
        assert_eq!(
            out.records[0].key,
            idempotency_key("generic", "sales", &serde_json::json!({"id": "a"}))
        );
        // Neither is a canonical sale: both checks fail, with the reason.
        let reason = out.records[1].check.clone().unwrap().unwrap_err();
        assert!(reason.starts_with("not a canonical sale"), "{reason}");
        assert!(out.records[1].sale.as_ref().unwrap().is_err());
    }

    /// Sales as the generator writes them, and the odd lines a source may hand over.
    fn lines_to_compare() -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        #[cfg(feature = "sandbox")]
        lines.extend(
            posbridge_sandbox::generator::generate_sales(60, 3)
                .iter()
                .map(|s| serde_json::to_string(s).unwrap()),
        );
        let sale = serde_json::json!({"id": "g:S1:K1:1", "source_system": "g", "store_id": "S1",
            "register_id": "K1", "receipt_number": "1", "kind": "sale",
            "business_day": "2025-01-06", "timestamp": "2025-01-06T08:16:33+01:00",
            "currency": "EUR",
            "lines": [{"name": "Brötchen", "quantity": "2", "unit_price": "0.50", "tax_rate": "7",
                "net": "0.93", "tax": "0.07", "gross": "1.00"}],
            "payments": [{"method": "cash", "amount": "1.00", "currency": "EUR"}],
            "taxes": [{"rate": "7", "net": "0.93", "tax": "0.07", "gross": "1.00"}],
            "totals": {"net": "0.93", "tax": "0.07", "gross": "1.00"}});
        let text = sale.to_string();
        lines.push(text.clone());
        // Numbers for amounts, escapes, spaces, keys out of order, a float.
        lines.push(
            text.replace("\"0.50\"", "0.5")
                .replace("Brötchen", "Br\\u00f6tchen \\\"hell\\\"")
                .replace(",\"", " , \"")
                .replace(
                    "{\"net\":\"0.93\",\"tax\":\"0.07\",\"gross\":\"1.00\"}",
                    "{\"gross\":\"1.00\",\"tax\":\"0.07\",\"net\":0.93e0}",
                ),
        );
        // Does not reconcile.
        lines.push(text.replace("\"gross\":\"1.00\"}}", "\"gross\":\"1.10\"}}"));
        // A numeric id, no id, a null id.
        lines.push(text.replace("\"g:S1:K1:1\"", "17"));
        lines.push(text.replace("\"id\":\"g:S1:K1:1\",", ""));
        lines.push(text.replace("\"g:S1:K1:1\"", "null"));
        // A member twice: the last one counts, as in a `Value`.
        lines.push(text.replacen("{", "{\"totals\":{\"gross\":\"9\"},\"kind\":\"x\",", 1));
        // Not a canonical sale, but a record with an id.
        lines.push(r#"{"id":"a","kind":"sale","lines":[{"qty":1}],"extra":{"b":1,"a":[]}}"#.into());
        // Escapes in a kept member's key, the raw-value marker, not an object.
        lines.push(text.replacen("\"currency\"", "\"curr\\u0065ncy\"", 1));
        lines.push(text.replacen("{", "{\"x\":{\"$serde_json::private::RawValue\":\"1\"},", 1));
        lines.push("[1,2]".into());
        // Types the sale does not take, or takes only from some shapes.
        lines.push(text.replace("\"kind\":\"sale\"", "\"kind\":{\"sale\":null}"));
        lines.push(text.replace("\"receipt_number\":\"1\"", "\"receipt_number\":1"));
        lines.push(text.replace("\"currency\":\"EUR\"", "\"currency\":true"));
        lines.push(text.replace(
            "\"lines\":[",
            "\"cashier\":{\"id\":null,\"name\":\"A\",\"x\":[1]},\"lines\":[",
        ));
        lines.push(text.replace("\"lines\":[", "\"fiscal\":{\"tse\":{\"serial_number\":\"s\",\"signature\":\"g\",\"signature_counter\":\"7\",\"transaction_number\":1}},\"lines\":["));
        lines
    }

    #[test]
    fn the_borrowed_reading_gives_what_the_value_gives() {
        let mut borrowed = 0;
        // One arena for every line, reset after each as `page` does.
        let mut arena = Bump::new();
        for stream in ["sales", "closures", "products"] {
            for (validate, keep_sales) in [(false, false), (true, false), (true, true)] {
                let a = Analyser {
                    source: "generic".into(),
                    stream: stream.into(),
                    validate,
                    keep_sales,
                };
                for text in lines_to_compare() {
                    let line = Line::owned(text.clone().into_bytes());
                    let value: Value = serde_json::from_str(&text).unwrap();
                    let old = a.record(value, line.clone());
                    let new = a.borrowed(&line, &arena);
                    arena.reset();
                    let Some(new) = new else {
                        continue;
                    };
                    borrowed += 1;
                    assert_eq!(new.key, old.key, "{stream}: {text}");
                    assert_eq!(new.fingerprint, old.fingerprint, "{stream}: {text}");
                    assert_eq!(new.check, old.check, "{stream}: {text}");
                    assert_eq!(
                        new.sale
                            .map(|s| s.map(|s| serde_json::to_value(s).unwrap())),
                        old.sale
                            .map(|s| s.map(|s| serde_json::to_value(s).unwrap())),
                        "{stream}: {text}"
                    );
                }
            }
        }
        // Most lines take the borrowed way; the odd ones are compared above when they do.
        assert!(borrowed > 60, "{borrowed}");
    }

    /// Only a line read here as a JSON object lets the sink skip its own check.
    #[test]
    fn a_line_is_marked_checked_only_when_it_is_an_object() {
        let page = ReadPage {
            lines: Some(NdjsonLines::new(b"{\"id\":\"a\"}\n[1,2]\n\"s\"\n".to_vec())),
            ..ReadPage::default()
        };
        let out = analyser(false).page(page).unwrap();
        let marks: Vec<bool> = out.records.iter().map(|r| r.is_object).collect();
        assert_eq!(marks, [true, false, false]);
        let values = ReadPage {
            records: vec![serde_json::json!({"id": "b"}), serde_json::json!([1])],
            ..ReadPage::default()
        };
        let out = analyser(false).page(values).unwrap();
        let marks: Vec<bool> = out.records.iter().map(|r| r.is_object).collect();
        assert_eq!(marks, [true, false]);
    }

    /// Pages are analysed two at a time but leave in the order they came, an error after the
    /// pages read before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn analysed_pages_leave_in_the_order_they_came() {
        let (pages_tx, pages_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(1);
        let task = tokio::spawn(analyse_pages(Arc::new(analyser(false)), pages_rx, out_tx));
        let mut expected = Vec::new();
        for page in 0..40 {
            let n = if page % 2 == 0 { 400 } else { 1 };
            let text: String = (0..n)
                .map(|i| format!("{{\"id\":\"{page}-{i}\"}}\n"))
                .collect();
            expected.push(idempotency_key(
                "generic",
                "sales",
                &serde_json::json!({"id": format!("{page}-0")}),
            ));
            let page = ReadPage {
                lines: Some(NdjsonLines::new(text.into_bytes())),
                ..ReadPage::default()
            };
            pages_tx.send(Ok(page)).await.unwrap();
        }
        pages_tx
            .send(Err(ConnectorError::Permanent("the source broke".into())))
            .await
            .unwrap();
        drop(pages_tx);
        let mut firsts = Vec::new();
        let mut error = None;
        while let Some(page) = out_rx.recv().await {
            match page {
                Ok(p) => {
                    assert!(error.is_none(), "a page after the error");
                    firsts.push(p.records[0].key.clone());
                }
                Err(e) => error = Some(e.to_string()),
            }
        }
        assert_eq!(firsts, expected);
        assert!(error.unwrap().contains("the source broke"));
        task.await.unwrap();
    }

    #[test]
    fn a_line_that_is_not_json_names_its_place_in_the_page() {
        let page = ReadPage {
            lines: Some(NdjsonLines::new(b"{\"id\":1}\n{oops\n".to_vec())),
            ..ReadPage::default()
        };
        let Err(e) = analyser(false).page(page) else {
            panic!("a broken line must fail the page");
        };
        assert!(
            e.to_string()
                .contains("record 2 of the page is not valid JSON"),
            "{e}"
        );
    }
}
