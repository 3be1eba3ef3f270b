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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use posbridge_plugin_api::model::{Closure, Sale};
use posbridge_plugin_api::{ConnectorError, ReadRequest, RecordOutcome, WriteRequest};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::executor::PluginExecutor;
use super::keys::{closure_key, idempotency_key};
use super::pages::PageLoop;
use super::progress::ProgressReporter;
use super::retry::RetryPolicy;
use super::{PipelineDef, SinkMode};
use crate::plugins::{ConnectorHandle, KvStore, OpenOptions, ReadPage, Registry};
use crate::runtime::CancelFlag;
use crate::state::{stage, Delivered, NewDeadLetter, RunStatus, RunSummary, StateStore};

/// Options of one run.
pub struct RunOptions {
    pub dry_run: bool,
    pub full_refresh: bool,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub cancel: CancelFlag,
    pub progress: Arc<dyn ProgressReporter>,
}

/// Counts of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    pub read: u64,
    pub written: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub retries: u64,
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
    let kv: Arc<dyn KvStore> = Arc::new(StateKv(state));
    let base = OpenOptions {
        cancel,
        kv,
        rate_limit: None,
        extra_secrets: def.resolved_secrets.clone(),
    };
    let source = reg.open(
        &def.source.connector,
        &def.source.config,
        OpenOptions {
            rate_limit: def.source.rate_limit,
            ..base.clone()
        },
    )?;
    let sink = reg.open(
        &def.sink.connector,
        &def.sink.config,
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
        let args = serde_json::json!({
            "full_refresh": opts.full_refresh, "from": opts.from, "to": opts.to,
            "source": def.source.connector, "sink": def.sink.connector,
        });
        match state.start_run(&def.name, chrono::Utc::now(), &args) {
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
    if error.is_none() {
        for stream in &def.source.streams {
            if let Err(e) = run.stream(stream).await {
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
    record: Value,
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
            cursor: start_cursor,
            page_size: def.source.page_size.unwrap_or(def.delivery.batch_size),
            from: self.opts.from.or(def.source.start),
            to: self.opts.to,
        };
        let (tx, mut rx) =
            mpsc::channel::<Result<ReadPage, ConnectorError>>(def.delivery.buffer_pages.max(1));
        let reader = {
            let pages = PageLoop::new(
                self.source.clone(),
                self.exec.clone(),
                request,
                def.delivery.max_empty_pages,
            );
            tokio::spawn(pages.pump(tx, self.opts.cancel.clone()))
        };
        let mut summary = DailySummary::default();
        let mut last_cursor = None;
        let mut result = Ok(());
        while let Some(page) = rx.recv().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    result = Err(anyhow::Error::new(e));
                    break;
                }
            };
            self.c.read += page.records.len() as u64;
            if page.cursor.is_some() {
                last_cursor = page.cursor.clone();
            }
            let checkpoint = if backfill { None } else { page.cursor.clone() };
            let r = match def.sink.mode {
                SinkMode::DailySummary if stream == "sales" => {
                    self.collect(stream, page.records, &mut summary).await
                }
                _ => self.deliver(stream, page.records, checkpoint).await,
            };
            self.c.retries = self.exec.retries();
            self.opts.progress.update(stream, &self.c);
            if let Err(e) = r {
                result = Err(e);
                break;
            }
            if self.opts.cancel.is_cancelled() {
                break;
            }
        }
        drop(rx);
        let _ = reader.await;
        result?;
        if def.sink.mode == SinkMode::DailySummary
            && stream == "sales"
            && !self.opts.cancel.is_cancelled()
        {
            let cursor = if backfill { None } else { last_cursor };
            self.write_summary(summary, cursor).await?;
        }
        Ok(())
    }

    /// Assigns keys, drops what the ledger already has, validates, and dead-letters the invalid.
    async fn prepare(&mut self, stream: &str, records: Vec<Value>) -> anyhow::Result<Vec<Pending>> {
        let source_name = self.source.name().to_string();
        let mut pending: Vec<Pending> = records
            .into_iter()
            .map(|record| Pending {
                key: idempotency_key(&source_name, stream, &record),
                record,
            })
            .collect();
        // The same record twice in one page counts once.
        let mut seen = HashSet::new();
        let before = pending.len();
        pending.retain(|p| seen.insert(p.key.clone()));
        self.c.duplicates += (before - pending.len()) as u64;
        let keys: Vec<String> = pending.iter().map(|p| p.key.clone()).collect();
        let done = self.state.delivered_keys(&self.def.name, &keys)?;
        let before = pending.len();
        pending.retain(|p| !done.contains(&p.key));
        self.c.duplicates += (before - pending.len()) as u64;
        if stream == "sales" && self.def.delivery.validate {
            let mut valid = Vec::with_capacity(pending.len());
            let mut rejected = Vec::new();
            for p in pending {
                match check_sale(&p.record) {
                    Ok(()) => valid.push(p),
                    Err(reason) => rejected.push((p, reason)),
                }
            }
            for (p, reason) in rejected {
                self.dead_letter(stream, p, stage::VALIDATE, reason)?;
            }
            pending = valid;
        }
        Ok(pending)
    }

    fn dead_letter(
        &mut self,
        stream: &str,
        p: Pending,
        stage: &str,
        reason: String,
    ) -> anyhow::Result<()> {
        self.c.dead_lettered += 1;
        tracing::warn!(pipeline = %self.def.name, stream, key = %p.key, stage, %reason, "dead-lettered a record");
        if self.opts.dry_run {
            return Ok(());
        }
        let id = self.state.dead_letter(&NewDeadLetter {
            pipeline: self.def.name.clone(),
            run_id: self.run_id,
            stream: stream.to_string(),
            record_key: Some(p.key.clone()),
            record: p.record,
            reason,
            stage: stage.to_string(),
        })?;
        // In the ledger too, so a re-run does not dead-letter it again; `dlq retry` delivers it.
        self.state.commit_batch(
            &self.def.name,
            stream,
            &[Delivered {
                key: p.key,
                stream: stream.to_string(),
                external_id: Some(format!("dead-letter:{id}")),
            }],
            None,
        )?;
        Ok(())
    }

    /// Writes a page in batches and checkpoints its cursor after the last batch.
    async fn deliver(
        &mut self,
        stream: &str,
        records: Vec<Value>,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        let pending = self.prepare(stream, records).await?;
        let sink_stream = self.def.sink_stream(stream);
        let batch_size = self.def.delivery.batch_size;
        let mut chunks: Vec<Vec<Pending>> = Vec::new();
        let mut it = pending.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(batch_size).collect());
        }
        if chunks.is_empty() {
            if !self.opts.dry_run && cursor.is_some() {
                self.state
                    .commit_batch(&self.def.name, stream, &[], cursor.as_ref())?;
            }
            return Ok(());
        }
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let cp = if i + 1 == n { cursor.clone() } else { None };
            self.write_batch(stream, &sink_stream, chunk, cp).await?;
        }
        Ok(())
    }

    /// One batch to the sink; outcomes into the ledger (with the cursor) or the dead-letter store.
    async fn write_batch(
        &mut self,
        stream: &str,
        sink_stream: &str,
        batch: Vec<Pending>,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        if self.opts.dry_run {
            self.c.written += batch.len() as u64;
            return Ok(());
        }
        let req = WriteRequest {
            stream: sink_stream.to_string(),
            mode: Some(self.def.sink.mode.as_str().to_string()),
            mapping: self.def.mapping.clone(),
            idempotency_keys: batch.iter().map(|p| p.key.clone()).collect(),
        };
        let mut ndjson = Vec::with_capacity(batch.len() * 512);
        for p in &batch {
            serde_json::to_writer(&mut ndjson, &p.record)?;
            ndjson.push(b'\n');
        }
        let sink = self.sink.clone();
        let what = format!("write {} records to {}", batch.len(), sink.name());
        let outcomes = self
            .exec
            .call(&what, move || sink.write_raw(&req, ndjson.clone()))
            .await?;
        if outcomes.len() != batch.len() {
            anyhow::bail!(
                "connector {} answered {} outcomes for {} records; nothing of this batch is checkpointed",
                self.sink.name(),
                outcomes.len(),
                batch.len()
            );
        }
        let mut delivered = Vec::with_capacity(batch.len());
        let mut rejected = Vec::new();
        for (p, o) in batch.into_iter().zip(outcomes) {
            match o {
                RecordOutcome::Written { external_id } => {
                    self.c.written += 1;
                    delivered.push(Delivered {
                        key: p.key,
                        stream: stream.to_string(),
                        external_id,
                    });
                }
                RecordOutcome::Duplicate { external_id } => {
                    self.c.duplicates += 1;
                    delivered.push(Delivered {
                        key: p.key,
                        stream: stream.to_string(),
                        external_id,
                    });
                }
                RecordOutcome::Rejected { reason } => rejected.push((p, reason)),
                // Resent by the retry loop (next change); until then a failure of the batch.
                RecordOutcome::Retry { reason, .. } => {
                    anyhow::bail!("{}: {reason}", self.sink.name())
                }
            }
        }
        // Dead letters first: the commit below may move the cursor past them.
        for (p, reason) in rejected {
            self.dead_letter(stream, p, stage::SINK, reason)?;
        }
        self.state
            .commit_batch(&self.def.name, stream, &delivered, cursor.as_ref())?;
        Ok(())
    }

    /// `daily_summary`: adds the page's new, valid sales to the day totals.
    async fn collect(
        &mut self,
        stream: &str,
        records: Vec<Value>,
        summary: &mut DailySummary,
    ) -> anyhow::Result<()> {
        for p in self.prepare(stream, records).await? {
            match serde_json::from_value::<Sale>(p.record) {
                Ok(sale) => summary.add(p.key, sale),
                Err(e) => anyhow::bail!("sale changed shape after validation: {e}"),
            }
        }
        Ok(())
    }

    /// `daily_summary`: writes one closure per business day and register, then checkpoints
    /// the sales and the closures in the ledger together with the cursor.
    async fn write_summary(
        &mut self,
        summary: DailySummary,
        cursor: Option<Value>,
    ) -> anyhow::Result<()> {
        let def = self.def;
        let (closures, sale_keys) = summary.closures();
        let sink_stream = def.sink_stream("sales");
        let mut pending = Vec::new();
        for (c, keys) in closures {
            pending.push(Pending {
                key: closure_key(&c.id, &keys),
                record: serde_json::to_value(&c)?,
            });
        }
        for chunk in pending.chunks(def.delivery.batch_size) {
            let batch: Vec<Pending> = chunk
                .iter()
                .map(|p| Pending {
                    key: p.key.clone(),
                    record: p.record.clone(),
                })
                .collect();
            self.write_batch(&sink_stream, &sink_stream, batch, None)
                .await?;
        }
        if !self.opts.dry_run {
            let delivered: Vec<Delivered> = sale_keys
                .into_iter()
                .map(|key| Delivered {
                    key,
                    stream: "sales".into(),
                    external_id: None,
                })
                .collect();
            for (i, chunk) in delivered.chunks(5000).enumerate() {
                let last = (i + 1) * 5000 >= delivered.len();
                self.state.commit_batch(
                    &def.name,
                    "sales",
                    chunk,
                    if last { cursor.as_ref() } else { None },
                )?;
            }
            if delivered.is_empty() && cursor.is_some() {
                self.state
                    .commit_batch(&def.name, "sales", &[], cursor.as_ref())?;
            }
        }
        Ok(())
    }
}

