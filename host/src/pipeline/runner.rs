//! The runner: moves records from a source to a sink so that every record arrives exactly
//! once, whatever happens.
//!
//! - The source is read page by page on a task of its own; pages flow through a bounded
//!   channel (`delivery.buffer_pages`) to the writer, so memory does not grow with the run.
//! - Each record gets a deterministic idempotency key. Keys already in the state store's
//!   ledger are skipped; the others are validated (sales must reconcile to the cent), written
//!   in batches, and recorded in the ledger together with the page's cursor in one
//!   transaction — only after the sink acknowledged. A run killed at any moment resumes from
//!   the last checkpoint; records written but not checkpointed carry the same keys the second
//!   time, and the sink drops them. (`daily_summary` folds sales into running day totals and
//!   writes the closures once the source is exhausted, since a day's closure needs all of them.)
//! - Records failing validation or refused by the sink go to the dead-letter store with the
//!   reason; the run goes on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::RVec;
use chrono::NaiveDate;
use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{ConnectorError, ReadRequest, RecordOutcome, WriteRequest};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::analyse::{analyse_pages, Analysed, AnalysedPage, Analyser, Line, PageFailure};
use super::daily_summary::DailySummary;
use super::executor::PluginExecutor;
use super::keys::{closure_key, conflict_key};
use super::pages::PageLoop;
use super::progress::ProgressReporter;
use super::retry::RetryPolicy;
use super::{PipelineDef, SinkMode};
use crate::plugins::{page_buffers, ConnectorHandle, KvStore, OpenOptions, Registry};
use crate::runtime::CancelFlag;
use crate::state::{
    stage, Checkpoint, Delivered, NewDeadLetter, RunStatus, RunSummary, RunTrigger, StateStore,
};

/// `daily_summary`: at most this many sales' ledger entries ride in one batch of closures
/// (each costs ≈ 450 bytes while its batch is written: keys, ids and the closure's line). A
/// batch is alive while its commit merges the ledger (a sort of 100,000 entries, several MB):
/// with 20,000 the two coincided at 1 M sales and the run peaked at 59.3–59.8 MiB against
/// 48.2–49.0 at 100 k; with 5,000 at 52.5–54.7 MiB, as fast (`docs/performance.md`, "night").
const SALES_PER_SUMMARY_BATCH: usize = 5_000;

/// `daily_summary`: closures read back from the run's spill at a time, when they are written.
const CLOSURES_PER_READ: usize = 256;

/// Options of one run.
pub struct RunOptions {
    pub dry_run: bool,
    pub full_refresh: bool,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub cancel: CancelFlag,
    pub progress: Arc<dyn ProgressReporter>,
    /// Why the run starts, recorded in the run history.
    pub trigger: RunTrigger,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub retries: u64,
    /// The same counts per source stream (what the API's `synced` figures are made of).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_stream: BTreeMap<String, StreamCounters>,
}

/// The counts of one stream of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StreamCounters {
    pub read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

impl Counters {
    fn stream_totals(&self) -> StreamCounters {
        StreamCounters {
            read: self.read,
            written: self.written,
            duplicates: self.duplicates,
            dead_lettered: self.dead_lettered,
        }
    }

    /// Adds what changed since `before` to the counts of `stream`.
    fn record_stream(&mut self, stream: &str, before: StreamCounters) {
        let now = self.stream_totals();
        let e = self.by_stream.entry(stream.to_string()).or_default();
        e.read += now.read - before.read;
        e.written += now.written - before.written;
        e.duplicates += now.duplicates - before.duplicates;
        e.dead_lettered += now.dead_lettered - before.dead_lettered;
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub pipeline: String,
    pub run_id: Option<i64>,
    pub status: RunStatus,
    #[serde(flatten)]
    pub counters: Counters,
    pub duration_ms: u64,
    pub error: Option<String>,
    pub dry_run: bool,
}

/// Plugin key-value state kept in the state store.
struct StateKv(Arc<dyn StateStore>);

impl KvStore for StateKv {
    fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.0.kv_get(namespace, key).ok().flatten()
    }
    fn put(&self, namespace: &str, key: &str, value: &str) {
        if let Err(e) = self.0.kv_put(namespace, key, value) {
            tracing::warn!(namespace, key, error = %e, "cannot save plugin state");
        }
    }
}

