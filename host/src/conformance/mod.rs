//! The conformance suite: does a connector library behave the way the host relies on?
//!
//! It loads the library through the host's loader, opens it with a suite config
//! ([`SuiteConfig`]) and drives it through the host's capabilities — real HTTP to the vendor or
//! its simulator — then reports pass/fail per [`Check`]. Use it from a vendor's own tests:
//!
//! ```no_run
//! use posbridge::conformance::{Suite, SuiteConfig};
//! let config = SuiteConfig::load("conformance.json".as_ref()).unwrap()
//!     .with_sandbox_url("http://127.0.0.1:8080");
//! let report = Suite::new("target/debug/libmy_connector.so", config).run().unwrap();
//! assert!(report.passed(), "{report}");
//! ```
//!
//! or as `posbridge conformance PATH/TO/libX.so --config FILE [--sandbox-url URL]`. See
//! `docs/conformance.md`.

mod checks;
mod config;
mod instance;
mod report;

use std::path::PathBuf;
use std::sync::Arc;

pub use config::{StreamRead, SuiteConfig, SuiteConfigError, WriteBatch};
pub use report::{Check, CheckResult, Report, Status};

use crate::plugins::{load_library, LoadError, OpenOptions};

/// Why the suite could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The library does not load in this host (file, interface version, manifest).
    #[error("{file}: {source}")]
    Load {
        /// The library file.
        file: String,
        /// Why the loader refused it.
        source: LoadError,
    },
}

/// The suite for one library and one suite config.
pub struct Suite {
    library: PathBuf,
    config: SuiteConfig,
}

impl Suite {
    /// The suite for the library at `library`, configured by `config`.
    pub fn new(library: impl Into<PathBuf>, config: SuiteConfig) -> Self {
        Self {
            library: library.into(),
            config,
        }
    }

    /// Loads the library and runs every check. `Err` only when the library does not load.
    pub fn run(&self) -> Result<Report, SuiteError> {
        let lib = load_library(&self.library).map_err(|source| SuiteError::Load {
            file: self.library.display().to_string(),
            source,
        })?;
        let opener = instance::Opener {
            module: lib.module,
            manifest: Arc::new(lib.manifest),
            tap: Arc::default(),
            kv: OpenOptions::default().kv,
        };
        let results = checks::Run::new(&opener, &self.config).all();
        Ok(Report {
            connector: opener.manifest.name.clone(),
            library: self.library.clone(),
            results,
        })
    }
}
