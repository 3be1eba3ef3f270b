//! `posbridge conformance`: runs the conformance suite against one connector library.

use std::path::PathBuf;

use clap::Args;

use crate::conformance::{Suite, SuiteConfig};

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The connector library to test (e.g. target/release/libmy_connector.so).
    #[arg(value_name = "PATH/TO/LIBRARY")]
    pub library: PathBuf,
    /// The suite config: a working connector config, bad credentials, streams to read, a
    /// batch to write (JSON or YAML; see docs/conformance.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Replaces `${sandbox_url}` in the suite config (e.g. a simulator's base URL).
    #[arg(long, value_name = "URL")]
    pub sandbox_url: Option<String>,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints pass/fail per check; exit code 0 when every check passed, 1 otherwise.
pub fn run(a: &ConformanceArgs) -> anyhow::Result<i32> {
    let mut config = SuiteConfig::load(&a.config)?;
    if let Some(url) = &a.sandbox_url {
        config = config.with_sandbox_url(url);
    }
    let report = Suite::new(&a.library, config).run()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.passed() { 0 } else { 1 })
}
