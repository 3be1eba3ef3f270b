//! Record readers: from a byte offset in one file, the next complete record and the offset
//! just after it, in each of the three formats.
//!
//! Readers see the file only up to a bound fixed when they open: its length, or less when a
//! sink's ledger says only part of it has been acknowledged. A record cut off at the bound
//! (still being written) is not returned, and its offset is not passed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Take};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::config::Format;
use crate::csv_layout::CsvLayout;
use crate::error::FileError;
use crate::ledger;

/// A record and the byte offset just after it.
pub type Positioned = (Map<String, Value>, u64);

/// Reads records one by one from a position in a file.
pub trait RecordReader {
    /// The next complete record, or `None` when none is available (yet).
    fn next_record(&mut self) -> Result<Option<Positioned>, FileError>;

    /// Appends the next complete record to `out` as one NDJSON line; the offset just after
    /// it, or `None` when none is available (yet).
    fn next_line(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, FileError> {
        let Some((record, end)) = self.next_record()? else {
            return Ok(None);
        };
        serde_json::to_writer(&mut *out, &record)
            .map_err(|e| FileError::BadRequest(format!("record does not serialize: {e}")))?;
        out.push(b'\n');
        Ok(Some(end))
    }

    /// As [`RecordReader::next_line`], for a caller that parses each line itself and reads
    /// the page again with [`RecordReader::next_line`] when one is not JSON
    /// (`ReadRequest::host_checks_lines`): a reader whose lines are its records may skip
    /// checking them.
    fn next_line_unchecked(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, FileError> {
        self.next_line(out)
    }
}

/// Opens a reader of `path` in `format` at byte `offset`.
pub fn open(
    format: Format,
    path: &Path,
    offset: u64,
    layout: &CsvLayout,
) -> Result<Box<dyn RecordReader>, FileError> {
    let window = Window::open(path, offset)?;
    Ok(match format {
        Format::Ndjson => Box::new(NdjsonReader::new(window)?),
        Format::Csv => Box::new(CsvReader::new(window, layout.clone())?),
        Format::Json => Box::new(JsonArrayReader::new(window)?),
    })
}

/// The readable part of a file: from `offset` up to `bound`.
struct Window {
    path: PathBuf,
    file: File,
    offset: u64,
    bound: u64,
}

impl Window {
    fn open(path: &Path, offset: u64) -> Result<Window, FileError> {
        let file = File::open(path).map_err(FileError::io_at("open", path))?;
        let len = file
            .metadata()
            .map_err(FileError::io_at("stat", path))?
            .len();
        if offset > len {
            return Err(FileError::Inconsistent {
                file: path.to_path_buf(),
                message: format!(
                    "the cursor is at byte {offset} but the file has only {len} bytes; was it truncated or replaced?"
                ),
            });
        }
        let bound = match ledger::committed_end(path)? {
            Some(end) => end.min(len).max(offset),
            None => len,
        };
        Ok(Window {
            path: path.to_path_buf(),
            file,
            offset,
            bound,
        })
    }

    /// A buffered reader over `[from, bound)`.
    fn reader_from(&self, from: u64) -> Result<BufReader<Take<File>>, FileError> {
        let mut file = self
            .file
            .try_clone()
            .map_err(FileError::io_at("open", &self.path))?;
        file.seek(SeekFrom::Start(from))
            .map_err(FileError::io_at("seek", &self.path))?;
        Ok(BufReader::with_capacity(
            64 * 1024,
            file.take(self.bound.saturating_sub(from)),
        ))
    }

    /// The byte just before `pos`, if any.
    fn byte_before(&self, pos: u64) -> Result<Option<u8>, FileError> {
        if pos == 0 {
            return Ok(None);
        }
        let mut b = [0u8];
        let mut r = self.reader_from(pos - 1)?;
        r.read_exact(&mut b)
            .map_err(FileError::io_at("read", &self.path))?;
        Ok(Some(b[0]))
    }

    /// A `BadRecord` for the record starting at byte `at`; the line number is counted only now.
    fn bad_record(&self, at: u64, message: String) -> FileError {
        let line = match self.count_newlines(at) {
            Ok(n) => n + 1,
            Err(e) => return e,
        };
        FileError::BadRecord {
            file: self.path.clone(),
            line,
            message,
        }
    }

    fn count_newlines(&self, upto: u64) -> Result<u64, FileError> {
        let mut file = self
            .file
            .try_clone()
            .map_err(FileError::io_at("open", &self.path))?;
        file.seek(SeekFrom::Start(0))
            .map_err(FileError::io_at("seek", &self.path))?;
        let mut r = BufReader::with_capacity(64 * 1024, file.take(upto));
        let mut n = 0u64;
        loop {
            let buf = r.fill_buf().map_err(FileError::io_at("read", &self.path))?;
            if buf.is_empty() {
                return Ok(n);
            }
            n += buf.iter().filter(|b| **b == b'\n').count() as u64;
            let len = buf.len();
            r.consume(len);
        }
    }
}

fn as_object(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(m) => Ok(m),
        other => Err(format!(
            "a record must be a JSON object, found {}",
            json_kind(&other)
        )),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object per line; blank lines are skipped.
struct NdjsonReader {
    window: Window,
    reader: BufReader<Take<File>>,
    pos: u64,
    line: Vec<u8>,
}

impl NdjsonReader {
    fn new(window: Window) -> Result<Self, FileError> {
        let reader = window.reader_from(window.offset)?;
        Ok(Self {
            pos: window.offset,
            window,
            reader,
            line: Vec::new(),
        })
    }
}

impl NdjsonReader {
    /// Reads the next non-blank line into `self.line`; its start offset and length, or `None`
    /// when no complete line is available. `self.pos` is not moved yet.
    fn fill_line(&mut self) -> Result<Option<(u64, u64, bool)>, FileError> {
        loop {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(FileError::io_at("read", &self.window.path))? as u64;
            if n == 0 {
                return Ok(None);
            }
            let terminated = self.line.last() == Some(&b'\n');
            if self.line.iter().all(u8::is_ascii_whitespace) {
                if !terminated {
                    return Ok(None);
                }
                self.pos += n;
                continue;
            }
            return Ok(Some((self.pos, n, terminated)));
        }
    }
}

impl RecordReader for NdjsonReader {
    fn next_record(&mut self) -> Result<Option<Positioned>, FileError> {
        let Some((start, n, terminated)) = self.fill_line()? else {
            return Ok(None);
        };
        match serde_json::from_slice::<Value>(&self.line) {
            Ok(v) => {
                let record = as_object(v).map_err(|m| self.window.bad_record(start, m))?;
                self.pos += n;
                Ok(Some((record, self.pos)))
            }
            // A last line without its newline that does not parse is still being written.
            Err(_) if !terminated => Ok(None),
            Err(e) => Err(self
                .window
                .bad_record(start, format!("not valid JSON: {e}"))),
        }
    }

    /// The line as it is in the file (checked to be one JSON object, never parsed into a
    /// value): the file is NDJSON already, so the source hands its lines on.
    fn next_line(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, FileError> {
        let Some((start, n, terminated)) = self.fill_line()? else {
            return Ok(None);
        };
        self.take_checked_line(start, n, terminated, out)
    }

    /// A terminated line that opens an object is handed on unparsed. Anything else (a last
    /// line without its newline, which may still be being written; a line that does not open
    /// an object) goes through the check of [`RecordReader::next_line`], for its answer and
    /// its error.
    fn next_line_unchecked(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, FileError> {
        let Some((start, n, terminated)) = self.fill_line()? else {
            return Ok(None);
        };
        if !terminated || not_an_object(&self.line).is_some() {
            return self.take_checked_line(start, n, terminated, out);
        }
        self.take_line(n, out);
        Ok(Some(self.pos))
    }
}

impl NdjsonReader {
    /// Checks the line [`NdjsonReader::fill_line`] read (at `start`, `n` bytes) and takes it;
    /// `None` for a last line without its newline that does not parse yet.
    fn take_checked_line(
        &mut self,
        start: u64,
        n: u64,
        terminated: bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<u64>, FileError> {
        match serde_json::from_slice::<IgnoredAny>(&self.line) {
            Ok(_) => {
                if let Some(kind) = not_an_object(&self.line) {
                    return Err(self.window.bad_record(
                        start,
                        format!("a record must be a JSON object, found {kind}"),
                    ));
                }
                self.take_line(n, out);
                Ok(Some(self.pos))
            }
            Err(_) if !terminated => Ok(None),
            Err(e) => Err(self
                .window
                .bad_record(start, format!("not valid JSON: {e}"))),
        }
    }

    /// Moves past the line just read and appends it, trimmed, to `out` as one NDJSON line.
    fn take_line(&mut self, n: u64, out: &mut Vec<u8>) {
        self.pos += n;
        out.extend_from_slice(self.line.trim_ascii());
        out.push(b'\n');
    }
}

/// What a valid JSON text is when it is not an object, from its first byte.
fn not_an_object(json: &[u8]) -> Option<&'static str> {
    match json.trim_ascii_start().first() {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        _ => Some("a number"),
    }
}

/// A header row, then one record per row (see [`CsvLayout`]).
struct CsvReader {
    window: Window,
    layout: CsvLayout,
    /// `None` while the file has no complete header row.
    header: Option<Vec<String>>,
    reader: Option<csv::Reader<BufReader<Take<File>>>>,
    /// Where `reader` started in the file.
    base: u64,
    ends_with_newline: bool,
    row: csv::StringRecord,
}

fn csv_builder() -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(false).flexible(true);
    b
}

impl CsvReader {
    fn new(window: Window, layout: CsvLayout) -> Result<Self, FileError> {
        let ends_with_newline = window.byte_before(window.bound)? == Some(b'\n');
        let mut header_reader = csv_builder().from_reader(window.reader_from(0)?);
        let mut row = csv::StringRecord::new();
        let has_header = header_reader
            .read_record(&mut row)
            .map_err(|e| window.bad_record(0, format!("header row: {e}")))?;
        let header_end = header_reader.position().byte();
        let header_complete = has_header && (header_end < window.bound || ends_with_newline);
        if !header_complete {
            return Ok(Self {
                window,
                layout,
                header: None,
                reader: None,
                base: 0,
                ends_with_newline,
                row,
            });
        }
        let header: Vec<String> = row.iter().map(str::to_string).collect();
        let base = if window.offset == 0 {
            header_end
        } else if window.offset < header_end {
            return Err(FileError::Inconsistent {
                file: window.path.clone(),
                message: format!(
                    "the cursor is at byte {} inside the header row",
                    window.offset
                ),
            });
        } else {
            window.offset
        };
        let reader = csv_builder().from_reader(window.reader_from(base)?);
        Ok(Self {
            window,
            layout,
            header: Some(header),
            reader: Some(reader),
            base,
            ends_with_newline,
            row,
        })
    }
}

impl RecordReader for CsvReader {
    fn next_record(&mut self) -> Result<Option<Positioned>, FileError> {
        let (Some(header), Some(reader)) = (&self.header, &mut self.reader) else {
            return Ok(None);
        };
        let start = self.base + reader.position().byte();
        let more = reader
            .read_record(&mut self.row)
            .map_err(|e| self.window.bad_record(start, e.to_string()))?;
        if !more {
            return Ok(None);
        }
        let end = self.base + reader.position().byte();
        let terminated = end < self.window.bound || self.ends_with_newline;
        if self.row.len() != header.len() {
            if !terminated {
                return Ok(None);
            }
            return Err(self.window.bad_record(
                start,
                format!(
                    "row has {} fields, the header {}",
                    self.row.len(),
                    header.len()
                ),
            ));
        }
        let record = self
            .layout
            .decode(header, self.row.iter())
            .map_err(|m| self.window.bad_record(start, m))?;
        Ok(Some((record, end)))
    }
}

/// What the JSON-array reader expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The opening `[` (at the start of the file).
    Open,
    /// The first element or `]`.
    ValueOrClose,
    /// `,` or `]` after an element.
    CommaOrClose,
    /// The array is closed.
    Done,
}

/// One top-level array of objects, streamed element by element: memory holds one record.
struct JsonArrayReader {
    window: Window,
    reader: BufReader<Take<File>>,
    pos: u64,
    expect: Expect,
    buf: Vec<u8>,
}

impl JsonArrayReader {
    fn new(window: Window) -> Result<Self, FileError> {
        let reader = window.reader_from(window.offset)?;
        let expect = if window.offset == 0 {
            Expect::Open
        } else {
            Expect::CommaOrClose
        };
        Ok(Self {
            pos: window.offset,
            window,
            reader,
            expect,
            buf: Vec::new(),
        })
    }

    fn peek(&mut self) -> Result<Option<u8>, FileError> {
        let buf = self
            .reader
            .fill_buf()
            .map_err(FileError::io_at("read", &self.window.path))?;
        Ok(buf.first().copied())
    }

    fn bump(&mut self) {
        self.reader.consume(1);
        self.pos += 1;
    }

    /// Skips whitespace (and a byte-order mark at the very start); the next byte, if any.
    fn skip_space(&mut self) -> Result<Option<u8>, FileError> {
        loop {
            match self.peek()? {
                Some(b) if b.is_ascii_whitespace() => self.bump(),
                Some(0xEF | 0xBB | 0xBF) if self.expect == Expect::Open && self.pos < 3 => {
                    self.bump()
                }
                other => return Ok(other),
            }
        }
    }

    /// Copies one object into `buf`; `false` when the file ends before the object does.
    fn scan_object(&mut self) -> Result<bool, FileError> {
        self.buf.clear();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        loop {
            let Some(b) = self.peek()? else {
                return Ok(false);
            };
            self.buf.push(b);
            self.bump();
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
    }
}

impl RecordReader for JsonArrayReader {
    fn next_record(&mut self) -> Result<Option<Positioned>, FileError> {
        loop {
            let next = self.skip_space()?;
            let at = self.pos;
            match (self.expect, next) {
                (_, None) | (Expect::Done, _) => return Ok(None),
                (Expect::Open, Some(b'[')) => {
                    self.bump();
                    self.expect = Expect::ValueOrClose;
                }
                (Expect::ValueOrClose | Expect::CommaOrClose, Some(b']')) => {
                    self.bump();
                    self.expect = Expect::Done;
                }
                (Expect::CommaOrClose, Some(b',')) => {
                    self.bump();
                    self.expect = Expect::ValueOrClose;
                }
                (Expect::ValueOrClose, Some(b'{')) => {
                    let start = self.pos;
                    if !self.scan_object()? {
                        return Ok(None);
                    }
                    let value: Value = serde_json::from_slice(&self.buf).map_err(|e| {
                        self.window
                            .bad_record(start, format!("array element is not valid JSON: {e}"))
                    })?;
                    self.expect = Expect::CommaOrClose;
                    let record = as_object(value).map_err(|m| self.window.bad_record(start, m))?;
                    return Ok(Some((record, self.pos)));
                }
                (expect, Some(b)) => {
                    let wanted = match expect {
                        Expect::Open => "'[' (the file must hold one JSON array)",
                        Expect::ValueOrClose => "an object or ']'",
                        _ => "',' or ']'",
                    };
                    return Err(self
                        .window
                        .bad_record(at, format!("expected {wanted}, found {:?}", char::from(b))));
                }
            }
        }
    }
}
