//! Schedules inside `posbridge serve`: every held pipeline with a `schedule` runs on its ticks
//! ([`crate::schedule::Scheduler`]: one run at a time, missed ticks after a restart make one
//! run). Runs go through the server's [`crate::jobs::JobRunner`] with trigger `schedule`, so
//! the API shows them live and a tick never overlaps a run started by hand.
//!
//! Creating, replacing or deleting a pipeline reloads the scheduler; its progress is in the
//! state database, so a reload neither repeats nor loses a tick. A pipeline seen for the first
//! time is registered during the reload (its ticks count from then on), before the call that
//! made it answers.
//!
//! The scheduler's clock is the system clock, or the file named by
//! `POSBRIDGE_SCHEDULER_CLOCK_FILE` in `sandbox` builds ([`crate::schedule::serve_clock`]).

use std::sync::Arc;

use super::app::AppState;
use crate::runtime::CancelFlag;
use crate::schedule::{jobs_runner, PipelineLookup, ScheduledPipeline, Scheduler};

/// Starts (or restarts) the scheduler over the held pipelines that have a schedule.
pub async fn reload(app: &AppState) {
    let app2 = app.clone();
    let held = match tokio::task::spawn_blocking(move || app2.catalog.list()).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "scheduler: cannot list the pipelines");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "scheduler: listing the pipelines failed");
            return;
        }
    };
    let mut scheduled = Vec::new();
    for h in held {
        match ScheduledPipeline::from_def(&h.blank) {
            Ok(Some(p)) => scheduled.push(p),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(pipeline = %h.blank.name, error = %e, "scheduler: bad schedule; not scheduled")
            }
        }
    }
    let mut slot = app.scheduler.lock().await;
    if let Some(old) = slot.take() {
        old.cancel();
    }
    if scheduled.is_empty() {
        return;
    }
    let lookup: PipelineLookup = {
        let app = app.clone();
        Arc::new(move |name: &str| {
            app.catalog
                .runnable(name)
                .map(|found| found.map(|(_, def)| def))
                .map_err(|e| e.to_string())
        })
    };
    let run = jobs_runner(app.jobs.clone(), lookup);
    let clock = app.scheduler_clock.clone();
    let scheduler = match Scheduler::new(scheduled, clock, app.state.clone(), run) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "scheduler: cannot start");
            return;
        }
    };
    // Registers new pipelines (and starts what is due) now, not at the task's first turn.
    scheduler.step();
    let cancel = app.shutdown.child();
    scheduler.spawn(cancel.clone());
    *slot = Some(cancel);
}

/// Keeps the running scheduler's stop flag.
pub type SchedulerSlot = tokio::sync::Mutex<Option<CancelFlag>>;
