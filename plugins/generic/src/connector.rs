//! The connector as the host sees it: manifest, open, check, and the source and sink faces.

use std::path::Path;

use posbridge_plugin_api::model::STREAMS;
use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, LogLevel, Manifest, Page, ReadRequest,
    RecordOutcome, Sink, Source, StreamDecl, WriteRequest,
};
use serde_json::{json, Value};

use crate::config::{GenericConfig, Settings};
use crate::error::FileError;
use crate::files::{self, Mode};
use crate::sink::{FileSink, Recovery};
use crate::source::FileSource;

/// NDJSON, CSV and JSON-array files as a source and a sink of one canonical stream.
pub struct GenericConnector {
    settings: Settings,
    source: FileSource,
    sink: FileSink,
    /// For logging recoveries; absent when built without a host (tests, tools).
    host: Option<Host>,
}

impl GenericConnector {
    /// Builds the connector without a host: everything works, recoveries are just not logged.
    pub fn new(config: GenericConfig) -> Result<Self, FileError> {
        let settings = Settings::from_config(config)?;
        Ok(Self {
            source: FileSource::new(settings.clone()),
            sink: FileSink::new(settings.clone()),
            settings,
            host: None,
        })
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn log_recovery(&self, recovery: &Recovery) {
        if let Some(host) = &self.host {
            if recovery.repaired() {
                host.log(
                    LogLevel::Warn,
                    "cut an unacknowledged batch off the output",
                    json!({
                        "file": recovery.path.display().to_string(),
                        "truncated_bytes": recovery.truncated_bytes,
                        "restored_bracket": recovery.restored_bracket,
                        "torn_ledger_bytes": recovery.torn_ledger_bytes,
                    }),
                );
            }
        }
    }

    fn check_path(&self) -> Result<CheckReport, FileError> {
        let path = &self.settings.path;
        let format = format!("{:?}", self.settings.format).to_lowercase();
        if files::mode(&self.settings) == Mode::Folder && path.is_dir() {
            let n = files::list(&self.settings)?.len();
            return Ok(CheckReport::ok(format!(
                "folder {} has {n} matching file(s), read as {format}",
                path.display()
            )));
        }
        if path.is_file() {
            let meta = std::fs::File::open(path)
                .and_then(|f| f.metadata())
                .map_err(FileError::io_at("open", path))?;
            return Ok(CheckReport::ok(format!(
                "file {} is readable ({} bytes), format {format}",
                path.display(),
                meta.len()
            )));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Ok(CheckReport::failed(format!(
                "neither {} nor its folder {} exists",
                path.display(),
                parent.display()
            )));
        }
        let probe = parent.join(format!(".posbridge-check-{}", std::process::id()));
        match std::fs::File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                Ok(CheckReport::ok(format!(
                    "{} does not exist yet; its folder is writable, so a sink will create it ({format})",
                    path.display()
                )))
            }
            Err(e) => Ok(CheckReport::failed(format!(
                "{} does not exist and its folder {} is not writable: {e}",
                path.display(),
                parent.display()
            ))),
        }
    }
}

impl Connector for GenericConnector {
    type Config = GenericConfig;

    fn manifest() -> Manifest {
        STREAMS.iter().fold(
            Manifest::new(
                "generic",
                env!("CARGO_PKG_VERSION"),
                "posbridge",
                "NDJSON, CSV and JSON-array files as source and sink of one canonical stream",
            ),
            |m, s| m.stream(StreamDecl::read_write(s)),
        )
    }

    fn open(config: GenericConfig, host: Host) -> Result<Self, ConnectorError> {
        let mut connector = GenericConnector::new(config)?;
        connector.host = Some(host);
        Ok(connector)
    }

    fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(self.check_path()?)
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn sink(&self) -> Option<&dyn Sink> {
        Some(self)
    }
}

impl Source for GenericConnector {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        Ok(self
            .source
            .read_page(&request.stream, request.cursor.as_ref(), request.page_size)?)
    }
}

impl Sink for GenericConnector {
    fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        self.settings.expect_stream(&request.stream)?;
        if let Some(recovery) = self.sink.open_output()? {
            self.log_recovery(&recovery);
        }
        Ok(self.sink.write(request, records)?)
    }
}
