//! What the runner must know of each record before the ledger and the sink have their say —
//! its key, its fingerprint, whether it is a valid sale — worked out from ONE parse of the
//! record's NDJSON line. The line itself goes on to the sink as it came (no serialization
//! again). This is pure work on a page, so the runner does it on a thread of its own while
//! the previous page is being written (`analyse_pages`).

use std::ops::{Deref, Range};
use std::sync::Arc;

use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::ConnectorError;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::keys::{content_fingerprint, idempotency_key};
use crate::plugins::ReadPage;

/// A record's NDJSON line (without its newline): a span of its page's bytes, shared by the
/// page's records rather than copied out of it.
#[derive(Clone)]
pub(super) struct Line {
    page: Arc<Vec<u8>>,
    span: Range<usize>,
}

impl Line {
    /// A line of its own (a record the source handed over as a value).
    pub fn owned(bytes: Vec<u8>) -> Self {
        let span = 0..bytes.len();
        Line {
            page: Arc::new(bytes),
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
    /// Sales under validation: `Err(reason)` when the sale does not parse or reconcile.
    pub check: Option<Result<(), String>>,
    /// `daily_summary`: the parsed sale, or why it does not parse.
    pub sale: Option<Result<Sale, String>>,
}

/// A page, analysed.
pub(super) struct AnalysedPage {
    pub records: Vec<Analysed>,
    pub cursor: Option<Value>,
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
    pub fn page(&self, page: ReadPage) -> Result<AnalysedPage, ConnectorError> {
        let mut records = Vec::new();
        match page.lines {
            Some(lines) => {
                let (bytes, spans) = lines.into_parts();
                let bytes = Arc::new(bytes);
                records.reserve(spans.len());
                for (i, span) in spans.into_iter().enumerate() {
                    let line = Line {
                        page: bytes.clone(),
                        span,
                    };
                    let value: Value = serde_json::from_slice(&line).map_err(|e| {
                        ConnectorError::Permanent(format!(
                            "connector {}: record {} of the page is not valid JSON: {e}",
                            self.source,
                            i + 1
                        ))
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

    fn record(&self, value: Value, line: Line) -> Analysed {
        let sales = self.stream == "sales";
        Analysed {
            key: idempotency_key(&self.source, &self.stream, &value),
            fingerprint: content_fingerprint(&self.stream, &value),
            check: (sales && self.validate).then(|| check_sale(&value)),
            sale: (sales && self.keep_sales)
                .then(|| Sale::deserialize(&value).map_err(|e| e.to_string())),
            line,
        }
    }
}

/// Analyses the pages coming from the reader, one at a time on a blocking thread, and hands
/// them to the writer; ends when either side is gone. An error is handed on as it came.
pub(super) async fn analyse_pages(
    analyser: Arc<Analyser>,
    mut pages: mpsc::Receiver<Result<ReadPage, ConnectorError>>,
    out: mpsc::Sender<Result<AnalysedPage, ConnectorError>>,
) {
    while let Some(page) = pages.recv().await {
        let analysed = match page {
            Ok(page) => {
                let a = analyser.clone();
                tokio::task::spawn_blocking(move || a.page(page))
                    .await
                    .unwrap_or_else(|e| {
                        Err(ConnectorError::Bug(format!("analysing a page failed: {e}")))
                    })
            }
            Err(e) => Err(e),
        };
        if out.send(analysed).await.is_err() {
            break;
        }
    }
}

/// Checks that a record is a canonical sale that reconciles; the reason otherwise.
pub fn check_sale(record: &Value) -> Result<(), String> {
    // Deserialized from the borrowed value: no copy of the record.
    let sale = Sale::deserialize(record).map_err(|e| format!("not a canonical sale: {e}"))?;
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
