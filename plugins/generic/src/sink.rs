//! The file sink: appends each batch, fsyncs it, records it in the ledger, then acknowledges.
//!
//! Exactly-once under SIGKILL at any moment rests on one invariant: the data file's first
//! `end` bytes (the last complete ledger line) are exactly what has been acknowledged. On open
//! the sink cuts anything beyond `end` (a batch written but never acknowledged; the host will
//! send it again) and replays the ledger's keys; a batch the host re-sends after it was
//! acknowledged but not checkpointed is answered `Duplicate` from those keys.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use posbridge_plugin_api::sdk::export::ndjson_lines;
use posbridge_plugin_api::{RecordOutcome, WriteRequest};
use serde_json::{Map, Value};

use crate::config::{Format, Settings};
use crate::csv_layout::CsvLayout;
use crate::durable;
use crate::error::FileError;
use crate::key_filter::KeyFilter;
use crate::ledger::{ledger_path, Ledger, LedgerEntry};

/// What opening the output found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The output file.
    pub path: PathBuf,
    /// Bytes of an unacknowledged batch cut off the data file.
    pub truncated_bytes: u64,
    /// Whether the closing `]` of a JSON array, overwritten by an unacknowledged batch, was put back.
    pub restored_bracket: bool,
    /// Bytes of a torn ledger line cut off the ledger.
    pub torn_ledger_bytes: u64,
    /// The output was gone while its ledger remembered writing to it: the ledger was moved
    /// here and a fresh one started.
    pub stale_ledger: Option<PathBuf>,
}

impl Recovery {
    /// Whether anything had to be repaired.
    pub fn repaired(&self) -> bool {
        self.truncated_bytes > 0
            || self.restored_bracket
            || self.torn_ledger_bytes > 0
            || self.stale_ledger.is_some()
    }
}

/// Writes the configured file; needs nothing from the host. Opens the output on first use.
#[derive(Debug)]
pub struct FileSink {
    settings: Settings,
    layout: CsvLayout,
    output: Mutex<Option<Output>>,
}

/// The open output and what is known about its acknowledged content.
#[derive(Debug)]
struct Output {
    path: PathBuf,
    file: File,
    ledger: Ledger,
    /// The keys written so far ("maybe" answers are settled by the ledger).
    keys: KeyFilter,
    /// The acknowledged length of the data file.
    len: u64,
    /// NDJSON/CSV: the acknowledged content does not end with a newline (a foreign file).
    needs_newline: bool,
    /// CSV: the header row, once there is one.
    csv_header: Option<Vec<String>>,
    /// JSON: whether the array has an element.
    json_has_elements: bool,
    /// The buffer a batch is joined in, kept for the next one: a fresh buffer of a batch's
    /// size each time costs the system a new mapping and its page faults.
    batch_buffer: Vec<u8>,
}

/// A batch buffer larger than this is not kept for the next batch.
const KEEP_BATCH_BUFFER_UP_TO: usize = 16 << 20;

impl FileSink {
    pub fn new(settings: Settings) -> Self {
        let layout = CsvLayout::for_stream(&settings.stream);
        Self {
            settings,
            layout,
            output: Mutex::new(None),
        }
    }

    /// Opens the output now unless it is open (and still the file it opened: one deleted or
    /// cut meanwhile is opened again, which detects it); returns what recovery did when it
    /// opened it.
    pub fn open_output(&self) -> Result<Option<Recovery>, FileError> {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(Output::unchanged) {
            return Ok(None);
        }
        let (output, recovery) = Output::open(&self.settings.sink_file(), self.settings.format)?;
        *guard = Some(output);
        Ok(Some(recovery))
    }

    /// Writes the records of the batch whose keys are new, durably, and answers one outcome per
    /// record. Records that are not JSON objects (or do not fit the CSV header) are rejected.
    pub fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, FileError> {
        let inputs: Vec<Input<'_>> = records.iter().map(Input::Value).collect();
        self.write_inputs(request, &inputs, None)
    }

