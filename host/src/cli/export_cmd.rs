//! `posbridge export`: one stream of a source straight to a file or stdout (ndjson, csv, json),
//! page by page, with the BEEP! Analytics summary of the exported sales on request.
//!
//! Documented in `docs/pipelines.md`, section "posbridge export".

mod csv_columns;
mod destination;
mod pages;
mod summary;
mod writer;

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::Args;
use posbridge_plugin_api::{ConnectorError, ReadRequest};

use super::GlobalArgs;
use crate::pipeline::{load_config_file, BlockingPageLoop, Delivery, PageError};
use crate::plugins::{OpenError, OpenOptions};
use crate::runtime::CancelFlag;
use destination::Destination;
use pages::DayWindow;
use summary::SalesSummary;
use writer::{writer_for, ExportFormat, RecordWriter};

/// Exit code when Ctrl-C stopped the export.
const EXIT_CANCELLED: i32 = 130;

/// Records per page when `--page-size` is not given (the read request's own default).
const DEFAULT_PAGE_SIZE: usize = 500;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The source connector (see `posbridge plugins list`).
    #[arg(long, value_name = "NAME")]
    pub connector: String,
    /// The connector's config, as a JSON (`.json`) or YAML file; it is checked against the
    /// connector's config schema first.
    #[arg(long, value_name = "FILE.json|yaml")]
    pub config: PathBuf,
    /// The stream to export (one the connector can read).
    #[arg(long, default_value = "sales")]
    pub stream: String,
    /// First business day to export (YYYY-MM-DD, inclusive). Passed to the source; records
    /// with a `business_day` before it are left out even if the source returns them.
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last business day to export (YYYY-MM-DD, inclusive). Passed to the source; records
    /// with a `business_day` after it are left out even if the source returns them.
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Output format: ndjson (one record per line), json (one array) or csv (header row, one
    /// row per record; for sales a fixed set of columns).
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    pub format: ExportFormat,
    /// Write the records to this file instead of stdout (`-` is stdout). The file appears
    /// only when the export has finished; a failed export leaves no file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Records per page asked of the source (default: 500).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    /// Also print the BEEP! summary of the exported sales (total revenue, transactions,
    /// average basket, top 10 products): on stdout when the records go to --output, else on
    /// stderr. Sales stream only.
    #[arg(long)]
    pub summary: bool,
    /// Print only the summary (on stdout), no records. Implies --summary.
    #[arg(long, conflicts_with_all = ["output", "format"])]
    pub summary_only: bool,
    /// Write the summary to this file instead of stdout/stderr. Implies --summary.
    #[arg(long, value_name = "FILE")]
    pub summary_output: Option<PathBuf>,
    /// Retries of a failed page read (transient errors and rate limits) before giving up.
    #[arg(long, value_name = "N", default_value_t = Delivery::default().max_retries)]
    pub max_retries: u32,
    /// Seconds to wait for one page before the read counts as failed (and is retried).
    #[arg(long, value_name = "SECS", default_value_t = Delivery::default().timeout_secs)]
    pub timeout_secs: u64,
    /// Pages in a row without records, while the source says more follow, after which the
    /// export stops as going round in circles.
    #[arg(long, value_name = "N", default_value_t = Delivery::default().max_empty_pages)]
    pub max_empty_pages: NonZeroU32,
}

impl ExportArgs {
    fn wants_summary(&self) -> bool {
        self.summary || self.summary_only || self.summary_output.is_some()
    }

    /// The records' file, `None` for stdout.
    fn output_file(&self) -> Option<&Path> {
        self.output.as_deref().filter(|p| *p != Path::new("-"))
    }
}

/// What one export did.
#[derive(Debug, Default)]
struct Counts {
    exported: u64,
    outside_window: u64,
}