/// Opens both connectors of a pipeline.
pub fn open_connectors(
    def: &PipelineDef,
    reg: &Registry,
    state: Arc<dyn StateStore>,
    cancel: CancelFlag,
) -> anyhow::Result<(ConnectorHandle, ConnectorHandle)> {
    // A connector upgraded under the pipeline gets its config in its own version's shape.
    let (source_config, sink_config) = super::migrations::migrated_configs(def, reg, &*state)?;
    let location = state.location();
    let kv: Arc<dyn KvStore> = Arc::new(StateKv(state));
    let base = OpenOptions {
        cancel,
        kv,
        rate_limit: None,
        extra_secrets: def.resolved_secrets.clone(),
        state: location,
    };
    let source = reg.open(
        &def.source.connector,
        &source_config,
        OpenOptions {
            rate_limit: def.source.rate_limit,
            ..base.clone()
        },
    )?;
    let sink = reg.open(
        &def.sink.connector,
        &sink_config,
        OpenOptions {
            rate_limit: def.sink.rate_limit,
            ..base
        },
    )?;
    Ok((source, sink))
}

struct Run<'a> {
    def: &'a PipelineDef,
    opts: &'a RunOptions,
    state: Arc<dyn StateStore>,
    source: ConnectorHandle,
    sink: ConnectorHandle,
    exec: PluginExecutor,
    run_id: Option<i64>,
    c: Counters,
}

/// Runs a pipeline to the end (or to the first unrecoverable error, or Ctrl-C).
pub async fn run_pipeline(
    def: &PipelineDef,
    reg: &Registry,
    state: Arc<dyn StateStore>,
    opts: RunOptions,
) -> RunReport {
    let started = Instant::now();
    let run_id = if opts.dry_run {
        None
    } else {
        // A run of this pipeline killed earlier stays `running` otherwise.
        if let Err(e) = state.mark_interrupted_runs(Some(&def.name)) {
            tracing::warn!(error = %e, "cannot check for interrupted runs");
        }
        let args = serde_json::json!({
            "full_refresh": opts.full_refresh, "from": opts.from, "to": opts.to,
            "source": def.source.connector, "sink": def.sink.connector,
        });
        match state.start_run(&def.name, chrono::Utc::now(), &args, opts.trigger) {
            Ok(id) => Some(id),
            Err(e) => {
                return failed(
                    def,
                    None,
                    started,
                    format!("cannot record the run: {e}"),
                    &opts,
                )
            }
        }
    };
    opts.progress.started(run_id);
    let (source, sink) = match open_connectors(def, reg, state.clone(), opts.cancel.clone()) {
        Ok(x) => x,
        Err(e) => {
            let report = failed(def, run_id, started, format!("{e:#}"), &opts);
            finish(&state, &report);
            return report;
        }
    };
    let exec = PluginExecutor::new(
        4,
        Duration::from_secs(def.delivery.timeout_secs),
        RetryPolicy::from_delivery(&def.delivery),
        opts.cancel.clone(),
    );
    let mut run = Run {
        def,
        opts: &opts,
        state: state.clone(),
        source,
        sink,
        exec,
        run_id,
        c: Counters::default(),
    };
    let mut error = None;
    if opts.full_refresh && !opts.dry_run {
        if let Err(e) = state.reset_cursors(&def.name) {
            error = Some(format!("cannot reset cursors: {e}"));
        }
    }
    if error.is_none() && !opts.dry_run {
        if let Err(e) = super::migrations::migrate_cursors(def, reg, &*state) {
            error = Some(format!("{e:#}"));
        }
    }
    if error.is_none() {
        for stream in &def.source.streams {
            let before = run.c.stream_totals();
            let outcome = run.stream(stream).await;
            run.c.record_stream(stream, before);
            if let Err(e) = outcome {
                let cancelled = e
                    .downcast_ref::<ConnectorError>()
                    .is_some_and(|c| matches!(c, ConnectorError::Cancelled));
                if !cancelled {
                    error = Some(e.to_string());
                }
                break;
            }
            if opts.cancel.is_cancelled() {
                break;
            }
        }
    }
    run.c.retries = run.exec.retries();
    opts.progress.finish();
    let status = if error.is_some() {
        RunStatus::Failed
    } else if opts.cancel.is_cancelled() {
        RunStatus::Cancelled
    } else {
        RunStatus::Succeeded
    };
    let report = RunReport {
        pipeline: def.name.clone(),
        run_id,
        status,
        counters: run.c.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        error,
        dry_run: opts.dry_run,
    };
    finish(&state, &report);
    report
}

fn failed(
    def: &PipelineDef,
    run_id: Option<i64>,
    started: Instant,
    error: String,
    opts: &RunOptions,
) -> RunReport {
    RunReport {
        pipeline: def.name.clone(),
        run_id,
        status: RunStatus::Failed,
        counters: Counters::default(),
        duration_ms: started.elapsed().as_millis() as u64,
        error: Some(error),
        dry_run: opts.dry_run,
    }
}

