//! The scheduler: fires pipelines on the ticks of their cron schedules.
//!
//! Its progress per pipeline ("every tick up to T is handled") lives in the state store, so a
//! restart neither repeats a handled tick nor runs once per tick missed while posbridge was down:
//! all the ticks missed make one run. A tick is marked handled when its run starts (a run that
//! dies midway is resumed from its checkpoint by the next tick's run).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::task::{JoinHandle, JoinSet};

use super::{Clock, CronSchedule, ScheduleError};
use crate::jobs::JobRunner;
use crate::pipeline::PipelineDef;
use crate::runtime::CancelFlag;
use crate::state::{RunTrigger, StateStore};

/// Starts one run of the named pipeline; the future ends when the run does.
pub type RunPipeline =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A pipeline and its schedule.
#[derive(Debug, Clone)]
pub struct ScheduledPipeline {
    /// The pipeline's name (its run history and scheduler progress are kept under it).
    pub name: String,
    /// When it runs.
    pub schedule: CronSchedule,
}

impl ScheduledPipeline {
    /// The scheduled pipeline of a definition: `None` without a `schedule`.
    pub fn from_def(def: &PipelineDef) -> Result<Option<Self>, ScheduleError> {
        def.schedule
            .as_deref()
            .map(|expr| {
                Ok(Self {
                    name: def.name.clone(),
                    schedule: CronSchedule::parse(expr)?,
                })
            })
            .transpose()
    }
}

/// What a look at the clock did for one pipeline (pipelines with nothing due are not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// First time this pipeline is scheduled: its ticks count from now on.
    Registered,
    /// A run started for the tick at `tick` (and any earlier ones missed).
    Started { tick: DateTime<Utc> },
    /// The tick came while the pipeline's previous run was still going: skipped, not queued.
    SkippedRunning { tick: DateTime<Utc> },
    /// The state store failed; nothing was started. Tried again at the next look.
    Failed { error: String },
}

/// Fires each pipeline on its ticks, never two runs of one pipeline at once.
pub struct Scheduler {
    pipelines: Vec<ScheduledPipeline>,
    clock: Arc<dyn Clock>,
    state: Arc<dyn StateStore>,
    run: RunPipeline,
    running: Arc<Mutex<HashSet<String>>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Scheduler {
    /// A scheduler of these pipelines. Two pipelines with one name are refused: their runs and
    /// progress would mix.
    pub fn new(
        pipelines: Vec<ScheduledPipeline>,
        clock: Arc<dyn Clock>,
        state: Arc<dyn StateStore>,
        run: RunPipeline,
    ) -> anyhow::Result<Self> {
        let mut seen = HashSet::new();
        for p in &pipelines {
            if !seen.insert(p.name.as_str()) {
                anyhow::bail!("pipeline {:?} is scheduled twice", p.name);
            }
        }
        Ok(Self {
            pipelines,
            clock,
            state,
            run,
            running: Arc::default(),
            tasks: Mutex::new(JoinSet::new()),
        })
    }

    /// A scheduler of the definitions that have a `schedule`, each run through
    /// [`jobs_runner`] (trigger `schedule`). Start it with [`Scheduler::spawn`].
    pub fn for_definitions(
        defs: Vec<PipelineDef>,
        jobs: &JobRunner,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let mut scheduled = Vec::new();
        for d in &defs {
            if let Some(p) = ScheduledPipeline::from_def(d)
                .map_err(|e| anyhow::anyhow!("pipeline {}: $.schedule: {e}", d.name))?
            {
                scheduled.push(p);
            }
        }
        let defs: HashMap<String, PipelineDef> = defs
            .into_iter()
            .filter(|d| d.schedule.is_some())
            .map(|d| (d.name.clone(), d))
            .collect();
        let lookup: PipelineLookup = Arc::new(move |name: &str| Ok(defs.get(name).cloned()));
        let run = jobs_runner(jobs.clone(), lookup);
        Self::new(scheduled, clock, jobs.state().clone(), run)
    }

    /// The pipelines it schedules.
    pub fn pipelines(&self) -> &[ScheduledPipeline] {
        &self.pipelines
    }

    /// Looks at the clock once and starts the runs that are due (on the current tokio runtime).
    pub fn step(&self) -> HashMap<String, TickOutcome> {
        let now = self.clock.now();
        let mut out = HashMap::new();
        for p in &self.pipelines {
            if let Some(outcome) = self.step_one(p, now) {
                out.insert(p.name.clone(), outcome);
            }
        }
        out
    }

    fn step_one(&self, p: &ScheduledPipeline, now: DateTime<Utc>) -> Option<TickOutcome> {
        let failed = |doing: &str, e: crate::state::StateError| {
            tracing::error!(pipeline = %p.name, error = %e, "scheduler: cannot {doing}");
            Some(TickOutcome::Failed {
                error: format!("cannot {doing}: {e}"),
            })
        };
        let handled = match self.state.schedule_handled_until(&p.name) {
            Ok(Some(t)) => t,
            Ok(None) => {
                return match self.state.set_schedule_handled_until(&p.name, now) {
                    Ok(()) => {
                        tracing::info!(pipeline = %p.name, schedule = p.schedule.expression(), "scheduler: pipeline registered");
                        Some(TickOutcome::Registered)
                    }
                    Err(e) => failed("save the schedule's progress", e),
                };
            }
            Err(e) => return failed("read the schedule's progress", e),
        };
        let tick = p.schedule.next_after(handled).filter(|t| *t <= now)?;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let already_running = running.contains(&p.name);
        // Handled before the run starts: a second look cannot start it again, and a restart
        // during the run does not repeat it.
        if let Err(e) = self.state.set_schedule_handled_until(&p.name, now) {
            return failed("save the schedule's progress", e);
        }
        if already_running {
            tracing::warn!(pipeline = %p.name, %tick, "scheduler: tick skipped, the previous run is still going");
            return Some(TickOutcome::SkippedRunning { tick });
        }
        running.insert(p.name.clone());
        drop(running);
        tracing::info!(pipeline = %p.name, %tick, "scheduler: starting a scheduled run");
        let run = (self.run)(p.name.clone());
        let name = p.name.clone();
        let set = self.running.clone();
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(async move {
                // Removed also when the run panics: the guard drops during unwinding.
                let _done = RunningGuard { set, name };
                run.await;
            });
        Some(TickOutcome::Started { tick })
    }

    /// The next tick of any pipeline, by the progress kept in the state store.
    pub fn next_tick(&self) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        self.pipelines
            .iter()
            .filter_map(|p| {
                let handled = self
                    .state
                    .schedule_handled_until(&p.name)
                    .ok()
                    .flatten()
                    .unwrap_or(now);
                p.schedule.next_after(handled)
            })
            .min()
    }

