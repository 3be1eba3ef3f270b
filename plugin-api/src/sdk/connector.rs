//! The traits a connector author implements.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CheckReport, Host, Page, ReadRequest, RecordOutcome, WriteRequest};
use crate::{ConnectorError, Manifest};

/// A connector: built from its typed config and the host's capabilities, and offering a
/// source, a sink and/or actions.
///
/// ```
/// use posbridge_plugin_api::*;
/// use serde::Deserialize;
///
/// #[derive(Deserialize, schemars::JsonSchema)]
/// struct Config { greeting: String }
///
/// struct Hello { cfg: Config }
///
/// impl Source for Hello {
///     fn read(&self, _req: &ReadRequest) -> Result<Page, ConnectorError> {
///         Ok(Page { records: vec![serde_json::json!({"text": self.cfg.greeting})], cursor: None, has_more: false })
///     }
/// }
///
/// impl Connector for Hello {
///     type Config = Config;
///     fn manifest() -> Manifest {
///         Manifest::new("hello", "0.1.0", "ACME", "says hello").stream(StreamDecl::read("greetings"))
///     }
///     fn open(cfg: Config, _host: Host) -> Result<Self, ConnectorError> { Ok(Hello { cfg }) }
///     fn check(&self) -> Result<CheckReport, ConnectorError> { Ok(CheckReport::ok("fine")) }
///     fn source(&self) -> Option<&dyn Source> { Some(self) }
/// }
/// // In the connector's crate root: posbridge_plugin_api::export_connector!(Hello);
/// ```
pub trait Connector: Send + Sync + Sized + 'static {
    /// The typed configuration; its JSON Schema becomes the manifest's `config_schema`.
    type Config: DeserializeOwned + schemars::JsonSchema;

    /// Identity, streams, actions, egress and rate limit. `config_schema`, `secrets` and
    /// `interface_version` are filled in by the SDK.
    fn manifest() -> Manifest;

    /// Builds the connector. Do no network I/O here; the host calls `check` for that.
    fn open(config: Self::Config, host: Host) -> Result<Self, ConnectorError>;

    /// Verifies the credentials with the cheapest real call.
    fn check(&self) -> Result<CheckReport, ConnectorError>;

    fn source(&self) -> Option<&dyn Source> {
        None
    }
    fn sink(&self) -> Option<&dyn Sink> {
        None
    }
    fn actions(&self) -> Option<&dyn Actions> {
        None
    }
}

/// One page as it crosses to the host: the records as NDJSON bytes, one object per line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NdjsonPage {
    pub records: Vec<u8>,
    /// How many records `records` holds.
    pub count: u64,
    pub cursor: Option<Value>,
    pub has_more: bool,
}

/// Reads pages of records from a cursor.
pub trait Source: Send + Sync {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError>;

    /// The page as NDJSON bytes, which is what crosses to the host. The default serializes the
    /// records of [`Source::read`]; a source that holds its records as JSON text already (a
    /// file) may hand the lines on as they are, one JSON object per line, and spare a parse and
    /// a serialization per record.
    fn read_ndjson(&self, request: &ReadRequest) -> Result<NdjsonPage, ConnectorError> {
        let page = self.read(request)?;
        Ok(NdjsonPage {
            count: page.records.len() as u64,
            records: super::export::to_ndjson(&page.records)?,
            cursor: page.cursor,
            has_more: page.has_more,
        })
    }
}

/// Writes batches of records, answering one outcome per record.
pub trait Sink: Send + Sync {
    /// Must return exactly `records.len()` outcomes, in order. Return `Err` only when the whole
    /// batch failed (nothing, or nothing knowable, was written); the host then retries or stops.
    /// When one record fails with an error that may pass, answer [`RecordOutcome::Retry`] for it
    /// (see [`RecordOutcome::failed`]) and go on or stop there: the host commits what was
    /// written and resends only the records answered `Retry`.
    fn write(
        &self,
        request: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError>;

    /// Writes a batch given as the NDJSON bytes the host sent (one record per non-blank line),
    /// with the same contract as [`Sink::write`]. The default parses the lines and calls
    /// `write`; a sink that stores JSON text (a file) may write the lines through unparsed.
    fn write_ndjson(
        &self,
        request: &WriteRequest,
        ndjson: &[u8],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        let records = super::export::parse_ndjson(ndjson)?;
        self.write(request, &records)
    }
}

/// Named operations such as `process_payment`.
pub trait Actions: Send + Sync {
    fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError>;
}
