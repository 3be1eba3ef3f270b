//! The `posbridge` command line: argument definitions and dispatch to one module per command.

mod action_cmd;
mod apikey_cmd;
mod check;
mod conformance_cmd;
#[cfg(feature = "sandbox")]
mod demo_cmd;
mod export_cmd;
mod new_cmd;
mod output;
mod pipeline_cmds;
mod plugins_cmd;
mod run_cmd;
#[cfg(feature = "sandbox")]
mod sandbox_cmd;
mod serve_cmd;
mod state_cmds;
mod webhooks_cmd;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plugins::{default_plugin_dirs, Registry};

/// posbridge moves retail money data between POS systems, accounting tools and payment
/// providers, through connector plugins loaded from folders.
#[derive(Debug, Parser)]
#[command(name = "posbridge", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Folder with connector libraries (repeatable). Default: $POSBRIDGE_PLUGIN_DIR
    /// (`:`-separated), else ./plugins and the folder of the executable.
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Log format on stderr: auto (text on a terminal, JSON otherwise), json or text.
    #[arg(long, global = true, default_value = "auto", value_parser = ["auto", "json", "text"])]
    pub log_format: String,
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        if self.plugin_dirs.is_empty() {
            default_plugin_dirs()
        } else {
            self.plugin_dirs.clone()
        }
    }

    /// Loads the registry and reports skipped libraries on stderr, one line each.
    pub fn load_registry(&self) -> Registry {
        warn_skipped(Registry::load(&self.plugin_dirs()))
    }

    /// Loads libraries until the connectors `names` are there ([`Registry::load_for`]), and
    /// reports the libraries skipped on the way.
    pub fn load_registry_for(&self, names: &[&str]) -> Registry {
        warn_skipped(Registry::load_for(&self.plugin_dirs(), names))
    }
}

fn warn_skipped(reg: Registry) -> Registry {
    for s in reg.skipped() {
        eprintln!("warning: {s}");
    }
    reg
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and inspect the connector plugins found in the plugin folders.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Check a connector config (schema, then the connector's own check) or every connector of a pipeline.
    Check(check::CheckArgs),
    /// Validate a pipeline file: definition, connectors, streams and config schemas; no network.
    Validate {
        #[arg(value_name = "PIPELINE.yaml")]
        pipeline: PathBuf,
    },
    /// Run a pipeline: move new records from its source to its sink, exactly once.
    Run(run_cmd::RunArgs),
    /// Run history with counts and errors.
    Runs(state_cmds::RunsArgs),
    /// The dead-letter store: records that failed validation or that a sink refused.
    #[command(subcommand)]
    Dlq(state_cmds::DlqCommand),
    /// Export a stream of a source straight to a file or stdout (ndjson, csv, json), with an optional summary.
    Export(export_cmd::ExportArgs),
    /// The canonical JSON Schema (draft 2020-12) of a stream, or the list of canonical streams.
    Schema {
        /// A canonical stream, e.g. `sales`; omit to list them.
        stream: Option<String>,
    },
    /// Local simulators of the vendor APIs, and the seeded sales generator.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox_cmd::SandboxArgs),
    /// Run the whole job on local simulators with no setup, and reconcile source against sink.
    #[cfg(feature = "sandbox")]
    Demo(demo_cmd::DemoArgs),
    /// Call one action of a connector (e.g. stripe `process_payment`) and print its JSON answer.
    Action(action_cmd::ActionArgs),
    /// Receive vendor webhooks over HTTP, verified by a connector action (e.g. stripe's `verify_webhook`).
    #[command(subcommand)]
    Webhooks(webhooks_cmd::WebhooksCommand),
    /// The HTTP API: stores, keys, exports, syncs and payments for many merchants on one server.
    Serve(serve_cmd::ServeArgs),
    /// API keys of `posbridge serve`: create (shown once), list, revoke.
    #[command(subcommand)]
    Apikey(apikey_cmd::ApikeyCommand),
    /// Start something new: `new connector NAME` creates a connector project.
    #[command(subcommand)]
    New(new_cmd::NewCommand),
    /// Run the conformance suite against a connector library: pass/fail per check, non-zero exit on failure.
    Conformance(conformance_cmd::ConformanceArgs),
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Name, version, vendor, kinds, streams and file of every loaded connector; skipped files on stderr.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The full manifest of one connector, including its config JSON Schema.
    Inspect {
        /// Connector name.
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Parses the arguments, runs the command and returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let default_filter = match cli.command {
        Command::Run(_) => "warn,posbridge::progress=info",
        Command::Serve(_) => "info",
        _ => "warn",
    };
    output::init_logging(&cli.global, default_filter);
    let result = match &cli.command {
        Command::Plugins(PluginsCommand::List { json }) => plugins_cmd::list(&cli.global, *json),
        Command::Plugins(PluginsCommand::Inspect { name, json }) => {
            plugins_cmd::inspect(&cli.global, name, *json)
        }
        Command::Check(a) => check::run(&cli.global, a),
        Command::Validate { pipeline } => pipeline_cmds::validate(&cli.global, pipeline),
        Command::Run(a) => run_cmd::run(&cli.global, a),
        Command::Runs(a) => state_cmds::runs(a),
        Command::Dlq(c) => state_cmds::dlq(&cli.global, c),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(a) => sandbox_cmd::run(a),
        Command::Schema { stream } => schema(stream.as_deref()),
        Command::Export(a) => export_cmd::run(&cli.global, a),
        #[cfg(feature = "sandbox")]
        Command::Demo(a) => demo_cmd::run(&cli.global, a),
        Command::Webhooks(c) => webhooks_cmd::run(&cli.global, c),
        Command::Serve(a) => serve_cmd::run(&cli.global, a),
        Command::Apikey(c) => apikey_cmd::run(c),
        Command::Action(a) => action_cmd::run(&cli.global, a),
        Command::New(c) => new_cmd::run(c),
        Command::Conformance(a) => conformance_cmd::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// `posbridge schema [STREAM]`.
fn schema(stream: Option<&str>) -> anyhow::Result<i32> {
    use posbridge_plugin_api::model::{stream_schema, STREAMS};
    match stream {
        None => {
            for s in STREAMS {
                println!("{s}");
            }
            Ok(0)
        }
        Some(s) => match stream_schema(s) {
            Some(v) => {
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(0)
            }
            None => {
                let hint = crate::plugins::closest_name(s, STREAMS.iter().copied())
                    .map(|x| format!(" (did you mean {x:?}?)"))
                    .unwrap_or_default();
                eprintln!(
                    "error: unknown stream {s:?}{hint}; canonical streams: {}",
                    STREAMS.join(", ")
                );
                Ok(1)
            }
        },
    }
}
