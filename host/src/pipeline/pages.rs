//! The one page loop: reads a stream of a source page after page, following `cursor` while
//! `has_more`, through the [`PluginExecutor`] (timeouts, retries), and stops with a
//! [`PageError`] when the source goes round in circles instead of reading on for ever.
//!
//! The runner's reader task, `posbridge export` and the demo all read through it.
//!
//! A source is stopped when
//! - it says more pages follow but gives no cursor;
//! - it hands back a cursor this loop already followed (tokens alternating A, B, A, …);
//! - a page has the same records as an earlier page of this loop (a server that ignores the
//!   page parameter);
//! - `max_empty_pages` pages in a row have no records while it says more follow.
//!
//! Cursors and pages are remembered as 128-bit hashes of their canonical JSON, so memory
//! grows by a few dozen bytes per page, not with the records.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use posbridge_plugin_api::{ConnectorError, ReadRequest};
use serde_json::Value;
use tokio::sync::mpsc;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::{Delivery, PluginExecutor, RetryPolicy};
use crate::plugins::{ConnectorHandle, ReadPage};
use crate::runtime::CancelFlag;

/// Characters of a cursor shown in an error; longer cursors are cut.
const SHOWN_CURSOR_CHARS: usize = 200;

/// Why a page loop stopped before the source said it had no more.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The read failed (after the executor's retries).
    #[error(transparent)]
    Read(#[from] ConnectorError),
    #[error(
        "connector {connector}, stream {stream}: page {page} (read at cursor {cursor}) says more \
         pages follow but gives no cursor"
    )]
    NoCursor {
        connector: String,
        stream: String,
        cursor: String,
        page: u64,
    },
    #[error(
        "connector {connector}, stream {stream}: page {page} hands back cursor {cursor}, which \
         this run already followed; the source goes round in circles, so reading stops"
    )]
    CursorSeenBefore {
        connector: String,
        stream: String,
        cursor: String,
        page: u64,
    },
    #[error(
        "connector {connector}, stream {stream}: page {page} (read at cursor {cursor}) has the \
         same records as page {first} of this run; the source does not move on, so reading stops"
    )]
    PageSeenBefore {
        connector: String,
        stream: String,
        cursor: String,
        page: u64,
        first: u64,
    },
    #[error(
        "connector {connector}, stream {stream}: {count} pages in a row without records while \
         the source says more follow (last read at cursor {cursor}); reading stops \
         (delivery.max_empty_pages is {count})"
    )]
    TooManyEmptyPages {
        connector: String,
        stream: String,
        cursor: String,
        count: u32,
    },
}

impl PageError {
    /// Whether the read was cancelled (Ctrl-C), rather than failed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Read(ConnectorError::Cancelled))
    }
}

/// The runner's channel carries `ConnectorError`: a source going round in circles is
/// `Permanent` (retrying cannot help), a missing cursor a `Bug` of the connector.
impl From<PageError> for ConnectorError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::Read(e) => e,
            e @ PageError::NoCursor { .. } => ConnectorError::Bug(e.to_string()),
            e => ConnectorError::Permanent(e.to_string()),
        }
    }
}

/// Something pages can be read from: a connector, or a fake one in tests.
pub trait PageSource: Send + Sync + 'static {
    /// The connector's name, for errors.
    fn connector(&self) -> &str;
    /// Reads one page.
    fn read_page(&self, request: &ReadRequest) -> Result<ReadPage, ConnectorError>;
    /// Reads one page, its records left as NDJSON lines where the source can (see
    /// [`ReadPage::lines`]).
    fn read_page_lines(&self, request: &ReadRequest) -> Result<ReadPage, ConnectorError> {
        self.read_page(request)
    }
    /// Blanks secrets out of text shown to people (a cursor in an error).
    fn redact(&self, text: &str) -> String {
        text.to_string()
    }
}

