//! A live connector instance and the calls the host makes on it.

use std::sync::Arc;

use abi_stable::std_types::{RStr, RVec};
use posbridge_plugin_api::abi::ConnectorBox;
use posbridge_plugin_api::sdk::export::parse_ndjson;
use posbridge_plugin_api::{
    CheckReport, ConnectorError, Manifest, ReadRequest, RecordOutcome, WriteRequest,
};
use serde_json::Value;

use crate::redact::Redactor;

/// One page read from a source, parsed.
#[derive(Debug, Clone, Default)]
pub struct ReadPage {
    pub records: Vec<Value>,
    pub cursor: Option<Value>,
    pub has_more: bool,
    /// The records as the NDJSON lines the connector sent, unparsed, when the page was read
    /// with [`ConnectorHandle::read_lines`] (`records` is empty then).
    pub lines: Option<NdjsonLines>,
}

/// A page's bytes: the host's own, or the buffer a connector handed over, kept as it came
/// rather than copied (it is freed through the connector's allocator when dropped; safe for as
/// long as the page lives because `abi_stable` never unloads a library it loaded).
#[derive(Debug, Clone)]
pub struct PageBytes(PageBuffer);

#[derive(Debug, Clone)]
enum PageBuffer {
    Host(Vec<u8>),
    Connector(RVec<u8>),
}

impl Default for PageBytes {
    fn default() -> Self {
        PageBytes(PageBuffer::Host(Vec::new()))
    }
}

impl From<Vec<u8>> for PageBytes {
    fn from(bytes: Vec<u8>) -> Self {
        PageBytes(PageBuffer::Host(bytes))
    }
}

impl From<RVec<u8>> for PageBytes {
    fn from(bytes: RVec<u8>) -> Self {
        PageBytes(PageBuffer::Connector(bytes))
    }
}

impl Drop for PageBytes {
    /// A connector's buffer is kept to carry a later batch to the sink (`page_buffers`).
    fn drop(&mut self) {
        if let PageBuffer::Connector(buffer) = &mut self.0 {
            super::page_buffers::give_back(std::mem::take(buffer));
        }
    }
}

impl std::ops::Deref for PageBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            PageBuffer::Host(v) => v,
            PageBuffer::Connector(v) => v,
        }
    }
}

/// The non-blank lines of an NDJSON page, one record each, as bytes.
#[derive(Debug, Clone, Default)]
pub struct NdjsonLines {
    bytes: PageBytes,
    spans: Vec<std::ops::Range<usize>>,
}

impl NdjsonLines {
    pub fn new(bytes: impl Into<PageBytes>) -> Self {
        let bytes = bytes.into();
        let mut spans = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &bytes).chain(std::iter::once(bytes.len())) {
            if !bytes[start..end].iter().all(u8::is_ascii_whitespace) {
                spans.push(start..end);
            }
            start = end + 1;
        }
        Self { bytes, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The page's bytes as sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The page's bytes and each record's span in them (without its newline).
    pub fn into_parts(self) -> (PageBytes, Vec<std::ops::Range<usize>>) {
        (self.bytes, self.spans)
    }

    /// Each record's line, without its newline.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|r| &self.bytes[r.clone()])
    }
}

/// A connector opened with a config. Cheap to clone; safe to use from several threads.
/// Calls block: the runner makes them on blocking threads.
#[derive(Clone)]
pub struct ConnectorHandle {
    pub(crate) name: String,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) inner: Arc<ConnectorBox>,
    pub(crate) redactor: Redactor,
}

