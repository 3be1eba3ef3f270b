//! The binary interface between the host and a connector library.
//!
//! Only `abi_stable` types cross this boundary. Record batches, requests and manifests travel as
//! JSON / NDJSON bytes so that the canonical model can grow without touching the binary layout.
//!
//! Versioning rules (see `docs/architecture.md`):
//! - [`INTERFACE_VERSION`] is `MAJOR.MINOR.PATCH`. A host loads a library whose interface has the
//!   same major version and a minor version not newer than its own.
//! - Prefix types ([`PluginModule`], the `#[sabi_trait]` vtables) may only gain fields at the end,
//!   behind the last prefix field; that is a minor bump.
//! - Changing, removing or reordering a field, or changing any `#[repr(C)]` struct below, is a
//!   major bump.

#![allow(non_local_definitions)] // emitted by #[sabi_trait]

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec, Tuple2},
    StableAbi,
};

/// The plugin interface version this crate implements. Libraries carry it in their header.
///
/// History: 1.0.0 the first; 1.1.0 appended [`PluginModule::migrate`] (config and cursor
/// migrations), which a 1.0 library lacks.
pub const INTERFACE_VERSION: &str = "1.1.0";

/// The exported symbol name of the library header (abi_stable's mangled root-module loader name).
/// A unit test checks it against `abi_stable::library::ROOT_MODULE_LOADER_NAME`.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Error kinds as they cross the boundary (see [`crate::ConnectorError`]).
pub mod error_kind {
    /// The configuration is wrong.
    pub const CONFIG: u8 = 1;
    /// The vendor refused the credentials.
    pub const AUTH: u8 = 2;
    /// The vendor asked to slow down (`retry_after_ms` may say how long).
    pub const RATE_LIMITED: u8 = 3;
    /// A failure that may pass on retry.
    pub const TRANSIENT: u8 = 4;
    /// A failure that will not pass on retry.
    pub const PERMANENT: u8 = 5;
    /// A defect in the connector, including a panic caught at the boundary.
    pub const BUG: u8 = 6;
    /// The host cancelled the call.
    pub const CANCELLED: u8 = 7;
}

/// What [`PluginModule::migrate`] is asked to migrate.
pub mod migration_kind {
    /// The connector's configuration (the `config` of a pipeline's source or sink).
    pub const CONFIG: u8 = 1;
    /// A stream cursor the source emitted.
    pub const CURSOR: u8 = 2;
}

/// An error crossing the boundary. `kind` is one of [`error_kind`]; unknown kinds read as `Bug`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    /// One of [`error_kind`].
    pub kind: u8,
    /// What went wrong.
    pub message: RString,
    /// Milliseconds to wait before retrying (`RateLimited`), 0 when not given.
    pub retry_after_ms: u64,
}

/// An outgoing HTTP request a plugin asks the host to perform.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiHttpRequest {
    /// The HTTP method (`GET`, `POST`, …).
    pub method: RString,
    /// The full URL, query included.
    pub url: RString,
    /// Header names and values, in order.
    pub headers: RVec<Tuple2<RString, RString>>,
    /// The request body (empty for none).
    pub body: RVec<u8>,
    /// 0 means the host's default timeout.
    pub timeout_ms: u64,
}

/// The host's answer to an [`FfiHttpRequest`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiHttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: RVec<Tuple2<RString, RString>>,
    /// The response body.
    pub body: RVec<u8>,
}

/// One page read from a source.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiPage {
    /// Records as NDJSON: one JSON object per line.
    pub records: RVec<u8>,
    /// Number of records in `records`.
    pub count: u64,
    /// The cursor after this page, as JSON; empty when the source keeps no cursor.
    pub cursor: RString,
    /// Whether another page can be read right away from `cursor`.
    pub has_more: bool,
}

/// The connector object a library hands to the host.
#[sabi_trait]
pub trait ConnectorFfi: Send + Sync {
    /// Verifies the configuration against the vendor; returns a JSON [`crate::CheckReport`].
    fn check(&self) -> RResult<RString, FfiError>;