impl PageSource for ConnectorHandle {
    fn connector(&self) -> &str {
        self.name()
    }
    fn read_page(&self, request: &ReadRequest) -> Result<ReadPage, ConnectorError> {
        self.read(request)
    }
    fn read_page_lines(&self, request: &ReadRequest) -> Result<ReadPage, ConnectorError> {
        self.read_lines(request)
    }
    fn redact(&self, text: &str) -> String {
        self.redactor().redact(text)
    }
}

/// A 128-bit hash of canonical JSON (xxh3: the guard only compares pages of one run in memory,
/// so it needs no cryptographic hash, and SHA-256 of every page was ≈ 4 % of a file run's CPU).
type Digest128 = [u8; 16];

/// Remembers what a loop has seen and judges each new page.
struct Guard {
    connector: String,
    stream: String,
    max_empty_pages: u32,
    /// Every cursor followed, the start included.
    cursors: HashSet<Digest128>,
    /// Every non-empty page's records, with the number of the page they were first seen on.
    pages: HashMap<Digest128, u64>,
    pages_read: u64,
    empty_in_a_row: u32,
}

impl Guard {
    fn new(
        connector: &str,
        stream: &str,
        start: Option<&Value>,
        max_empty_pages: NonZeroU32,
    ) -> Self {
        let mut cursors = HashSet::new();
        cursors.insert(cursor_digest(start));
        Self {
            connector: connector.to_string(),
            stream: stream.to_string(),
            max_empty_pages: max_empty_pages.get(),
            cursors,
            pages: HashMap::new(),
            pages_read: 0,
            empty_in_a_row: 0,
        }
    }

    /// Checks `page`, read at cursor `asked`, before it is handed on.
    fn check(
        &mut self,
        asked: Option<&Value>,
        page: &ReadPage,
        show: impl Fn(Option<&Value>) -> String,
    ) -> Result<(), PageError> {
        self.pages_read += 1;
        let (connector, stream, page_no) =
            (self.connector.clone(), self.stream.clone(), self.pages_read);
        if page.has_more && page.cursor.is_none() {
            return Err(PageError::NoCursor {
                connector,
                stream,
                cursor: show(asked),
                page: page_no,
            });
        }
        if page_len(page) == 0 {
            if page.has_more {
                self.empty_in_a_row += 1;
                if self.empty_in_a_row >= self.max_empty_pages {
                    return Err(PageError::TooManyEmptyPages {
                        connector,
                        stream,
                        cursor: show(asked),
                        count: self.empty_in_a_row,
                    });
                }
            }
        } else {
            self.empty_in_a_row = 0;
            let digest = match &page.lines {
                // Lines are hashed as sent: a source sending the same records sends the same bytes.
                Some(lines) => xxh3_128(lines.bytes()).to_le_bytes(),
                None => records_digest(&page.records),
            };
            if let Some(&first) = self.pages.get(&digest) {
                return Err(PageError::PageSeenBefore {
                    connector,
                    stream,
                    cursor: show(asked),
                    page: page_no,
                    first,
                });
            }
            self.pages.insert(digest, page_no);
        }
        if page.has_more && !self.cursors.insert(cursor_digest(page.cursor.as_ref())) {
            return Err(PageError::CursorSeenBefore {
                connector,
                stream,
                cursor: show(page.cursor.as_ref()),
                page: page_no,
            });
        }
        Ok(())
    }
}

/// Reads one stream of a source page by page. Each [`PageLoop::next_page`] is one read.
pub struct PageLoop {
    source: Arc<dyn PageSource>,
    exec: PluginExecutor,
    request: ReadRequest,
    guard: Guard,
    done: bool,
    /// Read pages as NDJSON lines ([`PageSource::read_page_lines`]).
    lines: bool,
}

impl PageLoop {
    /// A loop starting at `request.cursor` (`None`: the start of the stream).
    pub fn new(
        source: impl PageSource,
        exec: PluginExecutor,
        request: ReadRequest,
        max_empty_pages: NonZeroU32,
    ) -> Self {
        let guard = Guard::new(
            source.connector(),
            &request.stream,
            request.cursor.as_ref(),
            max_empty_pages,
        );
        Self {
            source: Arc::new(source),
            exec,
            request,
            guard,
            done: false,
            lines: false,
        }
    }

