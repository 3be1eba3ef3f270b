//! `posbridge action CONNECTOR NAME --config FILE --input JSON|@file`: calls one action of a
//! connector (e.g. stripe `process_payment`) and prints its JSON answer.
//!
//! Exit codes tell the failure apart for scripts: 0 done, 2 the call was refused before reaching
//! the vendor (unknown connector or action, invalid config or input), 3 the vendor refused the
//! credentials, 4 try again later (rate limited, network, vendor unavailable), 5 the vendor
//! refused the request, 70 a connector bug, 130 cancelled.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use posbridge_plugin_api::ConnectorError;
use serde_json::Value;

use super::GlobalArgs;
use crate::plugins::{OpenError, OpenOptions};

#[derive(Debug, Args)]
pub struct ActionArgs {
    /// The connector, e.g. `stripe`.
    pub connector: String,
    /// The action, e.g. `process_payment` (`posbridge plugins inspect CONNECTOR` lists them).
    pub name: String,
    /// The connector's config, as a JSON or YAML file (checked against its schema).
    #[arg(long, value_name = "FILE.json|yaml")]
    pub config: PathBuf,
    /// The action's input: JSON text, `@FILE` for a file, or `@-` for stdin.
    #[arg(long, value_name = "JSON|@FILE", default_value = "{}")]
    pub input: String,
}

/// Exit codes of `posbridge action`.
pub mod exit {
    /// The call was refused before reaching the vendor.
    pub const REFUSED: i32 = 2;
    /// The vendor refused the credentials.
    pub const AUTH: i32 = 3;
    /// Try again later.
    pub const RETRY_LATER: i32 = 4;
    /// The vendor refused the request.
    pub const VENDOR_REFUSED: i32 = 5;
    /// A connector bug.
    pub const BUG: i32 = 70;
    /// Cancelled.
    pub const CANCELLED: i32 = 130;
}

/// The exit code of a connector error.
pub fn exit_code(e: &ConnectorError) -> i32 {
    match e {
        ConnectorError::Config(_) => exit::REFUSED,
        ConnectorError::Auth(_) => exit::AUTH,
        ConnectorError::RateLimited { .. } | ConnectorError::Transient(_) => exit::RETRY_LATER,
        ConnectorError::Permanent(_) => exit::VENDOR_REFUSED,
        ConnectorError::Bug(_) => exit::BUG,
        ConnectorError::Cancelled => exit::CANCELLED,
    }
}

/// Reads `--input`: JSON text, `@FILE` or `@-`.
fn read_input(arg: &str) -> anyhow::Result<Value> {
    let (text, from) = match arg.strip_prefix('@') {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            (s, "stdin".to_string())
        }
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read --input file {path}: {e}"))?,
            path.to_string(),
        ),
        None => (arg.to_string(), "--input".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{from}:{}:{}: the input is not valid JSON: {e}",
            e.line(),
            e.column()
        )
    })
}

/// Runs `posbridge action`.
pub fn run(g: &GlobalArgs, a: &ActionArgs) -> anyhow::Result<i32> {
    let input = match read_input(&a.input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(exit::REFUSED);
        }
    };
    let config = match crate::pipeline::load_config_file(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(exit::REFUSED);
        }
    };
    let reg = g.load_registry();
    let handle = match reg.open(&a.connector, &config, OpenOptions::default()) {
        Ok(h) => h,
        Err(OpenError::Plugin(e)) => {
            eprintln!("error: cannot open connector {}: {e}", a.connector);
            return Ok(exit_code(&e));
        }
        // Unknown connector (with a suggestion) or the config's schema violations by JSON path;
        // both already redacted.
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::REFUSED);
        }
    };
    let actions: Vec<&str> = handle
        .manifest()
        .actions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    if !actions.contains(&a.name.as_str()) {
        let hint = crate::plugins::closest_name(&a.name, actions.iter().copied())
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default();
        eprintln!(
            "error: connector {} has no action {:?}{hint}; its actions: {}",
            a.connector,
            a.name,
            if actions.is_empty() {
                "none".to_string()
            } else {
                actions.join(", ")
            }
        );
        return Ok(exit::REFUSED);
    }
    match handle.action(&a.name, &input) {
        Ok(answer) => {
            // The answer should hold no secret; blank any that came back anyway.
            let answer = handle.redactor().redact_value(&answer);
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(0)
        }
        // Connector errors come prefixed with the connector's name and with secrets blanked.
        Err(e) => {
            eprintln!("error: {} {}: {e}", a.connector, a.name);
            Ok(exit_code(&e))
        }
    }
}
