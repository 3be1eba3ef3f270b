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

/// Reads pages of records from a cursor.
pub trait Source: Send + Sync {
    fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError>;
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
}

/// Named operations such as `process_payment`.
pub trait Actions: Send + Sync {
    fn call(&self, name: &str, input: Value) -> Result<Value, ConnectorError>;
}
