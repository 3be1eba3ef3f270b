//! `posbridge runs` and `posbridge dlq list|show|retry`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::output::table;
use super::pipeline_cmds::load_valid;
use super::GlobalArgs;
use crate::pipeline::{open_connectors, retry_dead_letter, RetryOutcome};
use crate::runtime::CancelFlag;
use crate::state::{open_state, DeadLetterFilter, StateStore};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this pipeline's runs.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// State store (default `sqlite:posbridge.db`).
    #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
    pub state: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn runs(a: &RunsArgs) -> anyhow::Result<i32> {
    let state = open_state(a.state.as_deref())?;
    let runs = state.runs(a.pipeline.as_deref(), a.limit)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.pipeline.clone(),
                r.started_at.clone(),
                r.trigger.clone(),
                r.status.clone(),
                r.read.to_string(),
                r.written.to_string(),
                r.duplicates.to_string(),
                r.dead_lettered.to_string(),
                r.retries.to_string(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "ID",
                "PIPELINE",
                "STARTED",
                "TRIGGER",
                "STATUS",
                "READ",
                "WRITTEN",
                "DUPLICATES",
                "DEAD",
                "RETRIES",
                "ERROR"
            ],
            &rows
        )
    );
    Ok(0)
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead-lettered records with their reasons (unresolved ones unless --all).
    List {
        #[arg(long)]
        pipeline: Option<String>,
        /// Include resolved ones.
        #[arg(long)]
        all: bool,
        #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One dead letter with its record.
    Show {
        id: i64,
        #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
        state: Option<String>,
    },
    /// Send dead letters to the pipeline's sink again (all unresolved ones of the pipeline, or the given ids).
    Retry {
        /// The pipeline file whose sink receives them.
        #[arg(value_name = "PIPELINE.yaml")]
        pipeline: PathBuf,
        /// Dead-letter ids; default: every unresolved one of this pipeline.
        ids: Vec<i64>,
        #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
        state: Option<String>,
    },
}

pub fn dlq(g: &GlobalArgs, c: &DlqCommand) -> anyhow::Result<i32> {
    match c {
        DlqCommand::List {
            pipeline,
            all,
            state,
            limit,
            json,
        } => {
            let st = open_state(state.as_deref())?;
            let list = st.dead_letters(&DeadLetterFilter {
                pipeline: pipeline.clone(),
                include_resolved: *all,
                limit: *limit,
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        d.pipeline.clone(),
                        d.stream.clone(),
                        d.stage.clone(),
                        d.created_at.clone(),
                        if d.resolved_at.is_some() {
                            "resolved".into()
                        } else {
                            "open".into()
                        },
                        d.reason.chars().take(120).collect(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["ID", "PIPELINE", "STREAM", "STAGE", "CREATED", "STATE", "REASON"],
                    &rows
                )
            );
            Ok(0)
        }
        DlqCommand::Show { id, state } => {
            let st = open_state(state.as_deref())?;
            match st.dead_letter_by_id(*id)? {
                Some(d) => {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                    Ok(0)
                }
                None => {
                    eprintln!("error: no dead letter with id {id}");
                    Ok(1)
                }
            }
        }
        DlqCommand::Retry {
            pipeline,
            ids,
            state,
        } => retry(g, pipeline, ids, state.as_deref()),
    }
}

fn retry(
    g: &GlobalArgs,
    path: &std::path::Path,
    ids: &[i64],
    state: Option<&str>,
) -> anyhow::Result<i32> {
    let (def, reg) = match load_valid(g, path)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let st: Arc<dyn StateStore> = Arc::from(open_state(state)?);
    let letters = if ids.is_empty() {
        st.dead_letters(&DeadLetterFilter {
            pipeline: Some(def.name.clone()),
            include_resolved: false,
            limit: 100_000,
        })?
    } else {
        let mut v = Vec::new();
        for id in ids {
            match st.dead_letter_by_id(*id)? {
                Some(d) if d.pipeline == def.name => v.push(d),
                Some(d) => anyhow::bail!(
                    "dead letter {id} belongs to pipeline {:?}, not {:?}",
                    d.pipeline,
                    def.name
                ),
                None => anyhow::bail!("no dead letter with id {id}"),
            }
        }
        v
    };
    let (_source, sink) = open_connectors(&def, &reg, st.clone(), CancelFlag::new())?;
    let (mut ok, mut failed) = (0, 0);
    for d in letters {
        let outcome = retry_dead_letter(&def, &sink, &*st, &d)?;
        match &outcome {
            RetryOutcome::AlreadyResolved => continue,
            RetryOutcome::Delivered { .. } => println!("dead letter {}: delivered", d.id),
            RetryOutcome::NothingToBook => {
                println!("dead letter {}: nothing to book (not revenue)", d.id)
            }
            RetryOutcome::StillInvalid { reason } => {
                println!("dead letter {}: still invalid: {reason}", d.id)
            }
            RetryOutcome::RefusedAgain { reason } => {
                println!("dead letter {}: refused again: {reason}", d.id)
            }
            RetryOutcome::NotWrittenYet { reason } => println!(
                "dead letter {}: not written this time (may pass): {reason}",
                d.id
            ),
            RetryOutcome::Failed { reason } => println!("dead letter {}: {reason}", d.id),
        }
        if outcome.resolved() {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    println!("retried: {ok} delivered, {failed} still failing");
    Ok(if failed == 0 { 0 } else { 1 })
}