    /// [`FileSink::write`] for a batch as NDJSON bytes (one record per non-blank line). An
    /// NDJSON output takes each line as it is, checked to be one JSON object but not parsed
    /// into a value and serialized again; the other formats parse the lines.
    pub fn write_ndjson(
        &self,
        request: &WriteRequest,
        ndjson: &[u8],
    ) -> Result<Vec<RecordOutcome>, FileError> {
        let lines = ndjson_lines(ndjson);
        if self.settings.format == Format::Ndjson {
            let lines: Vec<&[u8]> = lines.collect();
            // The bytes are exactly their lines, each with its newline (nothing trimmed, no
            // blank line): what an output appends when it takes them all.
            let exact = ndjson.last() == Some(&b'\n')
                && lines.iter().map(|l| l.len() + 1).sum::<usize>() == ndjson.len();
            let inputs: Vec<Input<'_>> = lines.into_iter().map(Input::Line).collect();
            return self.write_inputs(request, &inputs, exact.then_some(ndjson));
        }
        let mut records = Vec::new();
        for (i, line) in lines.enumerate() {
            records.push(serde_json::from_slice(line).map_err(|e| {
                FileError::BadRequest(format!("record {} is not valid JSON: {e}", i + 1))
            })?);
        }
        self.write(request, &records)
    }

    /// Writes `records`; `as_sent`, when given, is the NDJSON they came in, exactly their lines
    /// with a newline each, which an NDJSON output appends as it is when it takes every record.
    fn write_inputs(
        &self,
        request: &WriteRequest,
        records: &[Input<'_>],
        as_sent: Option<&[u8]>,
    ) -> Result<Vec<RecordOutcome>, FileError> {
        self.settings.expect_stream(&request.stream)?;
        let keys = &request.idempotency_keys;
        if !keys.is_empty() && keys.len() != records.len() {
            return Err(FileError::BadRequest(format!(
                "{} idempotency keys for {} records",
                keys.len(),
                records.len()
            )));
        }
        let mut guard = self.lock();
        if !guard.as_ref().is_some_and(Output::unchanged) {
            *guard = Some(Output::open(&self.settings.sink_file(), self.settings.format)?.0);
        }
        let Some(output) = guard.as_mut() else {
            unreachable!("the output was opened above");
        };
        let written_before = output.written_among(keys)?;
        let batch = self.encode_batch(
            output.csv_header.as_ref(),
            keys,
            &written_before,
            records,
            request.lines_checked,
        );
        // The bytes as sent are the batch only when every record of it is written.
        let as_sent = as_sent.filter(|_| batch.records_written == records.len());
        if batch.records_written == 0 {
            return Ok(batch.outcomes);
        }
        match output.append(self.settings.format, &batch, as_sent) {
            Ok(()) => Ok(batch.outcomes),
            Err(e) => {
                // The file may hold a torn tail now: reopen and recover from the ledger.
                *guard = None;
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Output>> {
        match self.output.lock() {
            Ok(g) => g,
            // A panic mid-write leaves the state unknown: reopen and recover.
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                *g = None;
                g
            }
        }
    }

    /// Decides each record's outcome and encodes the ones to write. `written` holds the keys
    /// of the batch the output has already; `lines_checked`, that the host parsed each line as
    /// one JSON object already.
    fn encode_batch<'r>(
        &self,
        csv_header: Option<&Vec<String>>,
        keys: &[String],
        written: &HashSet<String>,
        records: &[Input<'r>],
        lines_checked: bool,
    ) -> Batch<'r> {
        let is_new = |i: usize| !keys.get(i).is_some_and(|k| written.contains(k));
        let header = match self.settings.format {
            Format::Csv => Some(csv_header.cloned().unwrap_or_else(|| {
                self.layout.header_for(
                    records
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| is_new(*i))
                        .filter_map(|(_, r)| match r {
                            Input::Value(v) => v.as_object(),
                            Input::Line(_) => None,
                        }),
                )
            })),
            _ => None,
        };
        let mut encoded: Vec<Cow<'r, [u8]>> = Vec::new();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut written_keys = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, record) in records.iter().enumerate() {
            let key = keys.get(i).map(String::as_str);
            if key.is_some_and(|k| written.contains(k) || seen.contains(k)) {
                outcomes.push(RecordOutcome::Duplicate { external_id: None });
                continue;
            }
            let bytes = match record {
                // A line is written as it came: borrowed, not copied.
                Input::Line(line) if lines_checked => Ok(Cow::Borrowed(*line)),
                Input::Line(line) => check_object_line(line).map(|()| Cow::Borrowed(*line)),
                Input::Value(v) => match v.as_object() {
                    None => Err("a record must be a JSON object".to_string()),
                    Some(m) => self.encode_record(header.as_deref(), m).map(Cow::Owned),
                },
            };
            match bytes {
                Ok(b) => {
                    encoded.push(b);
                    if let Some(k) = key {
                        seen.insert(k);
                        written_keys.push(k.to_string());
                    }
                    outcomes.push(RecordOutcome::Written { external_id: None });
                }
                Err(reason) => outcomes.push(RecordOutcome::Rejected { reason }),
            }
        }
        Batch {
            records_written: encoded.len(),
            encoded,
            outcomes,
            written_keys,
            csv_header: header,
        }
    }

