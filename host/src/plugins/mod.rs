//! Connector plugins: finding libraries in folders, checking and loading them, and calling them.

mod builtin;
mod capabilities;
mod config_schema;
mod discovery;
mod file_check;
mod handle;
#[cfg(feature = "bench-static-connectors")]
mod linked;
mod loader;
pub(crate) mod page_buffers;
mod registry;

pub use builtin::{Builtin, BuiltinConnector, BuiltinFactory, BUILT_IN_FILE};
pub use capabilities::{KvStore, PluginHost};
pub use config_schema::{validate_config, ConfigViolation};
pub use discovery::{default_plugin_dirs, library_candidates, library_files, Candidate};
pub use file_check::{check_library_file, FileCheckError};
pub use handle::{ConnectorHandle, NdjsonLines, PageBytes, ReadPage};
pub use loader::{load_library, LibraryModule, LoadError, LoadedLibrary};
#[cfg(feature = "bench-static-connectors")]
pub use loader::{load_linked, LINKED_FILE};
pub use registry::closest as closest_name;
pub use registry::{OpenError, OpenOptions, PluginEntry, Registry, SkippedLibrary};
