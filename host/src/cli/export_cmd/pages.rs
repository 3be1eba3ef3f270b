//! Reading a source page by page, each call retried the way the pipeline runner retries
//! (timeouts, backoff, `Retry-After`), until the source says there is no more.

use std::time::Duration;

use chrono::NaiveDate;
use posbridge_plugin_api::{ConnectorError, ReadRequest};
use serde_json::Value;

use crate::pipeline::PluginExecutor;
use crate::plugins::{ConnectorHandle, ReadPage};

/// Pages of one stream of one source, in order.
pub struct PageReader {
    handle: ConnectorHandle,
    exec: PluginExecutor,
    rt: tokio::runtime::Runtime,
    request: ReadRequest,
    done: bool,
}

impl PageReader {
    /// A reader starting at the beginning of `request.stream` (no cursor).
    pub fn new(
        handle: ConnectorHandle,
        exec: PluginExecutor,
        rt: tokio::runtime::Runtime,
        request: ReadRequest,
    ) -> Self {
        Self {
            handle,
            exec,
            rt,
            request,
            done: false,
        }
    }

    /// The next page's records, or `None` after the last page.
    pub fn next_page(&mut self) -> Result<Option<Vec<Value>>, ConnectorError> {
        if self.done {
            return Ok(None);
        }
        let handle = self.handle.clone();
        let request = self.request.clone();
        let what = format!("read {} from {}", request.stream, handle.name());
        let page: ReadPage = self
            .rt
            .block_on(self.exec.call(&what, move || handle.read(&request)))?;
        // A source that claims more but neither returns records nor moves its cursor would
        // make us loop for ever.
        if page.has_more && page.records.is_empty() && page.cursor == self.request.cursor {
            return Err(ConnectorError::Bug(format!(
                "{what}: has_more without records or a new cursor"
            )));
        }
        self.request.cursor = page.cursor;
        self.done = !page.has_more;
        Ok(Some(page.records))
    }

    /// How many calls were retried.
    pub fn retries(&self) -> u64 {
        self.exec.retries()
    }

    /// The runtime the calls run on (to wire Ctrl-C into it).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

/// A small runtime for the plugin calls: they block, so they run on its blocking threads
/// where the executor can time them out.
pub fn call_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_secs(10))
        .build()
}

/// The business-day window of `--from`/`--to`. Sources should apply it themselves (it is in
/// the read request); this drops what a source returns outside it anyway, judged by the
/// record's top-level `business_day`. Records without one are kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayWindow {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayWindow {
    /// Whether `record` belongs in the export.
    pub fn contains(&self, record: &Value) -> bool {
        let Some(day) = record
            .get("business_day")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<NaiveDate>().ok())
        else {
            return true;
        };
        !matches!(self.from, Some(f) if day < f) && !matches!(self.to, Some(t) if day > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_window_is_inclusive_and_keeps_records_without_a_business_day() {
        let w = DayWindow {
            from: NaiveDate::from_ymd_opt(2026, 2, 1),
            to: NaiveDate::from_ymd_opt(2026, 2, 3),
        };
        assert!(w.contains(&json!({"business_day": "2026-02-01"})));
        assert!(w.contains(&json!({"business_day": "2026-02-03"})));
        assert!(!w.contains(&json!({"business_day": "2026-01-31"})));
        assert!(!w.contains(&json!({"business_day": "2026-02-04"})));
        assert!(w.contains(&json!({"id": "p1"})));
        assert!(DayWindow::default().contains(&json!({"business_day": "1999-01-01"})));
    }
}