    /// Reads the pages with their records as NDJSON lines, unparsed ([`ReadPage::lines`]).
    pub fn with_lines(mut self) -> Self {
        self.lines = true;
        self
    }

    /// The next page, or `None` after the last one (or after an error).
    pub async fn next_page(&mut self) -> Result<Option<ReadPage>, PageError> {
        if self.done {
            return Ok(None);
        }
        // Whatever happens below, an error ends the loop.
        self.done = true;
        let source = self.source.clone();
        let request = self.request.clone();
        let what = format!("read {} from {}", request.stream, source.connector());
        let lines = self.lines;
        let page = self
            .exec
            .call(&what, move || {
                if lines {
                    source.read_page_lines(&request)
                } else {
                    source.read_page(&request)
                }
            })
            .await?;
        let source = &self.source;
        self.guard.check(self.request.cursor.as_ref(), &page, |c| {
            shown_cursor(source.as_ref(), c)
        })?;
        if page.has_more {
            self.request.cursor = page.cursor.clone();
            self.done = false;
        }
        Ok(Some(page))
    }

    /// Sends every page into `tx`, then stops: after the last page, after the first error
    /// (which is sent too), when `cancel` is set, or when the receiver is gone.
    pub async fn pump(
        mut self,
        tx: mpsc::Sender<Result<ReadPage, ConnectorError>>,
        cancel: CancelFlag,
    ) {
        while !cancel.is_cancelled() {
            let sent = match self.next_page().await {
                Ok(Some(page)) => tx.send(Ok(page)).await,
                Ok(None) => break,
                Err(e) => tx.send(Err(e.into())).await,
            };
            if sent.is_err() {
                break;
            }
        }
    }

    /// How many calls the executor retried so far.
    pub fn retries(&self) -> u64 {
        self.exec.retries()
    }
}

/// An executor for callers without a runner (`export`, the demo): one call at a time, with
/// the delivery settings' timeout and retries.
pub fn standalone_executor(delivery: &Delivery, cancel: CancelFlag) -> PluginExecutor {
    PluginExecutor::new(
        1,
        Duration::from_secs(delivery.timeout_secs.max(1)),
        RetryPolicy::from_delivery(delivery),
        cancel,
    )
}

/// A [`PageLoop`] for synchronous callers: it brings its own small runtime and blocks on it.
pub struct BlockingPageLoop {
    rt: tokio::runtime::Runtime,
    pages: PageLoop,
}

impl BlockingPageLoop {
    /// Reads `request.stream` of `source` with the timeout, retries and `max_empty_pages` of
    /// `delivery`. Must not be called from inside a tokio runtime.
    pub fn new(
        source: impl PageSource,
        request: ReadRequest,
        delivery: &Delivery,
        cancel: CancelFlag,
    ) -> std::io::Result<Self> {
        // The plugin calls block, so they run on this runtime's blocking threads where the
        // executor can time them out.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_keep_alive(Duration::from_secs(10))
            .build()?;
        let exec = standalone_executor(delivery, cancel);
        Ok(Self {
            rt,
            pages: PageLoop::new(source, exec, request, delivery.max_empty_pages),
        })
    }

    /// The next page, or `None` after the last one.
    pub fn next_page(&mut self) -> Result<Option<ReadPage>, PageError> {
        self.rt.block_on(self.pages.next_page())
    }

    /// How many calls were retried so far.
    pub fn retries(&self) -> u64 {
        self.pages.retries()
    }