fn finish(state: &Arc<dyn StateStore>, r: &RunReport) {
    if let Some(id) = r.run_id {
        let summary = RunSummary {
            status: r.status,
            read: r.counters.read,
            written: r.counters.written,
            duplicates: r.counters.duplicates,
            dead_lettered: r.counters.dead_lettered,
            retries: r.counters.retries,
            error: r.error.clone(),
            finished_at: chrono::Utc::now(),
        };
        if let Err(e) = state.finish_run(id, &summary) {
            tracing::error!(run_id = id, error = %e, "cannot record the end of the run");
        }
    }
}

/// A record on its way to the sink.
struct Pending {
    key: String,
    /// The record as one line of JSON, sent to the sink as it is.
    line: Line,
    /// `line` was parsed by the host as one JSON object (see `WriteRequest::lines_checked`).
    line_checked: bool,
    /// What the record says, for documents (see [`super::content_fingerprint`]).
    fingerprint: Option<String>,
    /// Ledger entries committed in the same transaction as this record's outcome: the sales
    /// summed into a daily closure, so a crash can never leave a closure booked and its sales
    /// free to be summed again (or the other way round).
    riders: Vec<Delivered>,
    /// `daily_summary`: the parsed sale.
    sale: Option<Result<Box<Sale>, String>>,
}

/// How often a run hands the allocator's free memory back to the system (see
/// [`release_free_memory`]).
const PAGES_BETWEEN_MEMORY_RELEASES: u64 = 50;

/// Gives the memory glibc's allocator holds free back to the system. Pages are allocated on
/// one thread and freed on another, so free memory collects in the allocator's per-thread
/// arenas and peak RSS creeps up over a long run (73 MiB at 1,000,000 sales in `daily_summary`,
/// against 62 at 100,000). `malloc_trim` releases it — the free pages inside every arena too —
/// in well under a millisecond; every [`PAGES_BETWEEN_MEMORY_RELEASES`] pages it costs nothing
/// measurable.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Lines as one NDJSON buffer: a page's the run is done with when one is kept
/// (`page_buffers`), else a new one.
fn join_lines(lines: &[Line]) -> RVec<u8> {
    let len = lines.iter().map(|l| l.len() + 1).sum::<usize>();
    join_lines_into(page_buffers::take(len), len, lines)
}

/// [`join_lines`] into `kept`, emptied and with room for `len` bytes, when there is one, else
/// into a new buffer.
fn join_lines_into(kept: Option<RVec<u8>>, len: usize, lines: &[Line]) -> RVec<u8> {
    let mut ndjson = kept.unwrap_or_else(|| {
        let mut fresh = Vec::with_capacity(len);
        // A hint: the buffer is written the same whether it was mapped here or not.
        let _ = map_in_one_call(&mut fresh);
        RVec::from(fresh)
    });
    for line in lines {
        // Not `extend_from_slice`: `RVec`'s clones byte by byte.
        ndjson.extend_from_copy_slice(line);
        ndjson.push(b'\n');
    }
    ndjson
}

/// Maps the pages of a buffer's spare capacity in one system call (`MADV_POPULATE_WRITE`,
/// Linux 5.14 and later; elsewhere, or on an older kernel, nothing happens). A batch's buffer
/// (≈ 1.6 MB for 1,000 sales) is above glibc's mmap threshold (see `main.rs`), so it is fresh
/// memory each time, and it was mapped one page fault per 4 KiB page as `join_lines` wrote it:
/// 3/4 of that function's time (`perf`: 125 of its 178 ms in a 100,000-sale run), on the
/// writer's thread, the pipeline's critical path.
///
/// Answers the system's error when it did not map them (`EINVAL`: a kernel without the call).
fn map_in_one_call(buf: &mut Vec<u8>) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf only reads a system constant.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            p if p > 0 => p as usize,
            _ => return Err(std::io::Error::last_os_error()),
        };
        let start = buf.as_mut_ptr() as usize;
        let first = start.next_multiple_of(page);
        let last = (start + buf.capacity()) / page * page;
        if last > first {
            // SAFETY: the range lies inside the buffer's own allocation (whole pages of it),
            // and populating maps its pages without changing what they hold; a failure (an
            // old kernel) leaves them to be mapped as they are written.
            let rc = unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_POPULATE_WRITE,
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
    Ok(())
}

impl Pending {
    fn from_analysed(a: Analysed) -> Self {
        Pending {
            key: a.key,
            line: a.line,
            line_checked: a.is_object,
            fingerprint: a.fingerprint,
            riders: Vec::new(),
            sale: a.sale,
        }
    }