    /// Reads one page; `request` is a JSON [`crate::ReadRequest`].
    fn read(&self, request: RStr<'_>) -> RResult<FfiPage, FfiError>;

    /// Writes a batch; `request` is a JSON [`crate::WriteRequest`], `records` NDJSON.
    /// Returns a JSON array of [`crate::RecordOutcome`], one per record, in order.
    fn write(&self, request: RStr<'_>, records: RVec<u8>) -> RResult<RString, FfiError>;

    /// Runs a named action with a JSON input; returns JSON.
    #[sabi(last_prefix_field)]
    fn action(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, FfiError>;
}

/// The connector as a type-erased, owned trait object.
pub type ConnectorBox = ConnectorFfi_TO<'static, RBox<()>>;

/// Capabilities the host offers a plugin: the plugin does no I/O of its own.
#[sabi_trait]
pub trait HostFfi: Send + Sync {
    /// Performs an HTTP request (timeouts, egress checks, redaction and tracing by the host).
    fn http(&self, request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError>;

    /// Emits a log event: `level` 1=error 2=warn 3=info 4=debug 5=trace; `fields_json` an object.
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>);

    /// Milliseconds since the Unix epoch, from the host's clock (tests can control it).
    fn now_millis(&self) -> i64;

    /// Whether the host asked the current work to stop.
    fn is_cancelled(&self) -> bool;

    /// Reads a value from the plugin's own key-value state (e.g. a cached token).
    fn state_get(&self, key: RStr<'_>) -> ROption<RString>;

    /// Stores a value in the plugin's own key-value state.
    #[sabi(last_prefix_field)]
    fn state_put(&self, key: RStr<'_>, value: RStr<'_>);
}

/// The host capabilities as a type-erased, owned trait object.
pub type HostBox = HostFfi_TO<'static, RBox<()>>;

/// The root module every connector library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// Returns the JSON [`crate::Manifest`].
    pub manifest: extern "C" fn() -> RResult<RString, FfiError>,

    /// Builds a connector from its JSON configuration and the host's capabilities.
    #[sabi(last_prefix_field)]
    pub instantiate:
        extern "C" fn(config: RStr<'_>, host: HostBox) -> RResult<ConnectorBox, FfiError>,

    /// Interface 1.1: migrates a JSON config or cursor (`kind`, one of [`migration_kind`]) written
    /// for version `from_version` to the version the library's manifest declares
    /// (`config_version` / `cursor_version`). A 1.0 library lacks it; the host reads such a
    /// library through [`v1_0::PluginModule`], and it declares version 1 of both shapes.
    #[sabi(missing_field(option))]
    pub migrate:
        extern "C" fn(kind: u8, from_version: u32, value: RStr<'_>) -> RResult<RString, FfiError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "posbridge_connector";
    const NAME: &'static str = "posbridge_connector";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(INTERFACE_VERSION);
}

/// The root module as interface 1.0 laid it out (no `migrate`). abi_stable's layout check
/// refuses a library whose prefix type has fewer fields than the loader's, so the host reads a
/// 1.0 library through this type: same name and package, the 1.0 fields. Every later minor that
/// appends to a layout-checked type needs such a frozen copy (see decision 009).
pub mod v1_0 {
    use super::*;

    /// The root module of interface 1.0.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        /// Returns the JSON [`crate::Manifest`].
        pub manifest: extern "C" fn() -> RResult<RString, FfiError>,
        /// Builds a connector from its JSON configuration and the host's capabilities.
        #[sabi(last_prefix_field)]
        pub instantiate:
            extern "C" fn(config: RStr<'_>, host: HostBox) -> RResult<ConnectorBox, FfiError>,
    }

    impl RootModule for PluginModuleRef {
        declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "posbridge_connector";
        const NAME: &'static str = "posbridge_connector";
        const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
