//! `posbridge validate` and `posbridge check PIPELINE.yaml`.

use std::path::Path;

use super::check::check_connector;
use super::GlobalArgs;
use crate::pipeline::{read_pipeline, PipelineDef};
use crate::plugins::{OpenOptions, Registry};

/// Parses and validates a pipeline file against the loaded connectors; prints every problem.
pub fn load_valid(
    g: &GlobalArgs,
    path: &Path,
) -> anyhow::Result<Result<(PipelineDef, Registry), i32>> {
    let (def, text) = match read_pipeline(path) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Err(1));
        }
    };
    // Only the pipeline's connectors: a run maps two libraries, not the whole folder.
    let reg = g.load_registry_for(&[&def.source.connector, &def.sink.connector]);
    let errs = def.validate(&reg, &text);
    if !errs.is_empty() {
        for e in &errs {
            eprintln!("error: {e}");
        }
        return Ok(Err(1));
    }
    Ok(Ok((def, reg)))
}

/// `posbridge validate PIPELINE.yaml`: definition and schemas, no network.
pub fn validate(g: &GlobalArgs, path: &Path) -> anyhow::Result<i32> {
    match load_valid(g, path)? {
        Ok((def, _)) => {
            println!(
                "{}: pipeline {:?} is valid ({} -> {}, streams: {}, mode: {})",
                path.display(),
                def.name,
                def.source.connector,
                def.sink.connector,
                def.source.streams.join(", "),
                def.sink.mode.as_str()
            );
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

/// `posbridge check PIPELINE.yaml`: `validate`, then each connector's own check.
pub fn check_pipeline(g: &GlobalArgs, path: &Path) -> anyhow::Result<i32> {
    let (def, reg) = match load_valid(g, path)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let opts = OpenOptions {
        extra_secrets: def.resolved_secrets.clone(),
        ..Default::default()
    };
    let a = check_connector(
        &reg,
        &def.source.connector,
        &def.source.config,
        opts.clone(),
    );
    let b = check_connector(&reg, &def.sink.connector, &def.sink.config, opts);
    Ok(if a == 0 && b == 0 { 0 } else { 1 })
}
