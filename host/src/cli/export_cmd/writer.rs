//! Record writers for the export formats. Each writes a record as soon as it gets it, so memory
//! does not grow with the export.

use std::io::Write;

use serde_json::Value;

use super::csv_columns::CsvColumns;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// A header row, then one row per record.
    Csv,
    /// One JSON array of the records.
    Json,
}

/// Writes records one at a time in one format.
pub trait RecordWriter {
    /// Writes one record.
    fn write(&mut self, record: &Value) -> std::io::Result<()>;
    /// Writes what closes the format and flushes everything.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

/// A writer of `format` for records of `stream` on `out`.
pub fn writer_for(
    format: ExportFormat,
    stream: &str,
    out: Box<dyn Write>,
) -> Box<dyn RecordWriter> {
    match format {
        ExportFormat::Ndjson => Box::new(NdjsonWriter { out }),
        ExportFormat::Json => Box::new(JsonArrayWriter { out, first: true }),
        ExportFormat::Csv => Box::new(CsvWriter {
            out: csv::Writer::from_writer(out),
            columns: CsvColumns::for_stream(stream),
            header: None,
        }),
    }
}

struct NdjsonWriter {
    out: Box<dyn Write>,
}

impl RecordWriter for NdjsonWriter {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Streams `[`, the records separated by `,` (one per line), then `]`.
struct JsonArrayWriter {
    out: Box<dyn Write>,
    first: bool,
}

impl RecordWriter for JsonArrayWriter {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        self.out
            .write_all(if self.first { b"[\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut self.out, record)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.out
            .write_all(if self.first { b"[]\n" } else { b"\n]\n" })?;
        self.out.flush()
    }
}

struct CsvWriter {
    out: csv::Writer<Box<dyn Write>>,
    columns: CsvColumns,
    /// Written before the first row; `None` until then.
    header: Option<Vec<String>>,
}

impl CsvWriter {
    fn ensure_header(&mut self, first: Option<&Value>) -> std::io::Result<()> {
        if self.header.is_none() {
            if let Some(h) = self.columns.header(first) {
                self.out.write_record(&h)?;
                self.header = Some(h);
            }
        }
        Ok(())
    }
}

impl RecordWriter for CsvWriter {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        self.ensure_header(Some(record))?;
        let header = self.header.as_deref().unwrap_or_default();
        let row = self.columns.row(header, record);
        self.out.write_record(&row)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        // An empty export of a known layout still gets its header.
        self.ensure_header(None)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    /// A `Write` whose bytes the test can read after the writer is gone.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn written(format: ExportFormat, stream: &str, records: &[Value]) -> String {
        let buf = Shared::default();
        let mut w = writer_for(format, stream, Box::new(buf.clone()));
        for r in records {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_is_one_array_also_when_empty() {
        let recs = [json!({"id": "a"}), json!({"id": "b"})];
        let v: Value = serde_json::from_str(&written(ExportFormat::Json, "sales", &recs)).unwrap();
        assert_eq!(v, json!([{"id": "a"}, {"id": "b"}]));
        let v: Value = serde_json::from_str(&written(ExportFormat::Json, "sales", &[])).unwrap();
        assert_eq!(v, json!([]));
    }

    #[test]
    fn ndjson_is_one_record_per_line() {
        let out = written(
            ExportFormat::Ndjson,
            "x",
            &[json!({"id": 1}), json!({"id": 2})],
        );
        assert_eq!(out, "{\"id\":1}\n{\"id\":2}\n");
    }

    #[test]
    fn csv_quotes_cells_and_writes_the_header_of_an_empty_sales_export() {
        let out = written(
            ExportFormat::Csv,
            "custom",
            &[json!({"a": "x,y", "b": {"c": 1}})],
        );
        assert_eq!(out, "a,b\n\"x,y\",\"{\"\"c\"\":1}\"\n");
        let empty = written(ExportFormat::Csv, "sales", &[]);
        assert!(empty.starts_with("id,store_id,"), "{empty}");
        assert_eq!(empty.lines().count(), 1);
    }
}
