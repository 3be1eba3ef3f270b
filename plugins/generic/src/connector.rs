//! The connector as the host sees it: manifest, open, check, and the source and sink faces.

use std::path::Path;

use posbridge_plugin_api::model::STREAMS;
use posbridge_plugin_api::{
    CheckReport, Connector, ConnectorError, Host, LogLevel, Manifest, NdjsonPage, Page,
    ReadRequest, RecordOutcome, Sink, Source, StreamDecl, WriteRequest,
};
use serde_json::{json, Value};

use crate::config::{Format, GenericConfig, Settings, Transport};
use crate::error::FileError;
use crate::files::{self, Mode};
use crate::http::{HttpSink, HttpSource};
use crate::sink::{FileSink, Recovery};
use crate::source::FileSource;

/// Files (NDJSON, CSV, JSON arrays) or an HTTP endpoint as a source and a sink of one
/// canonical stream.
pub struct GenericConnector {
    faces: Faces,
    /// For logging recoveries and for HTTP; absent when built without a host (tests, tools).
    host: Option<Host>,
}

/// The source and sink of the configured transport.
// One value per connector instance: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Faces {
    Files {
        settings: Settings,
        source: FileSource,
        sink: FileSink,
    },
    Http {
        source: HttpSource,
        sink: HttpSink,
        /// Whether the config is meant for writing (it has an `hmac_secret`); decides `check`.
        is_sink: bool,
    },
}

impl GenericConnector {
    /// Builds the connector without a host: files work fully, recoveries are just not logged;
    /// the HTTP transport needs the host and fails with a `Config` error on use.
    pub fn new(config: GenericConfig) -> Result<Self, FileError> {
        let faces = match Transport::from_config(config)? {
            Transport::Files(settings) => Faces::Files {
                source: FileSource::new(settings.clone()),
                sink: FileSink::new(settings.clone()),
                settings,
            },
            Transport::Http {
                http,
                stream,
                page_size,
            } => {
                let config_error = |e: crate::http::HttpError| FileError::Config(e.to_string());
                Faces::Http {
                    is_sink: http.hmac_secret.is_some(),
                    source: HttpSource::new((*http).clone(), &stream, page_size)
                        .map_err(config_error)?,
                    sink: HttpSink::new(*http, &stream).map_err(config_error)?,
                }
            }
        };
        Ok(Self { faces, host: None })
    }

    /// The validated file settings; `None` with the HTTP transport.
    pub fn settings(&self) -> Option<&Settings> {
        match &self.faces {
            Faces::Files { settings, .. } => Some(settings),
            Faces::Http { .. } => None,
        }
    }

    fn host(&self) -> Result<&Host, ConnectorError> {
        self.host.as_ref().ok_or_else(|| {
            ConnectorError::Config(
                "the HTTP transport reaches the network through the host; open the connector with Connector::open".into(),
            )
        })
    }

    fn log_recovery(&self, recovery: &Recovery) {
        if let Some(host) = &self.host {
            if recovery.repaired() {
                let message = if recovery.stale_ledger.is_some() {
                    "the output file was gone: its ledger was set aside and a fresh output started"
                } else {
                    "cut an unacknowledged batch off the output"
                };
                host.log(
                    LogLevel::Warn,
                    message,
                    json!({
                        "file": recovery.path.display().to_string(),
                        "truncated_bytes": recovery.truncated_bytes,
                        "restored_bracket": recovery.restored_bracket,
                        "torn_ledger_bytes": recovery.torn_ledger_bytes,
                        "stale_ledger": recovery.stale_ledger.as_ref().map(|p| p.display().to_string()),
                    }),
                );
            }
        }
    }
}