    /// The runtime the calls run on (to wire Ctrl-C into it).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

/// A cursor as shown in an error: compact JSON, secrets blanked, cut to 200 characters.
fn shown_cursor(source: &dyn PageSource, cursor: Option<&Value>) -> String {
    let Some(c) = cursor else {
        return "none (the start)".into();
    };
    let text = source.redact(&c.to_string());
    match text.char_indices().nth(SHOWN_CURSOR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// How many records a page has, parsed or as lines.
pub fn page_len(page: &ReadPage) -> usize {
    page.lines.as_ref().map_or(page.records.len(), |l| l.len())
}

fn cursor_digest(cursor: Option<&Value>) -> Digest128 {
    let mut h = Xxh3::new();
    // No cursor and a `null` cursor both mean the start.
    canonical(&mut h, cursor.unwrap_or(&Value::Null));
    digest_of(h)
}

fn records_digest(records: &[Value]) -> Digest128 {
    let mut h = Xxh3::new();
    for r in records {
        canonical(&mut h, r);
        h.update(b"\n");
    }
    digest_of(h)
}

fn digest_of(h: Xxh3) -> Digest128 {
    h.digest128().to_le_bytes()
}

/// Feeds `v` as JSON with object keys sorted, so that key order does not matter.
fn canonical(h: &mut Xxh3, v: &Value) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            h.update(b"{");
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                h.update(Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                canonical(h, v);
            }
            h.update(b"}");
        }
        Value::Array(items) => {
            h.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                canonical(h, item);
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    /// A source answering with `answer(call number, cursor asked)`, counting its calls.
    struct FakeSource<F> {
        answer: F,
        calls: Arc<AtomicUsize>,
    }

    impl<F> PageSource for FakeSource<F>
    where
        F: Fn(usize, Option<&Value>) -> ReadPage + Send + Sync + 'static,
    {
        fn connector(&self) -> &str {
            "fake"
        }
        fn read_page(&self, request: &ReadRequest) -> Result<ReadPage, ConnectorError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            Ok((self.answer)(n, request.cursor.as_ref()))
        }
    }

    fn page(records: Vec<Value>, cursor: Option<Value>, has_more: bool) -> ReadPage {
        ReadPage {
            records,
            cursor,
            has_more,
            lines: None,
        }
    }

    fn sale(i: u64) -> Value {
        json!({"id": format!("s{i}"), "gross": format!("{i}.50")})
    }

    /// Reads until the loop ends; the pages, the error if any and the number of reads.
    fn read_all<F>(answer: F, max_empty_pages: u32) -> (Vec<ReadPage>, Option<PageError>, usize)
    where
        F: Fn(usize, Option<&Value>) -> ReadPage + Send + Sync + 'static,
    {
        let (source, calls) = fake(answer);
        let delivery = Delivery {
            max_empty_pages: NonZeroU32::new(max_empty_pages).unwrap(),
            ..Delivery::default()
        };
        let mut pages =
            BlockingPageLoop::new(source, sales_request(), &delivery, CancelFlag::new()).unwrap();
        let mut read = Vec::new();
        let mut error = None;
        // A safety net for the test itself: the loop under test must stop far earlier.
        for _ in 0..1000 {
            match pages.next_page() {
                Ok(Some(p)) => read.push(p),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        (read, error, calls.load(Ordering::SeqCst))
    }

    #[test]
    fn a_normal_multi_page_source_gives_every_page_once() {
        // 7 records, 2 per page, the cursor an offset: 4 pages, the last one short.
        let (pages, error, calls) = read_all(
            |_, cursor| {
                let start = cursor.and_then(|c| c["offset"].as_u64()).unwrap_or(0);
                let records: Vec<Value> = (start..7).take(2).map(sale).collect();
                let next = start + records.len() as u64;
                page(records, Some(json!({"offset": next})), next < 7)
            },
            3,
        );
        assert!(error.is_none(), "{error:?}");
        assert_eq!(calls, 4);
        let ids: Vec<Value> = pages
            .iter()
            .flat_map(|p| p.records.iter().map(|r| r["id"].clone()))
            .collect();
        assert_eq!(
            ids,
            (0..7).map(|i| json!(format!("s{i}"))).collect::<Vec<_>>()
        );
        assert_eq!(pages.last().unwrap().cursor, Some(json!({"offset": 7})));
    }

    #[test]
    fn alternating_cursors_stop_at_the_first_one_seen_again() {
        // Tokens A, B, A, …, each page with records of its own.
        let (pages, error, calls) = read_all(
            |n, _| {
                let token = if n % 2 == 0 { "A" } else { "B" };
                page(vec![sale(n as u64)], Some(json!({"token": token})), true)
            },
            3,
        );
        assert_eq!(calls, 3, "the third read hands back A again");
        assert_eq!(pages.len(), 2);
        match error {
            Some(e @ PageError::CursorSeenBefore { page: 3, .. }) => {
                let text = e.to_string();
                assert!(text.contains("connector fake"), "{text}");
                assert!(text.contains("stream sales"), "{text}");
                assert!(text.contains(r#"{"token":"A"}"#), "{text}");
            }
            other => panic!("expected CursorSeenBefore on page 3, got {other:?}"),
        }
    }

    #[test]
    fn a_cursor_back_at_the_start_is_seen_before() {
        let (_, error, calls) = read_all(
            |n, _| {
                let cursor = if n == 0 { json!(1) } else { Value::Null };
                page(vec![sale(n as u64)], Some(cursor), true)
            },
            3,
        );
        assert_eq!(calls, 2);
        assert!(
            matches!(error, Some(PageError::CursorSeenBefore { page: 2, .. })),
            "{error:?}"
        );
    }

    #[test]
    fn the_same_page_with_ever_new_page_numbers_stops_at_the_first_repeat() {
        // A server that ignores the page parameter: new cursors, the same records.
        let (pages, error, calls) = read_all(
            |n, _| page(vec![sale(1), sale(2)], Some(json!({"page": n + 2})), true),
            3,
        );
        assert_eq!(calls, 2);
        assert_eq!(pages.len(), 1);
        match error {
            Some(
                e @ PageError::PageSeenBefore {
                    page: 2, first: 1, ..
                },
            ) => {
                assert!(e.to_string().contains(r#"{"page":2}"#), "{e}");
            }
            other => panic!("expected PageSeenBefore, got {other:?}"),
        }
    }

    #[test]
    fn key_order_does_not_hide_a_repeated_page() {
        let (_, error, calls) = read_all(
            |n, _| {
                let record = if n == 0 {
                    json!({"id": "x", "gross": "1.00"})
                } else {
                    json!({"gross": "1.00", "id": "x"})
                };
                page(vec![record], Some(json!(n)), true)
            },
            3,
        );
        assert_eq!(calls, 2);
        assert!(matches!(error, Some(PageError::PageSeenBefore { .. })));
    }

    #[test]
    fn k_empty_pages_in_a_row_stop_the_loop() {
        let (pages, error, calls) = read_all(|n, _| page(vec![], Some(json!(n)), true), 5);
        assert_eq!(calls, 5);
        assert_eq!(pages.len(), 4, "the fifth empty page is the error");
        match error {
            Some(e @ PageError::TooManyEmptyPages { count: 5, .. }) => {
                assert!(e.to_string().contains("cursor 3"), "{e}");
            }
            other => panic!("expected TooManyEmptyPages, got {other:?}"),
        }
    }

    #[test]
    fn empty_pages_between_records_do_not_add_up() {
        // Two empty pages, one with records, repeated: never 3 empty in a row. Ends at 30.
        let (pages, error, calls) = read_all(
            |n, _| {
                let records = if n % 3 == 2 {
                    vec![sale(n as u64)]
                } else {
                    vec![]
                };
                page(records, Some(json!(n)), n < 29)
            },
            3,
        );
        assert!(error.is_none(), "{error:?}");
        assert_eq!(calls, 30);
        assert_eq!(pages.iter().map(|p| p.records.len()).sum::<usize>(), 10);
    }

    #[test]
    fn more_pages_without_a_cursor_is_a_bug_of_the_connector() {
        let (_, error, _) = read_all(|_, _| page(vec![sale(1)], None, true), 3);
        let e = error.expect("an error");
        assert!(matches!(e, PageError::NoCursor { page: 1, .. }), "{e:?}");
        assert!(matches!(ConnectorError::from(e), ConnectorError::Bug(_)));
    }

    #[test]
    fn a_long_cursor_is_cut_in_the_error() {
        let long = "x".repeat(5000);
        let (_, error, _) = read_all(move |_, _| page(vec![], Some(json!({"t": long})), true), 3);
        let e = error.expect("an error").to_string();
        assert!(e.len() < 800, "{e}");
        assert!(e.contains("xxx…"), "{e}");
    }

    fn fake<F>(answer: F) -> (FakeSource<F>, Arc<AtomicUsize>)
    where
        F: Fn(usize, Option<&Value>) -> ReadPage + Send + Sync + 'static,
    {
        let calls = Arc::new(AtomicUsize::new(0));
        (
            FakeSource {
                answer,
                calls: calls.clone(),
            },
            calls,
        )
    }

    fn sales_request() -> ReadRequest {
        ReadRequest {
            stream: "sales".into(),
            cursor: None,
            page_size: 2,
            from: None,
            to: None,
            ..Default::default()
        }
    }

    /// What the runner's reader task does: `pump` into a channel.
    async fn pumped<F>(
        source: FakeSource<F>,
        cancel: CancelFlag,
    ) -> Vec<Result<ReadPage, ConnectorError>>
    where
        F: Fn(usize, Option<&Value>) -> ReadPage + Send + Sync + 'static,
    {
        let exec = standalone_executor(&Delivery::default(), CancelFlag::new());
        let pages = PageLoop::new(source, exec, sales_request(), NonZeroU32::new(3).unwrap());
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(pages.pump(tx, cancel));
        let mut got = Vec::new();
        while let Some(p) = rx.recv().await {
            got.push(p);
        }
        task.await.unwrap();
        got
    }

    #[tokio::test]
    async fn pump_sends_the_pages_then_the_error_as_a_permanent_connector_error() {
        let (source, calls) = fake(|n, _| {
            let token = if n % 2 == 0 { "A" } else { "B" };
            page(vec![sale(n as u64)], Some(json!(token)), true)
        });
        let got = pumped(source, CancelFlag::new()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(got.len(), 3);
        assert!(got[..2].iter().all(Result::is_ok));
        match &got[2] {
            Err(ConnectorError::Permanent(m)) => {
                assert!(m.contains("connector fake, stream sales"), "{m}");
                assert!(m.contains(r#"cursor "A""#), "{m}");
            }
            other => panic!("expected a Permanent error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pump_ends_after_the_last_page() {
        let (source, calls) = fake(|n, _| page(vec![sale(n as u64)], Some(json!(n)), n < 2));
        let got = pumped(source, CancelFlag::new()).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn pump_asks_for_no_more_pages_once_cancelled() {
        let cancel = CancelFlag::new();
        let ctrl_c = cancel.clone();
        let (source, calls) = fake(move |n, _| {
            ctrl_c.cancel();
            page(vec![sale(n as u64)], Some(json!(n)), true)
        });
        let got = pumped(source, cancel).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(got.len(), 1, "the page read is still handed on");
    }

    #[test]
    fn a_failed_read_ends_the_loop_with_the_connector_error() {
        struct Failing;
        impl PageSource for Failing {
            fn connector(&self) -> &str {
                "failing"
            }
            fn read_page(&self, _: &ReadRequest) -> Result<ReadPage, ConnectorError> {
                Err(ConnectorError::Auth("connector failing: bad key".into()))
            }
        }
        let mut pages = BlockingPageLoop::new(
            Failing,
            sales_request(),
            &Delivery::default(),
            CancelFlag::new(),
        )
        .unwrap();
        let e = pages.next_page().unwrap_err();
        assert!(
            matches!(e, PageError::Read(ConnectorError::Auth(_))),
            "{e:?}"
        );
        assert!(pages.next_page().unwrap().is_none());
    }
}
