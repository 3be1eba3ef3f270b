//! Schedules inside `posbridge serve`: every held pipeline with a `schedule` runs on its ticks
//! ([`crate::schedule::Scheduler`]: one run at a time, missed ticks after a restart make one
//! run). Runs go through the server's [`crate::jobs::JobRunner`] with trigger `schedule`, so
//! the API shows them live and a tick never overlaps a run started by hand.
//!
//! Creating a scheduled pipeline reloads the scheduler; its progress is in the state database,
//! so a reload neither repeats nor loses a tick.

use std::sync::Arc;

use super::app::AppState;
use crate::runtime::CancelFlag;
use crate::schedule::{jobs_runner, PipelineLookup, ScheduledPipeline, Scheduler, SystemClock};

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
        Arc::new(move |name: &str| match app.catalog.runnable(name) {
            Ok(found) => found.map(|(_, def)| def),
            Err(e) => {
                tracing::error!(pipeline = name, error = %e, "scheduler: cannot read the pipeline");
                None
            }
        })
    };
    let run = jobs_runner(app.jobs.clone(), lookup);
    let scheduler = match Scheduler::new(scheduled, Arc::new(SystemClock), app.state.clone(), run) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "scheduler: cannot start");
            return;
        }
    };
    let cancel = app.shutdown.child();
    scheduler.spawn(cancel.clone());
    *slot = Some(cancel);
}

/// Keeps the running scheduler's stop flag.
pub type SchedulerSlot = tokio::sync::Mutex<Option<CancelFlag>>;
