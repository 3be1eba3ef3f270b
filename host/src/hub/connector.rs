//! The built-in `hub` connector: a sink that files canonical records into the [`HubStore`], and
//! a source that reads them back in the order they were stored (cursor: the last `seq`).

use posbridge_plugin_api::abi::INTERFACE_VERSION;
use posbridge_plugin_api::{
    CheckReport, ConnectorError, Manifest, Page, ReadRequest, RecordOutcome, Sink, Source,
    StreamDecl, WriteRequest,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::HubError;
use super::store::{HubStore, CATALOGUE_STREAMS};
use crate::plugins::{Builtin, BuiltinConnector, OpenOptions};
use crate::state::StateLocation;

/// The connector's name in pipeline files.
pub const HUB_CONNECTOR: &str = "hub";

/// The hub's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Sink: file every record under this store instead of its own `store_id`.
    /// Source: the store to read (required there).
    #[serde(default)]
    pub store_id: Option<String>,
    /// A `--state`-style database (`sqlite:PATH`); default: the pipeline's state database.
    #[serde(default)]
    pub database: Option<String>,
}

/// The hub's manifest: every stream it keeps, read and write, and its config schema.
pub fn manifest() -> Manifest {
    let mut m = Manifest::new(
        HUB_CONNECTOR,
        env!("CARGO_PKG_VERSION"),
        "posbridge",
        "Built-in canonical hub: keeps sales, closures and catalogue records in the state database, per store",
    );
    m.interface_version = INTERFACE_VERSION.to_string();
    for s in ["sales", "closures"].iter().chain(CATALOGUE_STREAMS) {
        m = m.stream(StreamDecl::read_write(s));
    }
    m.config_schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "HubConfig",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "store_id": {
                "description": "Sink: file every record under this store instead of the record's own store_id. Source: the store to read (required).",
                "type": "string",
                "minLength": 1,
                "pattern": "\\S"
            },
            "database": {
                "description": "The database (sqlite:PATH or a file path); default: the pipeline's state database.",
                "type": "string",
                "minLength": 1,
                "pattern": "\\S"
            }
        }
    });
    m
}

/// The registry's entry for the hub.
pub fn builtin() -> Builtin {
    Builtin {
        manifest: manifest(),
        factory: open,
    }
}

fn open(config: &Value, opts: &OpenOptions) -> Result<Box<dyn BuiltinConnector>, ConnectorError> {
    let cfg: HubConfig = serde_path_to_error::deserialize(config).map_err(|e| {
        ConnectorError::Config(format!("invalid config at $.{}: {}", e.path(), e.inner()))
    })?;
    let location = match (&cfg.database, &opts.state) {
        (Some(db), _) => StateLocation::parse(Some(db))
            .map_err(|e| ConnectorError::Config(format!("database: {e}")))?,
        (None, Some(state)) => state.clone(),
        // Outside a pipeline run (e.g. `posbridge check`): the default state file, as `--state`.
        (None, None) => {
            StateLocation::parse(None).map_err(|e| ConnectorError::Config(e.to_string()))?
        }
    };
    let store = HubStore::open(&location).map_err(to_connector_error)?;
    Ok(Box::new(HubConnector { cfg, store }))
}

/// The hub opened on its database.
pub struct HubConnector {
    cfg: HubConfig,
    store: HubStore,
}

impl HubConnector {
    /// A hub on `store` (tests and in-process callers).
    pub fn new(cfg: HubConfig, store: HubStore) -> Self {
        Self { cfg, store }
    }
}

/// Database trouble may pass (a busy file); a bad request does not.
fn to_connector_error(e: HubError) -> ConnectorError {
    match e {
        HubError::Storage { .. } | HubError::Output(_) => ConnectorError::Transient(e.to_string()),
        HubError::Invalid { .. } => ConnectorError::Config(e.to_string()),
        HubError::NotFound(_) | HubError::Ambiguous { .. } => {
            ConnectorError::Permanent(e.to_string())
        }
    }
}

impl BuiltinConnector for HubConnector {
    fn check(&self) -> Result<CheckReport, ConnectorError> {
        Ok(match &self.cfg.store_id {
            Some(store) => {
                let n = self
                    .store
                    .count("sales", store)
                    .map_err(to_connector_error)?;
                CheckReport::ok(format!(
                    "hub database is open; store {store:?} has {n} sales"
                ))
            }
            None => CheckReport::ok("hub database is open"),
        })
    }

    fn source(&self) -> Option<&dyn Source> {
        Some(self)
    }

    fn sink(&self) -> Option<&dyn Sink> {
        Some(self)
    }
}

impl Source for HubConnector {
    fn read(&self, req: &ReadRequest) -> Result<Page, ConnectorError> {
        let store = self.cfg.store_id.as_deref().ok_or_else(|| {
            ConnectorError::Config(
                "connector hub: reading needs store_id (the store whose records to read)".into(),
            )
        })?;
        let after = match &req.cursor {
            None => 0,
            Some(c) => c.get("seq").and_then(Value::as_i64).ok_or_else(|| {
                ConnectorError::Config(format!(
                    "hub cursor {c} is not {{\"seq\": N}}; run with --full-refresh to start over"
                ))
            })?,
        };
        let rows = self
            .store
            .read_page(&req.stream, store, after, req.page_size, req.from, req.to)
            .map_err(to_connector_error)?;
        let has_more = rows.len() >= req.page_size.max(1);
        let cursor = rows
            .last()
            .map(|r| json!({ "seq": r.seq }))
            .or_else(|| req.cursor.clone());
        Ok(Page {
            records: rows.into_iter().map(|r| r.record).collect(),
            cursor,
            has_more,
        })
    }
}

impl Sink for HubConnector {
    fn write(
        &self,
        req: &WriteRequest,
        records: &[Value],
    ) -> Result<Vec<RecordOutcome>, ConnectorError> {
        self.store
            .put(
                &req.stream,
                self.cfg.store_id.as_deref(),
                records,
                &req.idempotency_keys,
            )
            .map_err(to_connector_error)
    }
}
