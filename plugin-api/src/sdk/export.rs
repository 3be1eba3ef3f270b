//! The glue [`crate::export_connector!`] generates: the root module, and an adapter from the
//! safe [`Connector`] traits to the ABI that runs every call under `catch_unwind`.
//!
//! abi_stable aborts the process when a panic unwinds through an `extern "C"` boundary, so no
//! plugin code may run outside [`guard`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    prefix_type::{PrefixTypeTrait, WithMetadata},
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, RVec},
};

use super::{Connector, Host, ReadRequest, WriteRequest};
use crate::abi::{
    migration_kind, ConnectorBox, ConnectorFfi, ConnectorFfi_TO, FfiError, FfiPage, HostBox,
    PluginModule, PluginModuleRef, INTERFACE_VERSION,
};
use crate::manifest::secret_paths;
use crate::model::{write_sale_json, Sale};
use crate::{ConnectorError, Manifest};

#[doc(hidden)]
/// Runs plugin code, turning a panic into a `Bug` error that names the panic message.
#[doc(hidden)] // glue of `export_connector!`, in ABI types
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, ConnectorError>) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            RResult::RErr(ConnectorError::Bug(format!("panicked in {what}: {msg}")).into())
        }
    }
}

/// The complete manifest of `C`: the author's part plus schema, secrets and interface version.
pub fn full_manifest<C: Connector>() -> Manifest {
    let mut m = C::manifest();
    m.interface_version = INTERFACE_VERSION.to_string();
    m.config_version = C::CONFIG_VERSION;
    m.cursor_version = C::CURSOR_VERSION;
    let schema = schemars::schema_for!(C::Config);
    m.config_schema = serde_json::to_value(&schema).unwrap_or_default();
    for s in secret_paths(&m.config_schema) {
        if !m.secrets.contains(&s) {
            m.secrets.push(s);
        }
    }
    m
}

extern "C" fn manifest_fn<C: Connector>() -> RResult<RString, FfiError> {
    guard("manifest", || {
        serde_json::to_string(&full_manifest::<C>())
            .map(RString::from)
            .map_err(|e| ConnectorError::Bug(format!("manifest does not serialize: {e}")))
    })
}

extern "C" fn instantiate_fn<C: Connector>(
    config: RStr<'_>,
    host: HostBox,
) -> RResult<ConnectorBox, FfiError> {
    guard("open", || {
        let cfg: C::Config = serde_json::from_str(config.as_str())
            .map_err(|e| ConnectorError::Config(e.to_string()))?;
        let conn = C::open(cfg, Host::from_ffi(host))?;
        Ok(ConnectorFfi_TO::from_value(
            Adapter { inner: conn },
            TD_Opaque,
        ))
    })
}

/// Migrates `value` of version `from` step by step to `to` with `step` (one version per call).
/// A value newer than the library understands is refused: that is a downgrade.
pub fn migrate_steps(
    what: &str,
    from: u32,
    to: u32,
    mut value: serde_json::Value,
    step: impl Fn(u32, serde_json::Value) -> Result<serde_json::Value, ConnectorError>,
) -> Result<serde_json::Value, ConnectorError> {
    if from > to {
        return Err(ConnectorError::Config(format!(
            "the {what} is version {from}, newer than this connector's {to}: \
             install the connector version it was written with, or a newer one"
        )));
    }
    for v in from..to {
        value = step(v, value)?;
    }
    Ok(value)
}

extern "C" fn migrate_fn<C: Connector>(
    kind: u8,
    from_version: u32,
    value: RStr<'_>,
) -> RResult<RString, FfiError> {
    guard("migrate", || {
        let value: serde_json::Value = serde_json::from_str(value.as_str())
            .map_err(|e| ConnectorError::Bug(format!("migration input is not JSON: {e}")))?;
        let out = match kind {
            migration_kind::CONFIG => migrate_steps(
                "config",
                from_version,
                C::CONFIG_VERSION,
                value,
                C::migrate_config,
            )?,
            migration_kind::CURSOR => migrate_steps(
                "cursor",
                from_version,
                C::CURSOR_VERSION,
                value,
                C::migrate_cursor,
            )?,
            other => {
                return Err(ConnectorError::Bug(format!(
                    "unknown migration kind {other}"
                )))
            }
        };
        Ok(RString::from(out.to_string()))
    })
}

