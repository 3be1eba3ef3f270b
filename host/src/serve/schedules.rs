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
use crate::schedule::{RunPipeline, ScheduledPipeline, Scheduler, SystemClock};
use crate::state::RunTrigger;

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
    let run: RunPipeline = {
        let app = app.clone();
        Arc::new(move |name: String| {
            let app = app.clone();
            Box::pin(async move {
                let app2 = app.clone();
                let n = name.clone();
                let def = match tokio::task::spawn_blocking(move || app2.catalog.runnable(&n)).await
                {
                    Ok(Ok(Some((_, def)))) => def,
                    _ => {
                        tracing::error!(pipeline = %name, "scheduler: the pipeline is gone");
                        return;
                    }
                };
                match app.jobs.start(def, RunTrigger::Schedule).await {
                    Ok(mut ticket) => {
                        let report = loop {
                            if let Some(r) = ticket.wait(std::time::Duration::from_secs(3600)).await
                            {
                                break r;
                            }
                        };
                        tracing::info!(pipeline = %name, run_id = ?report.run_id,
                            status = report.status.as_str(), "scheduler: scheduled run ended");
                    }
                    Err(e) => {
                        tracing::warn!(pipeline = %name, error = %e, "scheduler: tick skipped")
                    }
                }
            })
        })
    };
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
