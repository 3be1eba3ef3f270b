//! The set of loaded connector libraries, and opening connectors from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::RStr;
use posbridge_plugin_api::abi::{migration_kind, HostFfi_TO};
use posbridge_plugin_api::{ConnectorError, Manifest, RateLimit};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::builtin::{builtins, into_box, BuiltinFactory, BUILT_IN_FILE};
use super::capabilities::{KvStore, MemoryKv, PluginHost};
use super::config_schema::{validate_config, ConfigViolation};
use super::discovery::{library_candidates, Candidate};
use super::handle::ConnectorHandle;
use super::loader::{load_library, LibraryModule, LoadedLibrary};
use crate::http_gateway::{EgressPolicy, HttpGateway};
use crate::rate_limit::limiter_for;
use crate::redact::Redactor;
use crate::runtime::CancelFlag;
use crate::state::StateLocation;

/// A library file that was not loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SkippedLibrary {
    pub file: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for SkippedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.file.display(), self.reason)
    }
}

/// A loaded connector: a library, or one built into the host.
pub struct PluginEntry {
    /// The library file, or [`BUILT_IN_FILE`] for a built-in connector.
    pub file: PathBuf,
    pub manifest: Arc<Manifest>,
    origin: Origin,
}

/// Where a connector's code comes from.
enum Origin {
    Library(LibraryModule),
    BuiltIn(BuiltinFactory),
}

impl PluginEntry {
    /// Whether the connector is built into the host (no library).
    pub fn is_built_in(&self) -> bool {
        matches!(self.origin, Origin::BuiltIn(_))
    }
}

/// Why a connector could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unknown connector {name:?}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownConnector {
        name: String,
        suggestion: Option<String>,
    },
    #[error("invalid config for connector {connector}:\n{}", violations.iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n"))]
    InvalidConfig {
        connector: String,
        violations: Vec<ConfigViolation>,
    },
    #[error("{0}")]
    Plugin(ConnectorError),
}

/// Options for opening a connector instance.
#[derive(Clone)]
pub struct OpenOptions {
    pub cancel: CancelFlag,
    pub kv: Arc<dyn KvStore>,
    /// Overrides the manifest's default rate limit (per pipeline).
    pub rate_limit: Option<RateLimit>,
    /// More values to redact (e.g. secrets resolved from `${env:…}`).
    pub extra_secrets: Vec<String>,
    /// The pipeline's state database: where the built-in hub keeps its data by default.
    pub state: Option<StateLocation>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            cancel: CancelFlag::new(),
            kv: Arc::new(MemoryKv::default()),
            rate_limit: None,
            extra_secrets: Vec::new(),
            state: None,
        }
    }
}

/// Every connector found in the plugin folders.
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, PluginEntry>,
    skipped: Vec<SkippedLibrary>,
}

impl Registry {
    /// The built-in connectors, then every library in `dirs`. Libraries that fail a check are
    /// skipped with the reason (and logged at debug level; the CLI prints them as warnings); the
    /// others load. A library named like a built-in connector is skipped.
    pub fn load(dirs: &[PathBuf]) -> Registry {
        Self::load_until(dirs, |_| false)
    }

    /// What [`load`](Self::load) loads, but it stops at the first library after which every
    /// connector in `names` is there: a pipeline maps only its own two connectors, not every
    /// library in the folder (each one mapped costs resident memory: ≈ 1.3–3.3 MiB for the
    /// connectors here). Libraries load in the same order as in `load`, so a name resolves to the
    /// same library; a name found nowhere loads every library, and the "did you mean" hints and
    /// the skipped libraries are then complete.
    pub fn load_for(dirs: &[PathBuf], names: &[&str]) -> Registry {
        Self::load_until(dirs, |reg| {
            names.iter().all(|name| reg.entries.contains_key(*name))
        })
    }

    /// Loads as [`load`](Self::load) does until `done` answers true (asked before each library).
    fn load_until(dirs: &[PathBuf], done: impl Fn(&Registry) -> bool) -> Registry {
        let mut reg = Registry::default();
        for b in builtins() {
            reg.entries.insert(
                b.manifest.name.clone(),
                PluginEntry {
                    file: PathBuf::from(BUILT_IN_FILE),
                    manifest: Arc::new(b.manifest),
                    origin: Origin::BuiltIn(b.factory),
                },
            );
        }
        // Benchmarks only: linked connectors come before the folders, so a library of the same
        // name is skipped ("already loaded from linked-static") and the same pipeline file runs
        // on the linked code.
        #[cfg(feature = "bench-static-connectors")]
        for module in super::linked::linked() {
            match super::loader::load_linked(module) {
                Ok(lib) => reg.add(lib, Path::new(super::loader::LINKED_FILE)),
                Err(e) => reg.skip(Path::new(super::loader::LINKED_FILE), e.to_string()),
            }
        }
        let mut seen_files = Vec::new();
        for dir in dirs {
            for candidate in library_candidates(dir) {
                if done(&reg) {
                    return reg;
                }
                let file = match candidate {
                    Candidate::Library(file) => file,
                    Candidate::Unusable { file, reason } => {
                        reg.skip(&file, reason);
                        continue;
                    }
                };
                let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
                if seen_files.contains(&canonical) {
                    continue;
                }
                seen_files.push(canonical);
                reg.load_one(&file);
            }
        }
        reg
    }