    /// The record as a value, for the rare places that show or store it (dead letters,
    /// reasons). It parsed once already, so it parses again.
    fn record(&self) -> Value {
        serde_json::from_slice(&self.line)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.line).into_owned()))
    }
}

/// What a page or a daily summary has for the sink once keys, the ledger and validation had
/// their say: the records to write and the records to park (committed with the cursor).
#[derive(Default)]
struct Prepared {
    pending: Vec<Pending>,
    parked: Vec<NewDeadLetter>,
}

impl Run<'_> {
    async fn stream(&mut self, stream: &str) -> anyhow::Result<()> {
        let def = self.def;
        // An explicit window (--from) is a backfill: it neither starts from nor moves the
        // incremental cursor; the ledger keeps it free of duplicates.
        let backfill = self.opts.from.is_some() || self.opts.to.is_some();
        let start_cursor = if backfill {
            None
        } else {
            self.state.cursor(&def.name, stream)?
        };
        let request = ReadRequest {
            stream: stream.to_string(),
            cursor: start_cursor.clone(),
            page_size: def.source.page_size.unwrap_or(def.delivery.batch_size),
            from: self.opts.from.or(def.source.start),
            to: self.opts.to,
            // The analysis parses every line, and a line that is not JSON fails its page.
            host_checks_lines: true,
        };
        let first_request = request.clone();
        let (tx, pages_rx) = mpsc::channel(def.delivery.buffer_pages.max(1));
        let reader = {
            let pages = PageLoop::new(
                self.source.clone(),
                self.exec.clone(),
                request,
                def.delivery.max_empty_pages,
            )
            .with_lines();
            tokio::spawn(pages.pump(tx, self.opts.cancel.clone()))
        };
        // Pages are analysed (parsed once: keys, fingerprints, validation), two at a time, on
        // threads of their own while the page before them is written.
        let (analysed_tx, mut rx) = mpsc::channel(1);
        let analyser = Arc::new(Analyser {
            source: self.source.name().to_string(),
            stream: stream.to_string(),
            validate: def.delivery.validate,
            keep_sales: def.sink.mode == SinkMode::DailySummary,
        });
        let analysing = tokio::spawn(analyse_pages(analyser, pages_rx, analysed_tx));
        let mut summary = match def.sink.mode {
            SinkMode::DailySummary if stream == "sales" => Some(DailySummary::new()?),
            _ => None,
        };
        let mut summary_parked = Vec::new();
        let mut last_cursor = None;
        let mut result = Ok(());
        let mut pages_done = 0u64;
        let mut bad_line = None;
        while let Some(page) = rx.recv().await {
            let page = match page {
                Ok(p) => p,
                Err(PageFailure::BadLine(e)) => {
                    bad_line = Some(e);
                    break;
                }
                Err(PageFailure::Failed(e)) => {
                    result = Err(anyhow::Error::new(e));
                    break;
                }
            };
            self.c.read += page.records.len() as u64;
            if page.cursor.is_some() {
                last_cursor = page.cursor.clone();
            }
            let checkpoint = if backfill { None } else { page.cursor.clone() };
            let r = match summary.as_mut() {
                Some(summary) => {
                    self.collect(stream, page, summary, &mut summary_parked)
                        .await
                }
                None => self.deliver(stream, page, checkpoint).await,
            };
            self.c.retries = self.exec.retries();
            self.opts.progress.update(stream, &self.c);
            pages_done += 1;
            if pages_done.is_multiple_of(PAGES_BETWEEN_MEMORY_RELEASES) {
                release_free_memory();
            }
            if let Err(e) = r {
                result = Err(e);
                break;
            }
            if self.opts.cancel.is_cancelled() {
                break;
            }
        }
        drop(rx);
        let _ = analysing.await;
        let _ = reader.await;
        if let Some(host_error) = bad_line {
            // Pages come in order: the failing one was read at the cursor of the page before.
            let read_at = last_cursor.clone().or(start_cursor);
            result = Err(self
                .where_the_source_says(first_request, read_at, host_error)
                .await);
        }
        result?;
        if let Some(summary) = summary {
            if !self.opts.cancel.is_cancelled() {
                let cursor = if backfill { None } else { last_cursor };
                self.write_summary(summary, summary_parked, cursor).await?;
            }
        }
        Ok(())
    }

    /// The error for a page with a line that is not JSON. The source was told the host checks
    /// lines (`ReadRequest::host_checks_lines`) and may have skipped its own check, so it reads
    /// the page again with its check on: its error names the place in its own terms (a file
    /// and line). If it reads the page fine this time, the host's error stands.
    async fn where_the_source_says(
        &self,
        mut request: ReadRequest,
        read_at: Option<Value>,
        host_error: ConnectorError,
    ) -> anyhow::Error {
        request.cursor = read_at;
        request.host_checks_lines = false;
        let source = self.source.clone();
        let what = format!(
            "read {} from {} again, with its own check of each line",
            request.stream,
            source.name()
        );
        match self
            .exec
            .call(&what, move || source.read_lines(&request))
            .await
        {
            Err(source_error) => anyhow::Error::new(source_error),
            Ok(_) => anyhow::Error::new(host_error),
        }
    }

    /// Drops what the ledger already has (the page's records carry their keys), parks
    /// conflicting versions and invalid sales (to be committed with the cursor), and answers
    /// the rest.
    async fn prepare(&mut self, stream: &str, page: AnalysedPage) -> anyhow::Result<Prepared> {
        let mut out = Prepared::default();
        // The same record twice in one page counts once; the same id with other content is
        // a conflict (the first version goes on, the second is parked with both named).
        let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(page.records.len());
        let mut candidates: Vec<Pending> = Vec::with_capacity(page.records.len());
        let mut checks: Vec<Option<Result<(), String>>> = Vec::with_capacity(page.records.len());
        for mut a in page.records {
            let check = a.check.take();
            let p = Pending::from_analysed(a);
            match first_seen.get(&p.key) {
                None => {
                    first_seen.insert(p.key.clone(), candidates.len());
                    candidates.push(p);
                    checks.push(check);
                }
                Some(&i) if candidates[i].fingerprint == p.fingerprint => self.c.duplicates += 1,
                Some(&i) => {
                    let first = &candidates[i];
                    let record = p.record();
                    let reason = format!(
                        "{} came twice in one page with other content: the first version ({}, {}) \
                         goes on, this one ({}, {}) is parked",
                        record_label(stream, &record),
                        first.fingerprint.as_deref().unwrap_or("-"),
                        summary_of(&first.record()),
                        p.fingerprint.as_deref().unwrap_or("-"),
                        summary_of(&record),
                    );
                    self.park_conflict(stream, p, reason, &mut out)?;
                }
            }
        }
        let keys: Vec<String> = candidates.iter().map(|p| p.key.clone()).collect();
        let done = self.state.delivered_fingerprints(&self.def.name, &keys)?;
        let mut pending_checks = Vec::with_capacity(candidates.len());
        for (p, check) in candidates.into_iter().zip(checks) {
            match done.get(&p.key) {
                None => {
                    out.pending.push(p);
                    pending_checks.push(check);
                }
                Some(Some(old)) if p.fingerprint.as_ref().is_some_and(|new| new != old) => {
                    let record = p.record();
                    let reason = format!(
                        "{} was delivered before with other content (fingerprint {old}); this \
                         version ({}, {}) is parked, not delivered",
                        record_label(stream, &record),
                        p.fingerprint.as_deref().unwrap_or("-"),
                        summary_of(&record),
                    );
                    self.park_conflict(stream, p, reason, &mut out)?;
                }
                Some(_) => self.c.duplicates += 1,
            }
        }
        if !out.parked.is_empty() {
            // Parked conflicts carry their own key: drop those parked before.
            let keys: Vec<String> = out
                .parked
                .iter()
                .filter_map(|d| d.record_key.clone())
                .collect();
            let seen = self.state.delivered_keys(&self.def.name, &keys)?;
            out.parked.retain(|d| {
                let again = d.record_key.as_ref().is_some_and(|k| seen.contains(k));
                if again {
                    self.c.duplicates += 1;
                }
                !again
            });
        }
        // Validated when analysed; sales that fail are parked now that they are known new.
        let mut valid = Vec::with_capacity(out.pending.len());
        for (p, check) in std::mem::take(&mut out.pending)
            .into_iter()
            .zip(pending_checks)
        {
            match check {
                Some(Err(reason)) => {
                    out.parked
                        .push(self.dead_letter(stream, p, stage::VALIDATE, reason))
                }
                _ => valid.push(p),
            }
        }
        out.pending = valid;
        self.c.dead_lettered += out.parked.len() as u64;
        Ok(out)
    }

    /// Parks a record whose id came with other content, under a key of its own (so the same
    /// conflicting version is parked once, and `dlq retry` books it as a record of its own).
    fn park_conflict(
        &mut self,
        stream: &str,
        mut p: Pending,
        reason: String,
        out: &mut Prepared,
    ) -> anyhow::Result<()> {
        p.key = conflict_key(&p.key, p.fingerprint.as_deref().unwrap_or(""));
        out.parked
            .push(self.dead_letter(stream, p, stage::CONFLICT, reason));
        Ok(())
    }

    /// The dead letter of a record (not yet stored: it is committed with its checkpoint).
    fn dead_letter(&self, stream: &str, p: Pending, stage: &str, reason: String) -> NewDeadLetter {
        tracing::warn!(pipeline = %self.def.name, stream, key = %p.key, stage, %reason, "dead-lettered a record");
        NewDeadLetter {
            pipeline: self.def.name.clone(),
            run_id: self.run_id,
            stream: stream.to_string(),
            record: p.record(),
            record_key: Some(p.key),
            reason,
            stage: stage.to_string(),
        }
    }

    /// Commits one checkpoint in one transaction (nothing in a dry run).
    fn checkpoint(
        &self,
        stream: &str,
        delivered: &[Delivered],
        dead_letters: &[NewDeadLetter],
        cursor: Option<&Value>,
    ) -> anyhow::Result<()> {
        if self.opts.dry_run {
            return Ok(());
        }
        self.state.commit(
            &self.def.name,
            stream,
            &Checkpoint {
                delivered,
                dead_letters,
                cursor,
            },
        )?;
        Ok(())
    }

    /// Writes a page in batches and checkpoints its cursor (with the page's parked records)
    /// after the last batch.
    async fn deliver(
        &mut self,
        stream: &str,
        page: AnalysedPage,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        let Prepared { pending, parked } = self.prepare(stream, page).await?;
        let sink_stream = self.def.sink_stream(stream);
        let batch_size = self.def.delivery.batch_size.max(1);
        let mut chunks: Vec<Vec<Pending>> = Vec::new();
        let mut it = pending.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(batch_size).collect());
        }
        if chunks.is_empty() {
            if cursor.is_some() || !parked.is_empty() {
                self.checkpoint(stream, &[], &parked, cursor.as_ref())?;
            }
            return Ok(());
        }
        let n = chunks.len();
        let mut parked = Some(parked);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let last = i + 1 == n;
            let (cp, with) = if last {
                (cursor.clone(), parked.take().unwrap_or_default())
            } else {
                (None, Vec::new())
            };
            self.write_batch(stream, &sink_stream, chunk, with, cp)
                .await?;
        }
        Ok(())
    }

    /// One batch to the sink. Each answer is committed at once in one transaction: acknowledged
    /// records (with their riders) into the ledger, refused ones into the dead-letter store.
    /// Records the sink answered `retry` are sent again, alone, after a backoff; the cursor
    /// and `parked` are committed with the answer that leaves nothing to retry. Gives up after
    /// `max_retries` rounds in a row that brought no record further.
    async fn write_batch(
        &mut self,
        stream: &str,
        sink_stream: &str,
        batch: Vec<Pending>,
        parked: Vec<NewDeadLetter>,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        if self.opts.dry_run {
            self.c.written += batch.len() as u64;
            return Ok(());
        }
        let max_rounds = self.exec.policy().max_retries;
        let mut remaining = batch;
        let mut parked = Some(parked);
        let mut stalled_rounds = 0u32;
        loop {
            let req = WriteRequest {
                stream: sink_stream.to_string(),
                mode: Some(self.def.sink.mode.as_str().to_string()),
                mapping: self.def.mapping.clone(),
                idempotency_keys: remaining.iter().map(|p| p.key.clone()).collect(),
                lines_checked: remaining.iter().all(|p| p.line_checked),
            };
            // The lines as they came from the source: nothing is serialized again. The sink
            // takes the buffer, so each attempt joins them afresh (no copy kept for retries).
            let lines: Vec<Line> = remaining.iter().map(|p| p.line.clone()).collect();
            let sink = self.sink.clone();
            let what = format!("write {} records to {}", remaining.len(), sink.name());
            let outcomes = self
                .exec
                .call(&what, move || sink.write_raw(&req, join_lines(&lines)))
                .await?;
            if outcomes.len() != remaining.len() {
                anyhow::bail!(
                    "connector {} answered {} outcomes for {} records; nothing of this batch is checkpointed",
                    self.sink.name(),
                    outcomes.len(),
                    remaining.len()
                );
            }
            let mut delivered = Vec::with_capacity(remaining.len());
            let mut dead = Vec::new();
            let mut again = Vec::new();
            let mut last_reason = String::new();
            let mut wait_at_least = None;
            for (mut p, o) in remaining.into_iter().zip(outcomes) {
                let newly_written = matches!(o, RecordOutcome::Written { .. });
                match o {
                    RecordOutcome::Written { external_id }
                    | RecordOutcome::Duplicate { external_id } => {
                        if newly_written {
                            self.c.written += 1;
                        } else {
                            self.c.duplicates += 1;
                        }
                        delivered.append(&mut p.riders);
                        delivered.push(Delivered {
                            key: p.key,
                            stream: stream.to_string(),
                            external_id,
                            content_hash: p.fingerprint,
                        });
                    }
                    RecordOutcome::Rejected { reason } => {
                        self.c.dead_lettered += 1;
                        // The sales of a refused closure are in its dead letter: `dlq retry`
                        // books them with it.
                        delivered.append(&mut p.riders);
                        dead.push(self.dead_letter(stream, p, stage::SINK, reason));
                    }
                    RecordOutcome::Retry {
                        reason,
                        retry_after_ms,
                    } => {
                        last_reason = reason;
                        if let Some(ms) = retry_after_ms {
                            let ms = Duration::from_millis(ms);
                            wait_at_least = Some(wait_at_least.map_or(ms, |w: Duration| w.max(ms)));
                        }
                        again.push(p);
                    }
                }
            }
            let progressed = !delivered.is_empty() || !dead.is_empty();
            if again.is_empty() {
                let mut all_dead = parked.take().unwrap_or_default();
                all_dead.extend(dead);
                self.checkpoint(stream, &delivered, &all_dead, cursor.as_ref())?;
                return Ok(());
            }
            self.checkpoint(stream, &delivered, &dead, None)?;
            if progressed {
                stalled_rounds = 0;
            }
            if stalled_rounds >= max_rounds {
                anyhow::bail!(
                    "{} of {} records still not written to {} after {} retries: {}",
                    again.len(),
                    stream,
                    self.sink.name(),
                    stalled_rounds,
                    last_reason
                );
            }
            let err = ConnectorError::RateLimited {
                retry_after: wait_at_least,
                message: last_reason.clone(),
            };
            let wait = if wait_at_least.is_some() {
                self.exec.policy().delay(stalled_rounds, &err)
            } else {
                self.exec.policy().delay(
                    stalled_rounds,
                    &ConnectorError::Transient(last_reason.clone()),
                )
            };
            tracing::warn!(pipeline = %self.def.name, stream, records = again.len(),
                wait_ms = wait.as_millis() as u64, reason = %last_reason,
                "the sink asked to send records again");
            self.exec.pause(wait).await?;
            stalled_rounds += 1;
            remaining = again;
        }
    }

    /// `daily_summary`: adds the page's new, valid sales to the day totals.
    async fn collect(
        &mut self,
        stream: &str,
        page: AnalysedPage,
        summary: &mut DailySummary,
        parked: &mut Vec<NewDeadLetter>,
    ) -> anyhow::Result<()> {
        let prepared = self.prepare(stream, page).await?;
        parked.extend(prepared.parked);
        for p in prepared.pending {
            let sale = match &p.sale {
                Some(Ok(sale)) => sale,
                Some(Err(e)) => anyhow::bail!("sale changed shape after validation: {e}"),
                None => anyhow::bail!("sale {} was not parsed for the summary", p.key),
            };
            // A sale an earlier page of this run brought already (its key is not in the ledger
            // before the closures are committed) is summed once.
            let Some(first) = summary.add(&p.key, p.fingerprint.as_deref(), sale)? else {
                continue;
            };
            if first == p.fingerprint {
                self.c.duplicates += 1;
            } else {
                let record = p.record();
                let reason = format!(
                    "{} came again in this run with other content: the first version ({}) \
                     is summed, this one ({}, {}) is parked",
                    record_label(stream, &record),
                    first.as_deref().unwrap_or("-"),
                    p.fingerprint.as_deref().unwrap_or("-"),
                    summary_of(&record),
                );
                let mut out = Prepared::default();
                self.park_conflict(stream, p, reason, &mut out)?;
                self.c.dead_lettered += out.parked.len() as u64;
                parked.extend(out.parked);
            }
        }
        Ok(())
    }

    /// `daily_summary`: writes one closure per business day and register. Each closure's key
    /// and the keys of the sales in it are committed in one transaction with the sink's answer,
    /// so a run killed at any moment leaves every sale either booked in a committed closure or
    /// free to be summed again — never both. The cursor, the parked sales and the keys of sales
    /// that are no revenue (training, null receipts) are committed last, together.
    async fn write_summary(
        &mut self,
        mut summary: DailySummary,
        parked: Vec<NewDeadLetter>,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        let def = self.def;
        let sink_stream = def.sink_stream("sales");
        let batch_size = def.delivery.batch_size.max(1);
        // A batch is `batch_size` closures, or fewer when their sales (committed with them)
        // add up to more than `SALES_PER_SUMMARY_BATCH`: memory stays bounded by a batch.
        let mut batch: Vec<Pending> = Vec::new();
        let mut sales_in_batch = 0;
        summary.finish()?;
        let mut after: Option<String> = None;
        loop {
            let closures = summary.closures_after(after.as_deref(), CLOSURES_PER_READ)?;
            let Some((last, _)) = closures.last() else {
                break;
            };
            after = Some(last.clone());
            for (slot, mut c) in closures {
                let sales = summary.sales_of(Some(&slot))?;
                let mut riders = Vec::with_capacity(sales.len());
                c.sale_ids = Vec::with_capacity(sales.len());
                for s in sales {
                    c.sale_ids.push(s.sale_id);
                    riders.push(s.entry);
                }
                let key_list: Vec<String> = riders.iter().map(|d| d.key.clone()).collect();
                sales_in_batch += riders.len();
                batch.push(Pending {
                    key: closure_key(&c.id, &key_list),
                    line: Line::owned(serde_json::to_vec(&serde_json::to_value(&c)?)?),
                    line_checked: true,
                    fingerprint: None,
                    riders,
                    sale: None,
                });
                if batch.len() >= batch_size || sales_in_batch >= SALES_PER_SUMMARY_BATCH {
                    let full = std::mem::take(&mut batch);
                    sales_in_batch = 0;
                    self.write_batch(&sink_stream, &sink_stream, full, Vec::new(), None)
                        .await?;
                    release_free_memory();
                }
            }
        }
        if !batch.is_empty() {
            self.write_batch(&sink_stream, &sink_stream, batch, Vec::new(), None)
                .await?;
        }
        let loose: Vec<Delivered> = summary
            .sales_of(None)?
            .into_iter()
            .map(|s| s.entry)
            .collect();
        if !loose.is_empty() || !parked.is_empty() || cursor.is_some() {
            self.checkpoint("sales", &loose, &parked, cursor.as_ref())?;
        }
        Ok(())
    }
}