#[doc(hidden)]
/// Builds the root module of a connector library. Called by [`crate::export_connector!`].
#[doc(hidden)] // glue of `export_connector!`, in ABI types
pub fn root_module<C: Connector>() -> PluginModuleRef {
    PluginModule {
        manifest: manifest_fn::<C>,
        instantiate: instantiate_fn::<C>,
        migrate: migrate_fn::<C>,
    }
    .leak_into_prefix()
}

// Keeps the import used when `leak_into_prefix` needs the metadata type in scope.
#[allow(dead_code)]
type _Meta = WithMetadata<PluginModule>;

struct Adapter<C> {
    inner: C,
}

fn not_supported(what: &str) -> ConnectorError {
    ConnectorError::Config(format!("this connector is not a {what}"))
}

/// Serializes records as NDJSON, one compact object per line.
pub fn to_ndjson(records: &[serde_json::Value]) -> Result<Vec<u8>, ConnectorError> {
    let mut buf = Vec::with_capacity(records.len() * 256);
    for r in records {
        serde_json::to_writer(&mut buf, r)
            .map_err(|e| ConnectorError::Bug(format!("record does not serialize: {e}")))?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// Serializes sales as NDJSON, byte for byte what [`to_ndjson`] writes of their `Value`s (keys
/// sorted), without building the `Value`s: for a source whose records are canonical sales.
pub fn sales_to_ndjson(sales: &[Sale]) -> Result<Vec<u8>, ConnectorError> {
    // ≈ 1.5 KB a sale with its lines: one allocation per page, not a regrowth (a copy of the
    // page and fresh pages to fault in).
    let mut buf = Vec::with_capacity(sales.len() * 2048);
    for s in sales {
        write_sale_json(s, &mut buf)
            .map_err(|e| ConnectorError::Bug(format!("sale does not serialize: {e}")))?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// The records of NDJSON bytes: their non-blank lines, trimmed of surrounding whitespace.
/// Newlines are found with `memchr` (vectorized), not byte by byte.
///
/// ```
/// use posbridge_plugin_api::sdk::export::ndjson_lines;
/// let lines: Vec<&[u8]> = ndjson_lines(b"{\"a\":1}\n\n {\"b\":2}\r\n").collect();
/// assert_eq!(lines, [&b"{\"a\":1}"[..], b"{\"b\":2}"]);
/// ```
pub fn ndjson_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    let mut start = 0;
    ends.map(move |end| {
        let line = &bytes[start..end];
        start = end + 1;
        line.trim_ascii()
    })
    .filter(|line| !line.is_empty())
}

/// How many records NDJSON bytes hold: their non-blank lines.
pub fn count_ndjson_records(bytes: &[u8]) -> usize {
    ndjson_lines(bytes).count()
}

/// Parses NDJSON bytes into records; a bad line is reported with its number.
pub fn parse_ndjson(bytes: &[u8]) -> Result<Vec<serde_json::Value>, ConnectorError> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(serde_json::from_slice(line).map_err(|e| {
            ConnectorError::Permanent(format!("record on line {} is not valid JSON: {e}", i + 1))
        })?);
    }
    Ok(out)
}

impl<C: Connector> ConnectorFfi for Adapter<C> {
    fn check(&self) -> RResult<RString, FfiError> {
        guard("check", || {
            let report = self.inner.check()?;
            Ok(RString::from(serde_json::to_string(&report)?))
        })
    }

    fn read(&self, request: RStr<'_>) -> RResult<FfiPage, FfiError> {
        guard("read", || {
            let req: ReadRequest = serde_json::from_str(request.as_str())
                .map_err(|e| ConnectorError::Bug(format!("bad read request: {e}")))?;
            let source = self.inner.source().ok_or_else(|| not_supported("source"))?;
            let page = source.read_ndjson(&req)?;
            Ok(FfiPage {
                count: page.count,
                records: RVec::from(page.records),
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
            let sink = self.inner.sink().ok_or_else(|| not_supported("sink"))?;
            let count = count_ndjson_records(records.as_slice());
            let outcomes = sink.write_ndjson(&req, records.as_slice())?;
            super::page_buffers::keep_for_reuse(records);
            if outcomes.len() != count {
                return Err(ConnectorError::Bug(format!(
                    "sink answered {} outcomes for {} records",
                    outcomes.len(),
                    count
                )));
            }
            Ok(RString::from(serde_json::to_string(&outcomes)?))
        })
    }

    fn action(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, FfiError> {
        guard("action", || {
            let actions = self
                .inner
                .actions()
                .ok_or_else(|| not_supported("action provider"))?;
            let input: serde_json::Value = serde_json::from_str(input.as_str())
                .map_err(|e| ConnectorError::Permanent(format!("action input is not JSON: {e}")))?;
            let out = actions.call(name.as_str(), input)?;
            Ok(RString::from(out.to_string()))
        })
    }
}

/// Exports a [`Connector`] implementation as a posbridge connector library.
///
/// Put it once in the crate root of a `cdylib` crate:
///
/// ```ignore
/// posbridge_plugin_api::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($ty:ty) => {
        /// The library header the posbridge host looks up (abi_stable's root module loader).
        #[doc(hidden)]
        #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
        pub static POSBRIDGE_LIB_HEADER: $crate::__private::LibHeader = {
            extern "C" fn __posbridge_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(
                    $crate::sdk::export::root_module::<$ty>,
                )
            }
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginModuleRef>(
                    __posbridge_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn ndjson_lines_are_the_non_blank_lines_trimmed() {
        use super::ndjson_lines;
        let lines: Vec<&[u8]> =
            ndjson_lines(b"{\"a\":1}\n\n  \r\n {\"b\":2} \r\n{\"c\":3}").collect();
        assert_eq!(lines, [&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
        assert_eq!(ndjson_lines(b"").count(), 0);
        assert_eq!(ndjson_lines(b"\n\n").count(), 0);
    }

    #[test]
    fn records_are_counted_as_non_blank_lines() {
        use super::count_ndjson_records as count;
        let by_split = |b: &[u8]| {
            b.split(|c| *c == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count()
        };
        for text in [
            &b""[..],
            b"\n",
            b"{}",
            b"{}\n",
            b"{}\n\n  \n{\"a\":1}",
            b"\r\n{}\r\n \t\n{}\n\n",
            b"  {}  \n\n\n",
        ] {
            assert_eq!(
                count(text),
                by_split(text),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(count(b"{}\n\n  \n{\"a\":1}"), 2);
    }

    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn migrations_run_one_step_per_version_in_order() {
        let step = |v: u32, mut x: Value| {
            x["steps"].as_array_mut().unwrap().push(json!(v));
            Ok(x)
        };
        let out = migrate_steps("cursor", 1, 4, json!({"steps": []}), step).unwrap();
        assert_eq!(out, json!({"steps": [1, 2, 3]}));
        let same = migrate_steps("cursor", 4, 4, json!({"steps": []}), step).unwrap();
        assert_eq!(same, json!({"steps": []}));
    }

    #[test]
    fn a_value_newer_than_the_connector_is_refused_naming_both_versions() {
        let err = migrate_steps("config", 3, 2, json!({}), |_, x| Ok(x)).unwrap_err();
        assert!(matches!(err, ConnectorError::Config(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("the config is version 3, newer than this connector's 2"),
            "{err}"
        );
    }

    #[test]
    fn a_failing_step_stops_the_migration_with_its_error() {
        let err = migrate_steps("cursor", 1, 3, json!(1), |v, x| {
            if v == 2 {
                Err(ConnectorError::Permanent("step 2 fails".into()))
            } else {
                Ok(x)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("step 2 fails"), "{err}");
    }
}