    fn encode_record(
        &self,
        header: Option<&[String]>,
        record: &Map<String, Value>,
    ) -> Result<Vec<u8>, String> {
        match (self.settings.format, header) {
            (Format::Csv, Some(header)) => {
                let cells = self.layout.encode(header, record)?;
                csv_row(&cells).map_err(|e| format!("CSV encoding: {e}"))
            }
            _ => serde_json::to_vec(record).map_err(|e| format!("JSON encoding: {e}")),
        }
    }
}

/// One record of a batch: a parsed value, or an NDJSON line taken as it is.
enum Input<'a> {
    Value(&'a Value),
    Line(&'a [u8]),
}

/// Checks that a line is one JSON object, without building it.
fn check_object_line(line: &[u8]) -> Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(line)
        .map_err(|e| format!("not valid JSON: {e}"))?;
    match line.first() {
        Some(b'{') => Ok(()),
        _ => Err("a record must be a JSON object".to_string()),
    }
}

/// One batch, decided and encoded, before it touches the file.
struct Batch<'r> {
    encoded: Vec<Cow<'r, [u8]>>,
    records_written: usize,
    outcomes: Vec<RecordOutcome>,
    written_keys: Vec<String>,
    csv_header: Option<Vec<String>>,
}

fn csv_row(cells: &[String]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(cells)?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

impl Output {
    /// Opens the data file and its ledger and brings the data file back to what was acknowledged.
    fn open(path: &Path, format: Format) -> Result<(Output, Recovery), FileError> {
        let existed = path.exists();
        let (mut ledger, mut replay) = Ledger::open(&ledger_path(path))?;
        let mut recovery = Recovery {
            path: path.to_path_buf(),
            torn_ledger_bytes: replay.torn_bytes,
            ..Recovery::default()
        };
        // The output is gone (deleted with the pipeline's state, say) but its ledger remembers
        // writing to it: the ledger is stale. Answering `Duplicate` from it would write nothing
        // ever again, so it is set aside and the output starts afresh.
        if !existed && (replay.committed_end.unwrap_or(0) > 0 || !replay.keys.is_empty()) {
            let (fresh, fresh_replay, stale) = ledger.set_aside()?;
            (ledger, replay) = (fresh, fresh_replay);
            recovery.stale_ledger = Some(stale);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(FileError::io_at("open output", path))?;
        if !existed {
            durable::sync_parent(path)?;
        }
        let len = file
            .metadata()
            .map_err(FileError::io_at("stat output", path))?
            .len();
        let committed = match replay.committed_end {
            Some(end) => {
                if len < end {
                    return Err(not_ours(
                        path,
                        format!("the file has {len} bytes, but posbridge wrote {end}"),
                    ));
                }
                if let Some(last) = &replay.last {
                    verify_last_batch(&mut file, path, format, last)?;
                }
                if len > end {
                    file.set_len(end)
                        .map_err(FileError::io_at("truncate output", path))?;
                    recovery.truncated_bytes = len - end;
                }
                // A JSON batch starts by overwriting the closing bracket at `end - 1`.
                if format == Format::Json && end > 0 && byte_at(&mut file, path, end - 1)? != b']' {
                    file.seek(SeekFrom::Start(end - 1))
                        .and_then(|_| file.write_all(b"]"))
                        .map_err(FileError::io_at("repair output", path))?;
                    recovery.restored_bracket = true;
                }
                if recovery.truncated_bytes > 0 || recovery.restored_bracket {
                    file.sync_data()
                        .map_err(FileError::io_at("sync output", path))?;
                }
                end
            }
            None => {
                // First open: what is in the file already is the baseline we never cut.
                let base = match format {
                    Format::Json => trim_json_tail(&mut file, path, len)?,
                    _ => len,
                };
                let content = read_range(&mut file, path, 0, base)?;
                ledger.append(&LedgerEntry::written(0, &content, Vec::new()))?;
                base
            }
        };
        let last = if committed > 0 {
            Some(byte_at(&mut file, path, committed - 1)?)
        } else {
            None
        };
        let csv_header = match (format, committed) {
            (Format::Csv, 1..) => read_csv_header(&file, path, committed)?,
            _ => None,
        };
        let json_has_elements = format == Format::Json
            && committed > 1
            && last_non_space_before(&mut file, path, committed - 1)? != Some(b'[');
        let output = Output {
            path: path.to_path_buf(),
            file,
            ledger,
            keys: replay.keys,
            len: committed,
            needs_newline: format != Format::Json && last.is_some_and(|b| b != b'\n'),
            csv_header,
            json_has_elements,
            batch_buffer: Vec::new(),
        };
        Ok((output, recovery))
    }

    /// Writes the batch after the acknowledged content, fsyncs it, then appends and fsyncs its
    /// ledger line. Only then does the in-memory state move on. `as_sent`, when given, is the
    /// batch's records exactly, each followed by a newline: an NDJSON output that ends with a
    /// newline appends it as it is rather than copying the records together again.
    fn append(
        &mut self,
        format: Format,
        batch: &Batch<'_>,
        as_sent: Option<&[u8]>,
    ) -> Result<(), FileError> {
        if let (Format::Ndjson, false, Some(as_sent)) = (format, self.needs_newline, as_sent) {
            return self.append_bytes(format, self.len, as_sent, batch);
        }
        let mut bytes = std::mem::take(&mut self.batch_buffer);
        bytes.clear();
        bytes.reserve(batch.encoded.iter().map(|b| b.len() + 2).sum::<usize>() + 2);
        let write_at = match format {
            Format::Json if self.len == 0 => {
                bytes.push(b'[');
                0
            }
            // Overwrite the closing bracket; recovery puts it back if we die half-way.
            Format::Json => {
                if self.json_has_elements {
                    bytes.extend_from_slice(b",\n");
                }
                self.len - 1
            }
            _ => {
                if self.needs_newline {
                    bytes.push(b'\n');
                }
                self.len
            }
        };
        if format == Format::Csv && self.csv_header.is_none() {
            if let Some(header) = &batch.csv_header {
                bytes.extend(
                    csv_row(header)
                        .map_err(|e| FileError::BadRequest(format!("CSV header: {e}")))?,
                );
            }
        }
        for (i, record) in batch.encoded.iter().enumerate() {
            match format {
                Format::Json => {
                    if i > 0 {
                        bytes.extend_from_slice(b",\n");
                    }
                    bytes.extend_from_slice(record);
                }
                Format::Ndjson => {
                    bytes.extend_from_slice(record);
                    bytes.push(b'\n');
                }
                Format::Csv => bytes.extend_from_slice(record),
            }
        }
        if format == Format::Json {
            bytes.push(b']');
        }
        let appended = self.append_bytes(format, write_at, &bytes, batch);
        if bytes.capacity() <= KEEP_BATCH_BUFFER_UP_TO {
            self.batch_buffer = bytes;
        }
        appended
    }

    /// Writes `bytes`, the batch encoded, at `write_at`, fsyncs them, then appends and fsyncs
    /// the batch's ledger line, and moves the in-memory state on.
    fn append_bytes(
        &mut self,
        format: Format,
        write_at: u64,
        bytes: &[u8],
        batch: &Batch<'_>,
    ) -> Result<(), FileError> {
        self.file
            .seek(SeekFrom::Start(write_at))
            .and_then(|_| self.file.write_all(bytes))
            .and_then(|_| self.file.sync_data())
            .map_err(FileError::io_at("write output", &self.path))?;
        let entry = LedgerEntry::written(write_at, bytes, batch.written_keys.clone());
        let end = entry.end;
        self.ledger.append(&entry)?;
        self.len = end;
        self.needs_newline = false;
        for key in &batch.written_keys {
            self.keys.insert(key);
        }
        if format == Format::Csv && self.csv_header.is_none() {
            self.csv_header = batch.csv_header.clone();
        }
        self.json_has_elements |= format == Format::Json && batch.records_written > 0;
        Ok(())
    }
}

impl Output {
    /// The keys among `keys` this output has written before: those the filter may have seen,
    /// looked up in the ledger.
    fn written_among(&mut self, keys: &[String]) -> Result<HashSet<String>, FileError> {
        let maybe: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| self.keys.might_contain(k))
            .collect();
        self.ledger.written_among(&maybe)
    }

    /// Whether the path still names the file this output has open, at the length it wrote:
    /// not deleted, replaced or cut since.
    fn unchanged(&self) -> bool {
        let Ok(on_disk) = std::fs::metadata(&self.path) else {
            return false;
        };
        let Ok(open) = self.file.metadata() else {
            return false;
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (on_disk.dev(), on_disk.ino()) != (open.dev(), open.ino()) {
                return false;
            }
        }
        #[cfg(not(unix))]
        let _ = open;
        on_disk.len() >= self.len
    }
}

/// The error for an output that is not what the ledger says posbridge wrote, saying what to do.
fn not_ours(path: &Path, what: String) -> FileError {
    FileError::Inconsistent {
        file: path.to_path_buf(),
        message: format!(
            "{what} (its ledger {} says so): the file was cut, replaced or edited since. \
             Nothing was written. Restore the file; or delete it to start a fresh output \
             (the ledger is then set aside as `.stale-<time>`, and records are written again \
             as the host sends them: run the pipeline with --full-refresh to send them all)",
            ledger_path(path).display()
        ),
    }
}

/// Checks that the bytes the last acknowledged batch wrote are still there, unchanged. For
/// JSON its last byte, `]`, may have been overwritten by a batch that was never acknowledged
/// (recovery puts it back), so `]` stands in for it.
fn verify_last_batch(
    file: &mut File,
    path: &Path,
    format: Format,
    last: &LedgerEntry,
) -> Result<(), FileError> {
    let Some(start) = last.start.filter(|_| last.has_digest()) else {
        return Ok(()); // a ledger line written before the digest was kept
    };
    let end = last.end;
    if start > end {
        return Err(not_ours(
            path,
            format!("its ledger's last batch starts at {start} after its end {end}"),
        ));
    }
    let mut bytes = read_range(file, path, start, end)?;
    if let (Format::Json, Some(b)) = (format, bytes.last_mut()) {
        *b = b']';
    }
    if last.digest_matches(&bytes) == Some(false) {
        return Err(not_ours(
            path,
            format!("bytes {start}..{end} differ from what posbridge wrote there"),
        ));
    }
    Ok(())
}

/// The bytes `start..end` of the file.
fn read_range(file: &mut File, path: &Path, start: u64, end: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::with_capacity((end - start) as usize);
    file.seek(SeekFrom::Start(start))
        .and_then(|_| (&mut *file).take(end - start).read_to_end(&mut bytes))
        .map_err(FileError::io_at("read output", path))?;
    if (bytes.len() as u64) < end - start {
        return Err(not_ours(path, format!("the file ends before byte {end}")));
    }
    Ok(bytes)
}

fn byte_at(file: &mut File, path: &Path, pos: u64) -> Result<u8, FileError> {
    let mut b = [0u8];
    file.seek(SeekFrom::Start(pos))
        .and_then(|_| file.read_exact(&mut b))
        .map_err(FileError::io_at("read output", path))?;
    Ok(b[0])
}

/// The last byte before `pos` that is not whitespace.
fn last_non_space_before(
    file: &mut File,
    path: &Path,
    mut pos: u64,
) -> Result<Option<u8>, FileError> {
    while pos > 0 {
        let b = byte_at(file, path, pos - 1)?;
        if !b.is_ascii_whitespace() {
            return Ok(Some(b));
        }
        pos -= 1;
    }
    Ok(None)
}

/// Makes an existing JSON output end exactly at its closing `]` (dropping trailing whitespace),
/// so that every acknowledged length ends with the bracket the next batch overwrites.
fn trim_json_tail(file: &mut File, path: &Path, len: u64) -> Result<u64, FileError> {
    let mut end = len;
    while end > 0 && byte_at(file, path, end - 1)?.is_ascii_whitespace() {
        end -= 1;
    }
    if end > 0 && byte_at(file, path, end - 1)? != b']' {
        return Err(FileError::Inconsistent {
            file: path.to_path_buf(),
            message: "does not end with ']': a JSON output must be one array".into(),
        });
    }
    if end < len {
        file.set_len(end)
            .and_then(|_| file.sync_data())
            .map_err(FileError::io_at("truncate output", path))?;
    }
    Ok(end)
}

fn read_csv_header(
    file: &File,
    path: &Path,
    committed: u64,
) -> Result<Option<Vec<String>>, FileError> {
    let mut f = file
        .try_clone()
        .map_err(FileError::io_at("open output", path))?;
    f.seek(SeekFrom::Start(0))
        .map_err(FileError::io_at("read output", path))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(f.take(committed)));
    let mut row = csv::StringRecord::new();
    let found = reader
        .read_record(&mut row)
        .map_err(|e| FileError::BadRecord {
            file: path.to_path_buf(),
            line: 1,
            message: format!("header row: {e}"),
        })?;
    Ok(found.then(|| row.iter().map(str::to_string).collect()))
}