    fn skip(&mut self, file: &Path, reason: String) {
        tracing::debug!(file = %file.display(), %reason, "skipped plugin library");
        self.skipped.push(SkippedLibrary {
            file: file.to_path_buf(),
            reason,
        });
    }

    fn load_one(&mut self, file: &Path) {
        match load_library(file) {
            Ok(lib) => self.add(lib, file),
            Err(e) => self.skip(file, e.to_string()),
        }
    }

    /// Registers a checked library, unless a connector of its name is already there.
    fn add(&mut self, lib: LoadedLibrary, file: &Path) {
        let name = lib.manifest.name.clone();
        if let Some(existing) = self.entries.get(&name) {
            let reason = format!(
                "a connector named {name:?} is already loaded from {}",
                existing.file.display()
            );
            self.skip(file, reason);
            return;
        }
        tracing::debug!(connector = %name, file = %file.display(), "loaded plugin");
        self.entries.insert(
            name,
            PluginEntry {
                file: lib.file,
                manifest: Arc::new(lib.manifest),
                origin: Origin::Library(lib.module),
            },
        );
    }

    pub fn skipped(&self) -> &[SkippedLibrary] {
        &self.skipped
    }

    pub fn entries(&self) -> impl Iterator<Item = &PluginEntry> {
        self.entries.values()
    }

