//! The file source: pages of records from the cursor on, across the files of a folder.

use posbridge_plugin_api::Page;
use serde_json::Value;

use crate::config::Settings;
use crate::csv_layout::CsvLayout;
use crate::cursor::Cursor;
use crate::error::FileError;
use crate::files::{self, Mode};
use crate::reader;

/// Reads the configured file or folder; needs nothing from the host.
#[derive(Debug, Clone)]
pub struct FileSource {
    settings: Settings,
    layout: CsvLayout,
}

impl FileSource {
    pub fn new(settings: Settings) -> Self {
        let layout = CsvLayout::for_stream(&settings.stream);
        Self { settings, layout }
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
        let mut page = Page {
            records: Vec::new(),
            cursor: cursor.as_ref().map(Cursor::to_value),
            has_more: false,
        };
        while let Some(file) = files.get(index) {
            let mut records = reader::open(self.settings.format, &file.path, offset, &self.layout)?;
            while let Some((record, end)) = records.next_record()? {
                if page.records.len() == limit {
                    page.has_more = true;
                    return Ok(page);
                }
                page.records.push(Value::Object(record));
                page.cursor = Some(
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
        Ok(page)
    }
}
