//! Loading one library: open it, check the interface version and the ABI layout, read and
//! check the manifest. Every failure is a [`LoadError`] that names the reason; the registry
//! turns it into a "skipped" line and goes on.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RStr, RString};
use posbridge_plugin_api::abi::{
    v1_0, ConnectorBox, FfiError, HostBox, PluginModuleRef, INTERFACE_VERSION,
};
use posbridge_plugin_api::{ConnectorError, Manifest};

use super::file_check::{check_library_file, FileCheckError};

/// Why a library was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a loadable library: {0}")]
    NotALibrary(String),
    /// The headers fail the check before `dlopen` (see [`super::file_check`]).
    #[error("not a loadable library: {0}")]
    BadFile(#[from] FileCheckError),
    #[error("not a posbridge connector: the library exports no posbridge root module")]
    NoRootModule,
    #[error("built against plugin interface {found}, this host supports interface {supported} (same major version, minor up to the host's)")]
    IncompatibleInterface { found: String, supported: String },
    #[error("incompatible binary interface: {0}")]
    AbiMismatch(String),
    #[error("invalid manifest: {0}")]
    InvalidManifest(String),
    #[error("the library failed while starting: {0}")]
    Failed(String),
}

/// A library that passed every check.
pub struct LoadedLibrary {
    pub file: PathBuf,
    pub manifest: Manifest,
    pub module: LibraryModule,
}

/// A library's root module, through the layout of the interface minor it was built against:
/// abi_stable refuses a library with fewer root-module fields than the loader's type.
#[derive(Clone, Copy)]
pub enum LibraryModule {
    /// Interface 1.0: no `migrate`.
    V1_0(v1_0::PluginModuleRef),
    /// Interface 1.1, this host's.
    Current(PluginModuleRef),
}

type InstantiateFn = extern "C" fn(RStr<'_>, HostBox) -> RResult<ConnectorBox, FfiError>;
type MigrateFn = extern "C" fn(u8, u32, RStr<'_>) -> RResult<RString, FfiError>;

impl LibraryModule {
    pub fn manifest(&self) -> extern "C" fn() -> RResult<RString, FfiError> {
        match self {
            Self::V1_0(m) => m.manifest(),
            Self::Current(m) => m.manifest(),
        }
    }

    pub fn instantiate(&self) -> InstantiateFn {
        match self {
            Self::V1_0(m) => m.instantiate(),
            Self::Current(m) => m.instantiate(),
        }
    }

    /// `None` for a 1.0 library.
    pub fn migrate(&self) -> Option<MigrateFn> {
        match self {
            Self::V1_0(_) => None,
            Self::Current(m) => m.migrate(),
        }
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Whether a library built against interface `found` can be loaded by this host.
pub fn interface_compatible(found: &str, supported: &str) -> bool {
    match (parse_version(found), parse_version(supported)) {
        (Some((fm, fn_, _)), Some((sm, sn, _))) => fm == sm && fn_ <= sn,
        _ => false,
    }
}

/// Checks the file's headers, then opens and checks one library.
pub fn load_library(path: &Path) -> Result<LoadedLibrary, LoadError> {
    // A truncated file would crash the process inside dlopen (SIGBUS): refuse it first.
    check_library_file(path)?;
    let header = lib_header_from_path(path).map_err(|e| match e {
        LibraryError::GetSymbolError { .. } => LoadError::NoRootModule,
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary(err.to_string()),
        LibraryError::InvalidAbiHeader(h) => {
            LoadError::AbiMismatch(format!("built with an incompatible abi_stable ({h:?})"))
        }
        other => LoadError::NotALibrary(other.to_string()),
    })?;
    let found = header.version_strings().version.as_str().to_string();
    if !interface_compatible(&found, INTERFACE_VERSION) {
        return Err(LoadError::IncompatibleInterface {
            found,
            supported: INTERFACE_VERSION.to_string(),
        });
    }
    let minor = parse_version(&found).map(|v| v.1).unwrap_or_default();
    let module = if minor == 0 {
        header
            .init_root_module::<v1_0::PluginModuleRef>()
            .map(LibraryModule::V1_0)
    } else {
        header
            .init_root_module::<PluginModuleRef>()
            .map(LibraryModule::Current)
    };
    let module = module.map_err(|e| match e {
        LibraryError::RootModule { err, .. } => LoadError::Failed(err.to_string()),
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::IncompatibleInterface {
            found: actual_version.to_string(),
            supported: expected_version.to_string(),
        },
        other => LoadError::AbiMismatch(first_lines(&other.to_string(), 6)),
    })?;
    let manifest = checked_manifest(&module)?;
    Ok(LoadedLibrary {
        file: path.to_path_buf(),
        manifest,
        module,
    })
}

/// A connector linked into the host for benchmarks (feature `bench-static-connectors`): its
/// root module, as its library would export it, through the same manifest checks as a library
/// (no `dlopen`, no layout check: it was compiled with this host). See
/// `docs/decisions/011-static-connectors-for-benchmarks.md`.
#[cfg(feature = "bench-static-connectors")]
pub fn load_linked(module: PluginModuleRef) -> Result<LoadedLibrary, LoadError> {
    let module = LibraryModule::Current(module);
    let manifest = checked_manifest(&module)?;
    Ok(LoadedLibrary {
        file: PathBuf::from(LINKED_FILE),
        manifest,
        module,
    })
}

/// The value [`LoadedLibrary::file`] holds for a connector linked into the host.
#[cfg(feature = "bench-static-connectors")]
pub const LINKED_FILE: &str = "linked-static";

/// Reads the module's manifest and checks it.
fn checked_manifest(module: &LibraryModule) -> Result<Manifest, LoadError> {
    let manifest_json = (module.manifest())()
        .into_result()
        .map_err(|e| LoadError::InvalidManifest(ConnectorError::from(e).to_string()))?;
    let manifest: Manifest = serde_json::from_str(manifest_json.as_str())
        .map_err(|e| LoadError::InvalidManifest(format!("not valid manifest JSON: {e}")))?;
    let mut problems = manifest.problems();
    if manifest.config_schema.is_object() {
        if let Err(e) = jsonschema::validator_for(&manifest.config_schema) {
            problems.push(format!("config_schema is not a valid JSON Schema: {e}"));
        }
    }
    if !problems.is_empty() {
        return Err(LoadError::InvalidManifest(problems.join("; ")));
    }
    Ok(manifest)
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).take(n).collect();
    lines.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::interface_compatible;

    #[test]
    fn interface_versions() {
        assert!(interface_compatible("1.0.0", "1.0.0"));
        assert!(interface_compatible("1.0.0", "1.2.0"));
        assert!(!interface_compatible("1.3.0", "1.2.0"));
        assert!(!interface_compatible("0.9.0", "1.0.0"));
        assert!(!interface_compatible("2.0.0", "1.0.0"));
        assert!(!interface_compatible("garbage", "1.0.0"));
    }
}