    pub fn get(&self, name: &str) -> Option<&PluginEntry> {
        self.entries.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The loaded connector whose name is closest to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<String> {
        closest(name, self.entries.keys().map(String::as_str))
    }

    /// Looks up a connector, with a "did you mean" error.
    pub fn entry(&self, name: &str) -> Result<&PluginEntry, OpenError> {
        self.get(name).ok_or_else(|| OpenError::UnknownConnector {
            name: name.to_string(),
            suggestion: self.suggest(name),
        })
    }

    /// Migrates a config or cursor (`kind`, one of [`migration_kind`]) written for version
    /// `from_version` of the connector's config or cursor to the version its manifest declares.
    /// The value comes back unchanged when the versions agree; a library built before interface
    /// 1.1 (or a built-in connector) can migrate nothing else.
    pub fn migrate(
        &self,
        name: &str,
        kind: u8,
        from_version: u32,
        value: &Value,
    ) -> Result<Value, ConnectorError> {
        let entry = self
            .entry(name)
            .map_err(|e| ConnectorError::Config(e.to_string()))?;
        let (what, current) = match kind {
            migration_kind::CONFIG => ("config", entry.manifest.config_version),
            _ => ("cursor", entry.manifest.cursor_version),
        };
        if from_version == current {
            return Ok(value.clone());
        }
        let migrate = match &entry.origin {
            Origin::Library(module) => module.migrate(),
            Origin::BuiltIn(_) => None,
        };
        let Some(migrate) = migrate else {
            let why = if entry.is_built_in() {
                "a built-in connector has no migrations"
            } else {
                "it predates plugin interface 1.1"
            };
            return Err(ConnectorError::Config(format!(
                "connector {name} {} declares {what} version {current} and cannot migrate \
                 version {from_version} ({why})",
                entry.manifest.version
            )));
        };
        let input = value.to_string();
        let out = migrate(kind, from_version, RStr::from(input.as_str()))
            .into_result()
            .map_err(|e| {
                let e = ConnectorError::from(e);
                ConnectorError::Config(format!(
                    "connector {name} {} cannot migrate the {what} from version {from_version} to \
                     {current}: {e}",
                    entry.manifest.version
                ))
            })?;
        serde_json::from_str(out.as_str()).map_err(|e| {
            ConnectorError::Bug(format!(
                "connector {name}: the migrated {what} is not valid JSON: {e}"
            ))
        })
    }

    /// Validates `config` against the connector's schema and opens an instance.
    pub fn open(
        &self,
        name: &str,
        config: &Value,
        opts: OpenOptions,
    ) -> Result<ConnectorHandle, OpenError> {
        let entry = self.entry(name)?;
        let manifest = entry.manifest.clone();
        let redactor =
            Redactor::from_config(config, &manifest.secrets).with(opts.extra_secrets.clone());
        let violations = validate_config(&manifest.config_schema, config);
        if !violations.is_empty() {
            return Err(OpenError::InvalidConfig {
                connector: name.to_string(),
                violations: violations
                    .into_iter()
                    .map(|v| ConfigViolation {
                        path: v.path,
                        message: redactor.redact(&v.message),
                    })
                    .collect(),
            });
        }
        let mut hosts = manifest.egress_hosts.clone();
        for field in &manifest.egress_config_fields {
            let mut node = Some(config);
            for part in field.split('.') {
                node = node.and_then(|n| n.get(part));
            }
            if let Some(url) = node.and_then(Value::as_str) {
                if let Some(h) = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                {
                    hosts.push(h);
                }
            }
        }
        let limit = opts.rate_limit.or(manifest.rate_limit);
        let account = account_key(name, config, &manifest.secrets);
        let limiter = limit.map(|l| limiter_for(&account, l));
        let host = PluginHost {
            connector: name.to_string(),
            // Plugin state is per account: two pipelines with other credentials never see
            // each other's cached tokens.
            kv_namespace: account,
            gateway: HttpGateway::new(name, EgressPolicy::new(hosts), limiter, redactor.clone()),
            redactor: redactor.clone(),
            cancel: opts.cancel.clone(),
            kv: opts.kv.clone(),
        };
        let host_box = HostFfi_TO::from_value(host, TD_Opaque);
        let config_json = config.to_string();
        let opened = match &entry.origin {
            Origin::Library(module) => {
                (module.instantiate())(RStr::from(config_json.as_str()), host_box)
                    .into_result()
                    .map_err(ConnectorError::from)
            }
            Origin::BuiltIn(factory) => factory(config, &opts).map(into_box),
        };
        let inner = opened.map_err(|e| {
            OpenError::Plugin(match e {
                ConnectorError::Config(m) => {
                    ConnectorError::Config(format!("connector {name}: {}", redactor.redact(&m)))
                }
                ConnectorError::Auth(m) => {
                    ConnectorError::Auth(format!("connector {name}: {}", redactor.redact(&m)))
                }
                ConnectorError::Transient(m) => {
                    ConnectorError::Transient(format!("connector {name}: {}", redactor.redact(&m)))
                }
                ConnectorError::Permanent(m) => {
                    ConnectorError::Permanent(format!("connector {name}: {}", redactor.redact(&m)))
                }
                other => ConnectorError::Bug(format!(
                    "connector {name} failed to open: {}",
                    redactor.redact(&other.to_string())
                )),
            })
        })?;
        Ok(ConnectorHandle {
            name: name.to_string(),
            manifest,
            inner: Arc::new(inner),
            redactor,
        })
    }
}

/// Identifies a vendor account: the connector plus a hash of its credentials, so instances
/// with the same credentials share one rate limiter.
fn account_key(name: &str, config: &Value, secrets: &[String]) -> String {
    let mut h = Sha256::new();
    for p in secrets {
        let mut node = Some(config);
        for part in p.split('.') {
            node = node.and_then(|n| n.get(part));
        }
        h.update(node.map(|v| v.to_string()).unwrap_or_default().as_bytes());
        h.update([0u8]);
    }
    format!("{name}:{}", hex::encode(&h.finalize()[..8]))
}

/// The candidate closest to `name` by edit distance, if reasonably close.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of two files that look like libraries and are not.
    fn folder_of_two_bad_libraries() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("liba.so"), b"not an ELF file").unwrap();
        std::fs::write(dir.path().join("libb.so"), b"not an ELF file").unwrap();
        dir
    }

    fn skipped_names(reg: &Registry) -> Vec<String> {
        reg.skipped()
            .iter()
            .map(|s| s.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_pipeline_loads_no_library_past_its_connectors() {
        let dir = folder_of_two_bad_libraries();
        let dirs = [dir.path().to_path_buf()];
        // Every library is tried for the whole registry.
        assert_eq!(
            skipped_names(&Registry::load(&dirs)),
            ["liba.so", "libb.so"]
        );
        // The built-in hub is there before any library: none is opened.
        let reg = Registry::load_for(&dirs, &["hub"]);
        assert!(reg.get("hub").is_some());
        assert!(skipped_names(&reg).is_empty());
        // A name found nowhere tries them all, so the hints see every connector.
        let reg = Registry::load_for(&dirs, &["hub", "nowhere"]);
        assert_eq!(skipped_names(&reg), ["liba.so", "libb.so"]);
        assert!(reg.get("nowhere").is_none());
    }
}
