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

    /// The connector's source side, if it reads streams (`Some(self)` when it implements [`Source`]).
    fn source(&self) -> Option<&dyn Source> {
        None
    }
    /// The connector's sink side, if it writes streams.
    fn sink(&self) -> Option<&dyn Sink> {
        None
    }
    /// The connector's actions, if it declares any.
    fn actions(&self) -> Option<&dyn Actions> {
        None
    }

    /// The version of [`Connector::Config`]'s shape. Raise it by one when a release changes the
    /// shape in a way an older pipeline file does not match, and teach
    /// [`Connector::migrate_config`] the step. The host remembers which version each pipeline's
    /// config was written for and migrates it before opening the connector.
    const CONFIG_VERSION: u32 = 1;

    /// The version of the cursors this connector's source emits. Raise it by one when the
    /// cursor's shape changes, and teach [`Connector::migrate_cursor`] the step: the host
    /// migrates every saved cursor once, when a pipeline first runs with the new version.
    const CURSOR_VERSION: u32 = 1;

    /// Turns a config of version `from_version` into one of version `from_version + 1`. The SDK
    /// calls it step by step up to [`Connector::CONFIG_VERSION`]. The default knows no step.
    ///
    /// ```
    /// # use posbridge_plugin_api::ConnectorError;
    /// # use serde_json::{json, Value};
    /// // Version 2 renamed `count` to `last_id`.
    /// fn migrate_config(from_version: u32, mut config: Value) -> Result<Value, ConnectorError> {
    ///     match from_version {
    ///         1 => {
    ///             let count = config["count"].take();
    ///             config["last_id"] = count;
    ///             config.as_object_mut().map(|o| o.remove("count"));
    ///             Ok(config)
    ///         }
    ///         v => Err(ConnectorError::Config(format!("no migration from config version {v}"))),
    ///     }
    /// }
    /// assert_eq!(migrate_config(1, json!({"count": 3})).unwrap(), json!({"last_id": 3}));
    /// ```
    fn migrate_config(from_version: u32, config: Value) -> Result<Value, ConnectorError> {
        let _ = config;
        Err(ConnectorError::Config(format!(
            "this connector has no migration from config version {from_version}"
        )))
    }

    /// Turns a cursor of version `from_version` into one of version `from_version + 1`; called
    /// step by step up to [`Connector::CURSOR_VERSION`]. The default knows no step.
    fn migrate_cursor(from_version: u32, cursor: Value) -> Result<Value, ConnectorError> {
        let _ = cursor;
        Err(ConnectorError::Config(format!(
            "this connector has no migration from cursor version {from_version}"
        )))
    }
}

/// One page as it crosses to the host: the records as NDJSON bytes, one object per line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NdjsonPage {
    /// The records, one JSON object per line, each line ending in `\n`.
    pub records: Vec<u8>,
    /// How many records `records` holds.
    pub count: u64,
    /// Where the next read starts; saved by the host once the page is delivered.
    pub cursor: Option<Value>,
    /// Whether another page follows right away.
    pub has_more: bool,
}

/// Reads pages of records from a cursor.
///
/// One call reads one page. The host saves the page's `cursor` once the page is delivered
/// and hands it back (in [`ReadRequest::cursor`]) for the next page, or after a restart: a
/// read resumed from any cursor the source emitted must give every later record once — no
/// gap, no duplicate (the conformance suite checks it).
///
/// ```
/// use posbridge_plugin_api::{ConnectorError, Page, ReadRequest, Source};
/// use serde_json::json;
///
/// /// Ten numbered records, `page_size` at a time; the cursor is the next offset.
/// struct Numbers;
///
/// impl Source for Numbers {
///     fn read(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
///         let from = match &req.cursor {
///             None => 0,
///             Some(c) => c["offset"].as_u64().ok_or_else(|| ConnectorError::Config(format!("bad cursor {c}")))?,
///         };
///         let to = (from + req.page_size as u64).min(10);
///         Ok(Page {
///             records: (from..to).map(|i| json!({"id": i.to_string()})).collect(),
///             cursor: Some(json!({"offset": to})),
///             has_more: to < 10,
///         })
///     }
/// }
///
/// let req = ReadRequest { stream: "numbers".into(), page_size: 4, ..Default::default() };
/// let first = Numbers.read(&req).unwrap();
/// assert_eq!((first.records.len(), first.has_more), (4, true));
/// let next = Numbers.read(&ReadRequest { cursor: first.cursor, ..req }).unwrap();
/// assert_eq!(next.records[0]["id"], "4");
/// ```
pub trait Source: Send + Sync {
    /// Reads the page of `request.stream` after `request.cursor` (from the start when `None`).
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
///
/// Each record comes with an idempotency key ([`WriteRequest::idempotency_keys`]); the host
/// may send a record again after a crash or a retry, and a sink that already has the key must
/// answer [`RecordOutcome::Duplicate`] instead of writing a second copy.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use posbridge_plugin_api::{ConnectorError, RecordOutcome, Sink, WriteRequest};
/// use serde_json::{json, Value};
///
/// /// Keeps records in memory, once per idempotency key.
/// #[derive(Default)]
/// struct Memory(Mutex<HashMap<String, Value>>);
///
/// impl Sink for Memory {
///     fn write(&self, req: &WriteRequest, records: &[Value]) -> Result<Vec<RecordOutcome>, ConnectorError> {
///         let mut stored = self.0.lock().unwrap();
///         Ok(records.iter().zip(&req.idempotency_keys).map(|(r, key)| {
///             if stored.contains_key(key) {
///                 return RecordOutcome::Duplicate { external_id: Some(key.clone()) };
///             }
///             stored.insert(key.clone(), r.clone());
///             RecordOutcome::Written { external_id: Some(key.clone()) }
///         }).collect())
///     }
/// }
///
/// let sink = Memory::default();
/// let req = WriteRequest { stream: "sales".into(), idempotency_keys: vec!["k1".into()], ..Default::default() };
/// let batch = [json!({"id": "s1"})];
/// assert!(matches!(sink.write(&req, &batch).unwrap()[0], RecordOutcome::Written { .. }));
/// assert!(matches!(sink.write(&req, &batch).unwrap()[0], RecordOutcome::Duplicate { .. }));
/// ```
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

/// Named operations such as `process_payment`, declared in the manifest with
/// [`Manifest::action`] and run by `posbridge action` or the HTTP API.
///
/// ```
/// use posbridge_plugin_api::{Actions, ConnectorError};
/// use serde_json::{json, Value};
///
/// struct Greeter;
///
/// impl Actions for Greeter {
///     fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError> {
///         match name {
///             "greet" => {
///                 let who = input["name"].as_str()
///                     .ok_or_else(|| ConnectorError::Permanent("input.name: a string is required".into()))?;
///                 Ok(json!({"greeting": format!("hello, {who}")}))
///             }
///             other => Err(ConnectorError::Config(format!("no action {other:?}"))),
///         }
///     }
/// }
///
/// assert_eq!(Greeter.call("greet", json!({"name": "Ada"})).unwrap()["greeting"], "hello, Ada");
/// assert!(Greeter.call("greet", json!({})).is_err());
/// ```
pub trait Actions: Send + Sync {
    /// Runs the action `name` with its JSON input; answers JSON.
    fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError>;
}