impl ConnectorHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Prefixes the connector's name and blanks secrets out of an error from the plugin.
    fn tag(&self, e: ConnectorError) -> ConnectorError {
        let t = |m: String| format!("connector {}: {}", self.name, self.redactor.redact(&m));
        match e {
            ConnectorError::Config(m) => ConnectorError::Config(t(m)),
            ConnectorError::Auth(m) => ConnectorError::Auth(t(m)),
            ConnectorError::RateLimited {
                retry_after,
                message,
            } => ConnectorError::RateLimited {
                retry_after,
                message: t(message),
            },
            ConnectorError::Transient(m) => ConnectorError::Transient(t(m)),
            ConnectorError::Permanent(m) => ConnectorError::Permanent(t(m)),
            ConnectorError::Bug(m) => ConnectorError::Bug(t(m)),
            ConnectorError::Cancelled => ConnectorError::Cancelled,
        }
    }

    /// The connector's own check of its credentials.
    pub fn check(&self) -> Result<CheckReport, ConnectorError> {
        let s = self
            .inner
            .check()
            .into_result()
            .map_err(|e| self.tag(e.into()))?;
        serde_json::from_str(s.as_str()).map_err(|e| {
            self.tag(ConnectorError::Bug(format!(
                "check answered invalid JSON: {e}"
            )))
        })
    }

    /// Reads one page, returning the records as NDJSON bytes, their count, the cursor and `has_more`.
    pub fn read_raw(
        &self,
        req: &ReadRequest,
    ) -> Result<(PageBytes, u64, Option<Value>, bool), ConnectorError> {
        let json = serde_json::to_string(req).map_err(|e| ConnectorError::Bug(e.to_string()))?;
        let page = self
            .inner
            .read(RStr::from(json.as_str()))
            .into_result()
            .map_err(|e| self.tag(e.into()))?;
        let cursor = if page.cursor.is_empty() {
            None
        } else {
            Some(serde_json::from_str(page.cursor.as_str()).map_err(|e| {
                self.tag(ConnectorError::Bug(format!(
                    "cursor is not valid JSON: {e}"
                )))
            })?)
        };
        Ok((page.records.into(), page.count, cursor, page.has_more))
    }

    /// Reads one page and parses its records.
    pub fn read(&self, req: &ReadRequest) -> Result<ReadPage, ConnectorError> {
        let (bytes, _count, cursor, has_more) = self.read_raw(req)?;
        let records = parse_ndjson(&bytes).map_err(|e| self.tag(e))?;
        Ok(ReadPage {
            records,
            cursor,
            has_more,
            lines: None,
        })
    }

    /// Reads one page and keeps its records as the NDJSON lines they came as, unparsed (the
    /// runner parses each once, where it needs to look inside, and hands the bytes on).
    pub fn read_lines(&self, req: &ReadRequest) -> Result<ReadPage, ConnectorError> {
        let (bytes, _count, cursor, has_more) = self.read_raw(req)?;
        Ok(ReadPage {
            records: Vec::new(),
            cursor,
            has_more,
            lines: Some(NdjsonLines::new(bytes)),
        })
    }

    /// Writes a batch given as NDJSON bytes; returns one outcome per record. The connector
    /// takes the buffer (and frees it through whichever library allocated it).
    pub fn write_raw(
        &self,
        req: &WriteRequest,
        ndjson: impl Into<RVec<u8>>,
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        let json = serde_json::to_string(req).map_err(|e| ConnectorError::Bug(e.to_string()))?;
        let s = self
            .inner
            .write(RStr::from(json.as_str()), ndjson.into())
            .into_result()
            .map_err(|e| self.tag(e.into()))?;
        serde_json::from_str(s.as_str()).map_err(|e| {
            self.tag(ConnectorError::Bug(format!(
                "write answered invalid JSON: {e}"
            )))
        })
    }

    /// Writes a batch of records; returns one outcome per record.
    pub fn write(
        &self,
        req: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| ConnectorError::Bug(e.to_string()))?;
            buf.push(b'\n');
        }
        self.write_raw(req, buf)
    }

    /// Runs a named action.
    pub fn action(&self, name: &str, input: &Value) -> Result<Value, ConnectorError> {
        let input = input.to_string();
        let s = self
            .inner
            .action(RStr::from(name), RStr::from(input.as_str()))
            .into_result()
            .map_err(|e| self.tag(e.into()))?;
        serde_json::from_str(s.as_str()).map_err(|e| {
            self.tag(ConnectorError::Bug(format!(
                "action answered invalid JSON: {e}"
            )))
        })
    }
}