pub fn run(g: &GlobalArgs, a: &ExportArgs) -> anyhow::Result<i32> {
    if let (Some(from), Some(to)) = (a.from, a.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    anyhow::ensure!(
        !a.wants_summary() || a.stream == "sales",
        "the summary is computed over sales; it cannot be made for the stream {:?}",
        a.stream
    );
    let config = load_config_file(&a.config)?;
    let reg = g.load_registry();
    let entry = reg.entry(&a.connector)?;
    if !entry
        .manifest
        .find_stream(&a.stream)
        .is_some_and(|s| s.read)
    {
        let readable: Vec<&str> = entry
            .manifest
            .streams
            .iter()
            .filter(|s| s.read)
            .map(|s| s.name.as_str())
            .collect();
        anyhow::bail!(
            "connector {} cannot read the stream {:?} (it reads: {})",
            a.connector,
            a.stream,
            if readable.is_empty() {
                "nothing".to_string()
            } else {
                readable.join(", ")
            }
        );
    }
    let cancel = CancelFlag::new();
    let handle = match reg.open(
        &a.connector,
        &config,
        OpenOptions {
            cancel: cancel.clone(),
            ..OpenOptions::default()
        },
    ) {
        Ok(h) => h,
        Err(OpenError::InvalidConfig {
            connector,
            violations,
        }) => {
            eprintln!(
                "error: {} is not a valid config for connector {connector} ({} problem{}):",
                a.config.display(),
                violations.len(),
                if violations.len() == 1 { "" } else { "s" }
            );
            for v in &violations {
                eprintln!("  {v}");
            }
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };

    let delivery = Delivery {
        max_retries: a.max_retries,
        timeout_secs: a.timeout_secs,
        max_empty_pages: a.max_empty_pages,
        ..Delivery::default()
    };
    let request = ReadRequest {
        stream: a.stream.clone(),
        cursor: None,
        page_size: a.page_size.map_or(DEFAULT_PAGE_SIZE, |n| n as usize),
        from: a.from,
        to: a.to,
        ..Default::default()
    };
    let mut reader = BlockingPageLoop::new(handle, request, &delivery, cancel.clone())?;
    stop_on_ctrl_c(&reader, cancel.clone());

    let mut dest = Destination::new(if a.summary_only {
        None
    } else {
        a.output_file()
    });
    let mut records = if a.summary_only {
        None
    } else {
        Some(writer_for(a.format, &a.stream, dest.open()?))
    };
    let mut summary = a.wants_summary().then(SalesSummary::new);
    let window = DayWindow {
        from: a.from,
        to: a.to,
    };

    let counts = match copy_records(&mut reader, window, &mut records, summary.as_mut(), &cancel) {
        Ok(c) => c,
        Err(e) if is_broken_pipe(&e) && dest.is_stdout() => return Ok(0), // e.g. `| head`
        Err(e) if is_cancelled(&e) => {
            eprintln!(
                "export cancelled{}",
                if dest.is_stdout() {
                    ""
                } else {
                    "; no file written"
                }
            );
            return Ok(EXIT_CANCELLED);
        }
        Err(e) => return Err(e),
    };
    if let Some(w) = records.take() {
        match w.finish() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && dest.is_stdout() => {
                return Ok(0)
            }
            r => r?,
        }
        dest.commit()?;
    }

    let retries = reader.retries();
    let retried = if retries > 0 {
        format!(", {retries} read(s) retried")
    } else {
        String::new()
    };
    let left_out = if counts.outside_window > 0 {
        format!(", {} outside --from/--to left out", counts.outside_window)
    } else {
        String::new()
    };
    if a.summary_only {
        eprintln!("summarized {} sales{left_out}{retried}", counts.exported);
    } else {
        eprintln!(
            "exported {} {} records to {}{left_out}{retried}",
            counts.exported,
            a.stream,
            dest.describe()
        );
    }
    if let Some(s) = summary {
        let json = serde_json::to_string_pretty(&s.report(a.from, a.to))?;
        match &a.summary_output {
            Some(p) => std::fs::write(p, format!("{json}\n"))
                .map_err(|e| anyhow::anyhow!("cannot write the summary to {}: {e}", p.display()))?,
            None if a.summary_only || !dest.is_stdout() => {
                match writeln!(std::io::stdout(), "{json}") {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    r => r?,
                }
            }
            None => eprintln!("{json}"),
        }
    }
    Ok(0)
}

/// Reads every page and hands each record in the window to the writer and the summary.
fn copy_records(
    reader: &mut BlockingPageLoop,
    window: DayWindow,
    records: &mut Option<Box<dyn RecordWriter>>,
    mut summary: Option<&mut SalesSummary>,
    cancel: &CancelFlag,
) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    while let Some(page) = reader.next_page()? {
        for record in &page.records {
            if !window.contains(record) {
                counts.outside_window += 1;
                continue;
            }
            if let Some(s) = summary.as_deref_mut() {
                s.add(record)?;
            }
            if let Some(w) = records.as_mut() {
                w.write(record)?;
            }
            counts.exported += 1;
        }
        if cancel.is_cancelled() {
            return Err(ConnectorError::Cancelled.into());
        }
    }
    Ok(counts)
}

/// Ctrl-C stops the export after the current page; a second Ctrl-C ends the process at once.
fn stop_on_ctrl_c(reader: &BlockingPageLoop, cancel: CancelFlag) {
    reader.runtime().spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the current page (Ctrl-C again to abort)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = std::io::stderr().flush();
                std::process::exit(EXIT_CANCELLED);
            }
        }
    });
}

fn is_cancelled(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ConnectorError>(),
        Some(ConnectorError::Cancelled)
    ) || e
        .downcast_ref::<PageError>()
        .is_some_and(PageError::is_cancelled)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