fn check_path(settings: &Settings) -> Result<CheckReport, FileError> {
    let path = &settings.path;
    let format = format!("{:?}", settings.format).to_lowercase();
    if files::mode(settings) == Mode::Folder && path.is_dir() {
        let n = files::list(settings)?.len();
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

/// The config values of the HTTP transport that are secret beyond those the schema marks:
/// every header value, and every query value of the URL (see the host's `redact` module).
pub const HTTP_SECRETS: [&str; 2] = ["http.headers.*", "http.url?*"];

impl Connector for GenericConnector {
    type Config = GenericConfig;

    fn manifest() -> Manifest {
        let mut m = STREAMS.iter().fold(
            Manifest::new(
                "generic",
                env!("CARGO_PKG_VERSION"),
                "posbridge",
                "NDJSON, CSV and JSON-array files, or a JSON HTTP endpoint, as source and sink of one canonical stream",
            )
            // The HTTP transport may call the host of its configured URL, and only that.
            .egress_config_field("http.url"),
            |m, s| m.stream(StreamDecl::read_write(s)),
        );
        // Header values and the URL's query values often carry tokens (`?api_key=…`,
        // `X-Api-Key`): the host redacts them as secrets (the schema marks the rest).
        m.secrets.extend(HTTP_SECRETS.iter().map(|s| s.to_string()));
        m
    }

    fn open(config: GenericConfig, host: Host) -> Result<Self, ConnectorError> {
        let mut connector = GenericConnector::new(config)?;
        connector.host = Some(host);
        Ok(connector)
    }

    fn check(&self) -> Result<CheckReport, ConnectorError> {
        match &self.faces {
            Faces::Files { settings, .. } => Ok(check_path(settings)?),
            Faces::Http {
                sink,
                is_sink: true,
                ..
            } => {
                let host = self.host()?;
                sink.check(host, host.now_millis().div_euclid(1000))
            }
            Faces::Http { source, .. } => source.check(self.host()?),
        }
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
        let cursor = request.cursor.as_ref();
        match &self.faces {
            Faces::Files { source, .. } => {
                Ok(source.read_page(&request.stream, cursor, request.page_size)?)
            }
            Faces::Http { source, .. } => {
                Ok(source.read_page(self.host()?, &request.stream, cursor, request.page_size)?)
            }
        }
    }

    fn read_ndjson(&self, request: &ReadRequest) -> Result<NdjsonPage, ConnectorError> {
        let cursor = request.cursor.as_ref();
        match &self.faces {
            Faces::Files { source, .. } => Ok(source.read_ndjson_page(
                &request.stream,
                cursor,
                request.page_size,
                request.host_checks_lines,
            )?),
            Faces::Http { .. } => {
                let page = self.read(request)?;
                Ok(NdjsonPage {
                    count: page.records.len() as u64,
                    records: posbridge_plugin_api::sdk::export::to_ndjson(&page.records)?,
                    cursor: page.cursor,
                    has_more: page.has_more,
                })
            }
        }
    }
}

impl Sink for GenericConnector {
    fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        match &self.faces {
            Faces::Files { settings, sink, .. } => {
                settings.expect_stream(&request.stream)?;
                if let Some(recovery) = sink.open_output()? {
                    self.log_recovery(&recovery);
                }
                Ok(sink.write(request, records)?)
            }
            Faces::Http { sink, .. } => {
                let host = self.host()?;
                let now = host.now_millis().div_euclid(1000);
                Ok(sink.write(host, request, records, now)?)
            }
        }
    }

    fn write_ndjson(
        &self,
        request: &WriteRequest,
        ndjson: &[u8],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        match &self.faces {
            Faces::Files { settings, sink, .. } if settings.format == Format::Ndjson => {
                settings.expect_stream(&request.stream)?;
                if let Some(recovery) = sink.open_output()? {
                    self.log_recovery(&recovery);
                }
                Ok(sink.write_ndjson(request, ndjson)?)
            }
            _ => {
                let records = posbridge_plugin_api::sdk::export::parse_ndjson(ndjson)?;
                self.write(request, &records)
            }
        }
    }
}