    /// Whether a run of the pipeline started by this scheduler is going.
    pub fn is_running(&self, pipeline: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(pipeline)
    }

    /// Waits for every run started so far to end.
    pub async fn wait_for_runs(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "scheduler: a scheduled run panicked");
            }
        }
    }

    /// Runs the scheduler on the current tokio runtime until `cancel` is set, then waits for
    /// the runs going (the server's [`JobRunner`] stops them at a checkpoint on shutdown)
    /// and ends.
    pub fn spawn(self: Arc<Self>, cancel: CancelFlag) -> JoinHandle<()> {
        tokio::spawn(async move {
            while !cancel.is_cancelled() {
                self.step();
                // A tick still due after a step (the state store failed) is tried again in a
                // second, not in a busy loop.
                let soonest = self.clock.now() + chrono::Duration::seconds(1);
                let next = self.next_tick().map(|t| t.max(soonest));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wait_until(&*self.clock, next) => {}
                }
            }
            self.wait_for_runs().await;
        })
    }
}

/// Waits for `at`, or forever without a next tick.
async fn wait_until(clock: &dyn Clock, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Takes a pipeline out of the running set when its run ends.
struct RunningGuard {
    set: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// Finds the definition of a scheduled pipeline by name (it may read a database: it is called
/// on a blocking thread): `Ok(None)` when it is gone, `Err` with the reason when it is held
/// but cannot run (e.g. its credentials were deleted).
pub type PipelineLookup = Arc<dyn Fn(&str) -> Result<Option<PipelineDef>, String> + Send + Sync>;

/// The [`RunPipeline`] of `serve`: each tick starts the pipeline `lookup` names through `jobs`
/// with [`RunTrigger::Schedule`], so a scheduled run is one of the server's runs (live counts,
/// never alongside a run started over the API, stopped at a checkpoint on shutdown), and waits
/// for it to end. A pipeline that cannot run gets a failed run with the reason, so the run
/// history says why its tick did nothing.
pub fn jobs_runner(jobs: JobRunner, lookup: PipelineLookup) -> RunPipeline {
    Arc::new(move |name: String| {
        let (jobs, lookup) = (jobs.clone(), lookup.clone());
        Box::pin(async move {
            let n = name.clone();
            let found = tokio::task::spawn_blocking(move || lookup(&n))
                .await
                .unwrap_or_else(|e| Err(format!("looking the pipeline up failed: {e}")));
            let def = match found {
                Ok(Some(def)) => def,
                Ok(None) => {
                    tracing::warn!(pipeline = %name, "scheduler: the pipeline is no longer held; tick skipped");
                    return;
                }
                Err(reason) => {
                    let state = jobs.state().clone();
                    let n = name.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        record_failed_start(&*state, &n, &reason)
                    })
                    .await;
                    return;
                }
            };
            let mut ticket = match jobs.start(def, RunTrigger::Schedule).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(pipeline = %name, error = %e, "scheduler: tick skipped");
                    return;
                }
            };
            let report = loop {
                if let Some(r) = ticket.wait(std::time::Duration::from_secs(3600)).await {
                    break r;
                }
            };
            tracing::info!(pipeline = %name, run_id = ?report.run_id, status = report.status.as_str(),
                read = report.counters.read, written = report.counters.written,
                error = report.error.as_deref().unwrap_or(""), "scheduler: scheduled run ended");
        })
    })
}

/// Records a scheduled run that could not start, with its reason, as a failed run.
fn record_failed_start(state: &dyn StateStore, pipeline: &str, reason: &str) {
    tracing::error!(
        pipeline,
        error = reason,
        "scheduler: the scheduled run cannot start"
    );
    let now = Utc::now();
    let recorded = state
        .start_run(pipeline, now, &serde_json::json!({}), RunTrigger::Schedule)
        .and_then(|id| {
            state.finish_run(
                id,
                &crate::state::RunSummary {
                    status: crate::state::RunStatus::Failed,
                    read: 0,
                    written: 0,
                    duplicates: 0,
                    dead_lettered: 0,
                    retries: 0,
                    error: Some(reason.to_string()),
                    finished_at: Utc::now(),
                },
            )
        });
    if let Err(e) = recorded {
        tracing::error!(pipeline, error = %e, "scheduler: cannot record the failed start");
    }
    crate::serve::metrics::record_run(
        pipeline,
        crate::state::RunStatus::Failed.as_str(),
        crate::serve::metrics::RunCounts {
            read: 0,
            written: 0,
            dead_lettered: 0,
            retries: 0,
        },
    );
}

#[cfg(test)]
mod tests;
