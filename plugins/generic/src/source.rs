//! The file source: pages of records from the cursor on, across the files of a folder.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use posbridge_plugin_api::{NdjsonPage, Page};
use serde_json::Value;

use crate::config::Settings;
use crate::csv_layout::CsvLayout;
use crate::cursor::Cursor;
use crate::error::FileError;
use crate::files::{self, Mode};
use crate::reader::{self, RecordReader};

/// Reads the configured file or folder; needs nothing from the host.
#[derive(Debug, Clone)]
pub struct FileSource {
    settings: Settings,
    layout: CsvLayout,
    /// The size of the last NDJSON page, to size the next one's buffer at once rather than
    /// grow it by doubling (each growth of a large buffer is a new mapping to fault in).
    last_page_bytes: Arc<AtomicUsize>,
}

impl FileSource {
    pub fn new(settings: Settings) -> Self {
        let layout = CsvLayout::for_stream(&settings.stream);
        Self {
            settings,
            layout,
            last_page_bytes: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Up to `page_size` records (capped by the configured `page_size`) after `cursor`.
    ///
    /// The returned cursor is the position just after the last record returned (the given
    /// cursor when none was). In folder mode the files sorting before the cursor's file are
    /// done, and a file is left for the next one once its records are exhausted.
    pub fn read_page(
        &self,
        stream: &str,
        cursor: Option<&Value>,
        page_size: usize,
    ) -> Result<Page, FileError> {
        let mut records = Vec::new();
        let (cursor, has_more) = self.walk(stream, cursor, page_size, |reader, keep| {
            Ok(reader.next_record()?.map(|(record, end)| {
                if keep {
                    records.push(Value::Object(record));
                }
                end
            }))
        })?;
        Ok(Page {
            records,
            cursor,
            has_more,
        })
    }

    /// The same page as [`FileSource::read_page`], as NDJSON lines: an NDJSON file's lines
    /// are handed on as they are (checked, not parsed and serialized again). With `unchecked`
    /// (the host parses every line itself: `ReadRequest::host_checks_lines`), a line that
    /// opens an object is not even checked (`RecordReader::next_line_unchecked`).
    pub fn read_ndjson_page(
        &self,
        stream: &str,
        cursor: Option<&Value>,
        page_size: usize,
        unchecked: bool,
    ) -> Result<NdjsonPage, FileError> {
        let last = self.last_page_bytes.load(Ordering::Relaxed);
        // A buffer the host handed back through a write, when there is one: already mapped.
        let mut records = posbridge_plugin_api::sdk::page_buffer(last + last / 8);
        let mut scratch = Vec::new();
        let mut count = 0u64;
        let (cursor, has_more) = self.walk(stream, cursor, page_size, |reader, keep| {
            if !keep {
                scratch.clear();
                return reader.next_line(&mut scratch);
            }
            let end = if unchecked {
                reader.next_line_unchecked(&mut records)?
            } else {
                reader.next_line(&mut records)?
            };
            count += u64::from(end.is_some());
            Ok(end)
        })?;
        self.last_page_bytes.store(records.len(), Ordering::Relaxed);
        Ok(NdjsonPage {
            records,
            count,
            cursor,
            has_more,
        })
    }

    /// Walks the records after `cursor`: `next(reader, keep)` takes the next record of
    /// `reader` (keeping it when `keep`) and answers the offset after it. The record after
    /// the page's last one is read, not kept, to tell whether more follow. Answers the page's
    /// cursor and `has_more`.
    fn walk(
        &self,
        stream: &str,
        cursor: Option<&Value>,
        page_size: usize,
        mut next: impl FnMut(&mut dyn RecordReader, bool) -> Result<Option<u64>, FileError>,
    ) -> Result<(Option<Value>, bool), FileError> {
        self.settings.expect_stream(stream)?;
        let limit = page_size
            .min(self.settings.page_size.unwrap_or(usize::MAX))
            .max(1);
        let cursor = Cursor::from_request(cursor)?;
        let files = files::list(&self.settings)?;
        let (mut index, mut offset) = match &cursor {
            None => (0, 0),
            Some(c) => {
                let index = files.partition_point(|f| f.name < c.file);
                let same = files.get(index).is_some_and(|f| f.name == c.file);
                if !same && files::mode(&self.settings) == Mode::SingleFile {
                    return Err(FileError::Inconsistent {
                        file: self.settings.path.clone(),
                        message: format!(
                            "the cursor names the file {:?}; was the path changed?",
                            c.file
                        ),
                    });
                }
                (index, if same { c.offset } else { 0 })
            }
        };
        let mut page_cursor = cursor.as_ref().map(Cursor::to_value);
        let mut kept = 0usize;
        while let Some(file) = files.get(index) {
            let mut records = reader::open(self.settings.format, &file.path, offset, &self.layout)?;
            loop {
                let keep = kept < limit;
                let Some(end) = next(records.as_mut(), keep)? else {
                    break;
                };
                if !keep {
                    return Ok((page_cursor, true));
                }
                kept += 1;
                page_cursor = Some(
                    Cursor {
                        file: file.name.clone(),
                        offset: end,
                    }
                    .to_value(),
                );
            }
            index += 1;
            offset = 0;
        }
        Ok((page_cursor, false))
    }
}
