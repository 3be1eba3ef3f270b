//! Connectors built into the host (the canonical hub): no library, the same ABI object as a
//! plugin's, so the runner, `validate` and `check` treat them like any connector.
//!
//! A built-in is constructed by the host with what a plugin never gets (e.g. the location of
//! the state database); see `docs/decisions/006-builtin-connectors.md`.

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use posbridge_plugin_api::abi::{ConnectorBox, ConnectorFfi, ConnectorFfi_TO, FfiError, FfiPage};
use posbridge_plugin_api::sdk::export::{guard, parse_ndjson};
use posbridge_plugin_api::{
    CheckReport, ConnectorError, Manifest, ReadRequest, Sink, Source, WriteRequest,
};
use serde_json::Value;

use super::registry::OpenOptions;

/// The value [`crate::plugins::PluginEntry::file`] holds for a built-in connector.
pub const BUILT_IN_FILE: &str = "built-in";

/// A connector implemented inside the host.
pub trait BuiltinConnector: Send + Sync + 'static {
    /// The connector's own check.
    fn check(&self) -> Result<CheckReport, ConnectorError>;
    fn source(&self) -> Option<&dyn Source> {
        None
    }
    fn sink(&self) -> Option<&dyn Sink> {
        None
    }
}

/// Builds a built-in connector from its (schema-checked) config and the open options.
pub type BuiltinFactory =
    fn(config: &Value, opts: &OpenOptions) -> Result<Box<dyn BuiltinConnector>, ConnectorError>;

/// A built-in connector: its manifest (with a config schema) and how to build it.
#[derive(Clone)]
pub struct Builtin {
    pub manifest: Manifest,
    pub factory: BuiltinFactory,
}

/// Every connector built into this host.
pub fn builtins() -> Vec<Builtin> {
    vec![crate::hub::builtin()]
}

/// Bench only (feature `bench-static`): connectors linked into the binary, as the root module
/// their library would export, so that the host calls them exactly as a loaded library
/// (`bench/abi_cost.sh` compares the two).
#[cfg(feature = "bench-static")]
pub(super) fn statically_linked() -> Vec<posbridge_plugin_api::abi::PluginModuleRef> {
    vec![posbridge_plugin_api::sdk::export::root_module::<
        posbridge_generic::GenericConnector,
    >()]
}

/// Wraps a built-in connector into the ABI object the host calls.
pub(super) fn into_box(conn: Box<dyn BuiltinConnector>) -> ConnectorBox {
    ConnectorFfi_TO::from_value(Adapter(conn), TD_Opaque)
}

struct Adapter(Box<dyn BuiltinConnector>);

fn not_a(what: &str) -> ConnectorError {
    ConnectorError::Config(format!("this connector is not a {what}"))
}

impl ConnectorFfi for Adapter {
    fn check(&self) -> RResult<RString, FfiError> {
        guard("check", || {
            Ok(RString::from(serde_json::to_string(&self.0.check()?)?))
        })
    }

    fn read(&self, request: RStr<'_>) -> RResult<FfiPage, FfiError> {
        guard("read", || {
            let req: ReadRequest = serde_json::from_str(request.as_str())
                .map_err(|e| ConnectorError::Bug(format!("bad read request: {e}")))?;
            let page = self.0.source().ok_or_else(|| not_a("source"))?.read(&req)?;
            let mut buf = Vec::new();
            for r in &page.records {
                serde_json::to_writer(&mut buf, r)?;
                buf.push(b'\n');
            }
            Ok(FfiPage {
                count: page.records.len() as u64,
                records: RVec::from(buf),
                cursor: page
                    .cursor
                    .map(|c| RString::from(c.to_string()))
                    .unwrap_or_default(),
                has_more: page.has_more,
            })
        })
    }

    fn write(&self, request: RStr<'_>, records: RVec<u8>) -> RResult<RString, FfiError> {
        guard("write", || {
            let req: WriteRequest = serde_json::from_str(request.as_str())
                .map_err(|e| ConnectorError::Bug(format!("bad write request: {e}")))?;
            let sink = self.0.sink().ok_or_else(|| not_a("sink"))?;
            let records = parse_ndjson(records.as_slice())?;
            let outcomes = sink.write(&req, &records)?;
            if outcomes.len() != records.len() {
                return Err(ConnectorError::Bug(format!(
                    "sink answered {} outcomes for {} records",
                    outcomes.len(),
                    records.len()
                )));
            }
            Ok(RString::from(serde_json::to_string(&outcomes)?))
        })
    }

    fn action(&self, _name: RStr<'_>, _input: RStr<'_>) -> RResult<RString, FfiError> {
        guard("action", || Err(not_a("action provider")))
    }
}