/// How a record is named in a reason: `sale k:1:42`, `closures record c1`.
fn record_label(stream: &str, record: &Value) -> String {
    let id = posbridge_plugin_api::model::record_id(record).unwrap_or_else(|| "(no id)".into());
    match stream {
        "sales" => format!("sale {id}"),
        "closures" => format!("closure {id}"),
        other => format!("{other} record {id}"),
    }
}

/// What a version of a record says, in a few words, for a person comparing two versions.
fn summary_of(record: &Value) -> String {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "?".into(),
    };
    match record.get("totals") {
        Some(t) => format!(
            "gross {} {}, {} lines",
            text(t.get("gross")),
            text(record.get("currency")),
            record
                .get("lines")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        ),
        None => {
            let mut s = record.to_string();
            if s.len() > 120 {
                let mut cut = 120;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push('…');
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_one_per_line() {
        let lines = [
            Line::owned(b"{\"a\":1}".to_vec()),
            Line::owned(b"[]".to_vec()),
        ];
        assert_eq!(join_lines(&lines).as_slice(), b"{\"a\":1}\n[]\n");
        assert!(join_lines(&[]).is_empty());
    }

    #[test]
    fn lines_are_joined_into_a_kept_page_buffer() {
        let lines = [Line::owned(b"{\"a\":1}".to_vec())];
        let kept = RVec::with_capacity(64);
        let address = kept.as_ptr();
        let joined = join_lines_into(Some(kept), 8, &lines);
        assert_eq!(joined.as_slice(), b"{\"a\":1}\n");
        assert_eq!(joined.as_ptr(), address, "the same memory");
    }

    /// A batch's buffer is mapped before it is written: every whole page of it is resident.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_batch_buffer_is_mapped_in_one_call() {
        let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
        if let Err(e) = map_in_one_call(&mut buf) {
            assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
            eprintln!("skipped: this kernel has no MADV_POPULATE_WRITE (Linux 5.14 and later)");
            return;
        }
        // SAFETY: sysconf reads a constant; mincore only reports on pages of our allocation.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let start = (buf.as_ptr() as usize).next_multiple_of(page);
        let end = (buf.as_ptr() as usize + buf.capacity()) / page * page;
        let mut resident = vec![0u8; (end - start) / page];
        let rc = unsafe {
            libc::mincore(
                start as *mut libc::c_void,
                end - start,
                resident.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0);
        let missing = resident.iter().filter(|b| *b & 1 == 0).count();
        assert_eq!(
            missing,
            0,
            "{missing} of {} pages not mapped",
            resident.len()
        );
    }
}
