//! `posbridge check`: a connector config against its schema and the connector's own check,
//! or every connector of a pipeline file.

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use crate::plugins::{OpenError, OpenOptions};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A pipeline file: check both of its connectors (definition, schemas, then each connector's check).
    #[arg(value_name = "PIPELINE.yaml", conflicts_with_all = ["connector", "config"])]
    pub pipeline: Option<PathBuf>,
    /// The connector to check.
    #[arg(long, requires = "config")]
    pub connector: Option<String>,
    /// Its config, as a JSON or YAML file.
    #[arg(long, value_name = "FILE.json|yaml", requires = "connector")]
    pub config: Option<PathBuf>,
}

pub fn run(g: &GlobalArgs, a: &CheckArgs) -> anyhow::Result<i32> {
    if let Some(p) = &a.pipeline {
        return crate::cli::pipeline_cmds::check_pipeline(g, p);
    }
    let (Some(name), Some(config_path)) = (&a.connector, &a.config) else {
        anyhow::bail!("give a PIPELINE.yaml, or --connector NAME --config FILE");
    };
    let config = crate::pipeline::load_config_file(config_path)?;
    let reg = g.load_registry();
    Ok(check_connector(&reg, name, &config, OpenOptions::default()))
}

/// Validates and checks one connector config, printing the verdict; returns the exit code.
pub fn check_connector(
    reg: &crate::plugins::Registry,
    name: &str,
    config: &serde_json::Value,
    opts: OpenOptions,
) -> i32 {
    let handle = match reg.open(name, config, opts) {
        Ok(h) => h,
        Err(OpenError::InvalidConfig {
            connector,
            violations,
        }) => {
            println!(
                "config for {connector} is invalid ({} problem{}):",
                violations.len(),
                if violations.len() == 1 { "" } else { "s" }
            );
            for v in violations {
                println!("  {v}");
            }
            return 1;
        }
        Err(e) => {
            println!("{name}: cannot open: {e}");
            return 1;
        }
    };
    println!("config for {name} is valid");
    match handle.check() {
        Ok(r) if r.ok => {
            println!("check {name}: ok — {}", r.message);
            0
        }
        Ok(r) => {
            println!("check {name}: FAILED — {}", r.message);
            1
        }
        Err(e) => {
            println!("check {name}: FAILED — {e}");
            1
        }
    }
}