/// Checks that a record is a canonical sale that reconciles; the reason otherwise.
pub fn check_sale(record: &Value) -> Result<(), String> {
    let sale: Sale =
        serde_json::from_value(record.clone()).map_err(|e| format!("not a canonical sale: {e}"))?;
    let v = sale.validate();
    if v.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "sale {} does not reconcile: {}",
            sale.id,
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

/// Running totals for `daily_summary`: one closure accumulator per source, store, register,
/// business day and currency, plus the ledger keys of the sales summed. Sales are folded in as
/// they arrive, so memory grows with the number of days and registers (and a key per sale),
/// not with the size of the sales.
#[derive(Default)]
struct DailySummary {
    closures: std::collections::BTreeMap<String, (Closure, Vec<String>)>,
    keys: Vec<String>,
}

impl DailySummary {
    fn add(&mut self, key: String, sale: Sale) {
        // `from_sales` of one sale is that sale's closure (none for training/null receipts).
        for c in Closure::from_sales(std::slice::from_ref(&sale)) {
            let slot = format!("{}\u{0}{}", c.id, c.currency);
            match self.closures.get_mut(&slot) {
                None => {
                    self.closures.insert(slot, (c, vec![key.clone()]));
                }
                Some((acc, keys)) => {
                    merge_closure(acc, c);
                    keys.push(key.clone());
                }
            }
        }
        self.keys.push(key);
    }

    /// The closures with the keys of the sales in each, and every sale key (including
    /// training and null receipts, which are summed into nothing but are done all the same).
    fn closures(self) -> (Vec<(Closure, Vec<String>)>, Vec<String>) {
        (self.closures.into_values().collect(), self.keys)
    }
}

/// Adds closure `c` (same id and currency) into `acc`, exactly.
fn merge_closure(acc: &mut Closure, c: Closure) {
    acc.sales_count += c.sales_count;
    acc.sale_ids.extend(c.sale_ids);
    acc.totals.net += c.totals.net;
    acc.totals.tax += c.totals.tax;
    acc.totals.gross += c.totals.gross;
    acc.totals.discount += c.totals.discount;
    for t in c.taxes {
        match acc.taxes.iter_mut().find(|x| x.rate == t.rate) {
            Some(x) => {
                x.net += t.net;
                x.tax += t.tax;
                x.gross += t.gross;
            }
            None => acc.taxes.push(t),
        }
    }
    acc.taxes.sort_by_key(|t| t.rate);
    for p in c.payments {
        match acc.payments.iter_mut().find(|x| x.method == p.method) {
            Some(x) => x.amount += p.amount,
            None => acc.payments.push(p),
        }
    }
    acc.payments.sort_by(|a, b| a.method.cmp(&b.method));
}
