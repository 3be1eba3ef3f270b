//! `posbridge run`: one pipeline run with a summary at the end.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::Args;

use super::pipeline_cmds::load_valid;
use super::GlobalArgs;
use crate::pipeline::{run_pipeline, ConsoleProgress, PipelineDef, RunOptions, RunReport};
use crate::plugins::Registry;
use crate::redact::Redactor;
use crate::runtime::CancelFlag;
use crate::state::{open_state, RunStatus, RunTrigger, StateStore};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (YAML).
    #[arg(value_name = "PIPELINE.yaml")]
    pub pipeline: PathBuf,
    /// State store: `sqlite:PATH` (default `sqlite:posbridge.db` in the working directory).
    #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
    pub state: Option<String>,
    /// Read and validate, show what would be written; write nothing, save nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Forget the saved cursors and read from the start (the ledger still prevents duplicates).
    #[arg(long)]
    pub full_refresh: bool,
    /// Backfill from this business day (YYYY-MM-DD); the saved cursor is neither used nor moved.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Backfill up to this business day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit code of a finished run: 0 succeeded, 1 failed, 130 cancelled (Ctrl-C).
pub fn exit_code(r: &RunReport) -> i32 {
    match r.status {
        RunStatus::Succeeded => 0,
        RunStatus::Failed | RunStatus::Interrupted => 1,
        RunStatus::Cancelled => 130,
    }
}

pub fn run(g: &GlobalArgs, a: &RunArgs) -> anyhow::Result<i32> {
    let (def, reg) = match load_valid(g, &a.pipeline)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if a.dry_run {
        print_redacted_definition(&def, &reg)?;
    }
    let state: Arc<dyn StateStore> = Arc::from(open_state(a.state.as_deref())?);
    let report = execute(&def, &reg, state, a.dry_run, a.full_refresh, a.from, a.to)?;
    print_summary(&report, a.json)?;
    Ok(exit_code(&report))
}

/// Runs a pipeline on a fresh runtime with Ctrl-C wired to a clean stop.
pub fn execute(
    def: &PipelineDef,
    reg: &Registry,
    state: Arc<dyn StateStore>,
    dry_run: bool,
    full_refresh: bool,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> anyhow::Result<RunReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cancel = CancelFlag::new();
    let opts = RunOptions {
        dry_run,
        full_refresh,
        from,
        to,
        cancel: cancel.clone(),
        progress: Arc::new(ConsoleProgress::new()),
        trigger: RunTrigger::Cli,
    };
    Ok(rt.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping at the next checkpoint (Ctrl-C again to abort)");
                c.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        run_pipeline(def, reg, state, opts).await
    }))
}

pub fn print_summary(r: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let c = &r.counters;
    println!(
        "pipeline {}{}: {} in {:.1} s",
        r.pipeline,
        if r.dry_run { " (dry run)" } else { "" },
        r.status.as_str(),
        r.duration_ms as f64 / 1000.0
    );
    println!(
        "  read {}, {} {}, skipped as duplicates {}, dead-lettered {}, retries {}",
        c.read,
        if r.dry_run { "would write" } else { "written" },
        c.written,
        c.duplicates,
        c.dead_lettered,
        c.retries
    );
    if let Some(e) = &r.error {
        println!("  error: {e}");
    }
    if c.dead_lettered > 0 && !r.dry_run {
        println!("  see `posbridge dlq list --pipeline {}`", r.pipeline);
    }
    Ok(())
}

fn print_redacted_definition(def: &PipelineDef, reg: &Registry) -> anyhow::Result<()> {
    let extra = def.resolved_secrets.clone();
    let redact = |name: &str, cfg: &serde_json::Value| {
        let paths = reg
            .get(name)
            .map(|e| e.manifest.secrets.clone())
            .unwrap_or_default();
        Redactor::from_config(cfg, &paths)
            .with(extra.clone())
            .redact_config(cfg, &paths)
    };
    let mut v = serde_json::to_value(def)?;
    v["source"]["config"] = redact(&def.source.connector, &def.source.config);
    v["sink"]["config"] = redact(&def.sink.connector, &def.sink.config);
    let all = Redactor::new(extra);
    println!("{}", serde_json::to_string_pretty(&all.redact_value(&v))?);
    Ok(())
}
