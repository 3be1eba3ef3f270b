//! Starts pipeline runs in the background for the API and the scheduler: one run of a
//! pipeline at a time, live counts while it goes, and a clean stop on shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{oneshot, Notify};

use crate::pipeline::{
    run_pipeline, Counters, PipelineDef, ProgressReporter, RunOptions, RunReport,
};
use crate::plugins::Registry;
use crate::runtime::CancelFlag;
use crate::state::{RunTrigger, StateStore};

/// A run in progress, as `GET /api/v1/runs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRun {
    pub pipeline: String,
    /// `None` until the run is recorded (a moment after it starts).
    pub run_id: Option<i64>,
    /// Why it started.
    pub trigger: RunTrigger,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The counts so far, updated after every page.
    pub counters: Counters,
}

/// Why a run cannot start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    #[error("pipeline {pipeline} is already running (run {})", run_id.map_or("not yet recorded".to_string(), |id| id.to_string()))]
    AlreadyRunning {
        pipeline: String,
        run_id: Option<i64>,
    },
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// A started run: its id, and its report once it ends.
pub struct RunTicket {
    pub pipeline: String,
    pub run_id: Option<i64>,
    done: oneshot::Receiver<RunReport>,
}

impl RunTicket {
    /// The report, if the run ends within `within`; otherwise `None` (the run goes on, and
    /// the ticket can be waited on again).
    pub async fn wait(&mut self, within: Duration) -> Option<RunReport> {
        match tokio::time::timeout(within, &mut self.done).await {
            Ok(Ok(report)) => Some(report),
            // The task ended without a report only if it panicked; say so as a failed run.
            Ok(Err(_)) => Some(RunReport {
                pipeline: self.pipeline.clone(),
                run_id: self.run_id,
                status: crate::state::RunStatus::Failed,
                counters: Counters::default(),
                duration_ms: 0,
                error: Some("the run ended without a report".into()),
                dry_run: false,
            }),
            Err(_) => None,
        }
    }
}

/// Runs pipelines in the background (on the current tokio runtime).
#[derive(Clone)]
pub struct JobRunner {
    reg: Arc<Registry>,
    state: Arc<dyn StateStore>,
    shutdown: CancelFlag,
    live: Arc<Mutex<HashMap<String, Arc<Mutex<LiveRun>>>>>,
    ended: Arc<Notify>,
}

impl JobRunner {
    /// Runs use `reg` and `state`; cancelling `shutdown` stops them at their next checkpoint.
    pub fn new(reg: Arc<Registry>, state: Arc<dyn StateStore>, shutdown: CancelFlag) -> Self {
        Self {
            reg,
            state,
            shutdown,
            live: Arc::default(),
            ended: Arc::new(Notify::new()),
        }
    }

    /// The registry runs open their connectors from.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.reg
    }

    /// The state store runs record into.
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// Starts a run of `def` unless one of the same pipeline is going on. Returns once the run
    /// is recorded, so the ticket carries its id.
    pub async fn start(
        &self,
        def: PipelineDef,
        trigger: RunTrigger,
    ) -> Result<RunTicket, StartError> {
        if self.shutdown.is_cancelled() {
            return Err(StartError::ShuttingDown);
        }
        let slot = {
            let mut live = self.live.lock().expect("live runs lock");
            if let Some(running) = live.get(&def.name) {
                return Err(StartError::AlreadyRunning {
                    pipeline: def.name.clone(),
                    run_id: running.lock().expect("live run lock").run_id,
                });
            }
            let slot = Arc::new(Mutex::new(LiveRun {
                pipeline: def.name.clone(),
                run_id: None,
                trigger,
                started_at: chrono::Utc::now(),
                counters: Counters::default(),
            }));
            live.insert(def.name.clone(), slot.clone());
            slot
        };
        let (started_tx, started_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let progress = Arc::new(LiveProgress {
            slot,
            started: Mutex::new(Some(started_tx)),
        });
        let opts = RunOptions {
            dry_run: false,
            full_refresh: false,
            from: None,
            to: None,
            cancel: self.shutdown.child(),
            progress,
            trigger,
        };
        let pipeline = def.name.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let report = run_pipeline(&def, &this.reg, this.state.clone(), opts).await;
            let c = &report.counters;
            crate::serve::metrics::record_run(
                &report.pipeline,
                report.status.as_str(),
                crate::serve::metrics::RunCounts {
                    read: c.read,
                    written: c.written,
                    dead_lettered: c.dead_lettered,
                    retries: c.retries,
                },
            );
            this.live.lock().expect("live runs lock").remove(&def.name);
            this.ended.notify_waiters();
            let _ = done_tx.send(report);
        });
        // No id when the run could not even be recorded; its report says why.
        let run_id = started_rx.await.ok().flatten();
        Ok(RunTicket {
            pipeline,
            run_id,
            done: done_rx,
        })
    }

    /// The runs going on now.
    pub fn live_runs(&self) -> Vec<LiveRun> {
        let live = self.live.lock().expect("live runs lock");
        live.values()
            .map(|r| r.lock().expect("live run lock").clone())
            .collect()
    }

    /// The run with this id, if it is going on.
    pub fn live_run(&self, run_id: i64) -> Option<LiveRun> {
        self.live_runs()
            .into_iter()
            .find(|r| r.run_id == Some(run_id))
    }

    /// Whether a run of `pipeline` is going on.
    pub fn is_running(&self, pipeline: &str) -> bool {
        self.live
            .lock()
            .expect("live runs lock")
            .contains_key(pipeline)
    }

    /// Asks every run to stop at its next checkpoint and waits until all have ended.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        loop {
            let ended = self.ended.notified();
            if self.live.lock().expect("live runs lock").is_empty() {
                return;
            }
            ended.await;
        }
    }
}

/// Feeds a [`LiveRun`] from the runner's progress calls.
struct LiveProgress {
    slot: Arc<Mutex<LiveRun>>,
    started: Mutex<Option<oneshot::Sender<Option<i64>>>>,
}

impl ProgressReporter for LiveProgress {
    fn started(&self, run_id: Option<i64>) {
        self.slot.lock().expect("live run lock").run_id = run_id;
        if let Some(tx) = self.started.lock().expect("started lock").take() {
            let _ = tx.send(run_id);
        }
    }

    fn update(&self, _stream: &str, c: &Counters) {
        self.slot.lock().expect("live run lock").counters = c.clone();
    }

    fn finish(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{SyncKind, SyncRequest};
    use crate::pipeline::SinkMode;
    use serde_json::json;

    fn runner(dir: &tempfile::TempDir) -> JobRunner {
        let spec = format!("sqlite:{}", dir.path().join("state.db").display());
        let state: Arc<dyn StateStore> = Arc::from(crate::state::open_state(Some(&spec)).unwrap());
        JobRunner::new(Arc::new(Registry::default()), state, CancelFlag::new())
    }

    fn def() -> PipelineDef {
        let req = SyncRequest {
            kind: SyncKind::SyncPos,
            store_id: "s1".into(),
            system: "kassandro".into(),
            credentials: json!({}),
            mode: SinkMode::PerSale,
            mapping: serde_json::Value::Null,
            streams: None,
        };
        // The registry is empty, so build the definition by hand the way `pipeline` would.
        crate::pipeline::parse_pipeline(
            &format!(
                "name: {}\nsource: {{connector: kassandro}}\nsink: {{connector: hub}}\n",
                req.pipeline_name()
            ),
            std::path::Path::new("<test>"),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_run_is_recorded_reported_and_then_no_longer_live() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = runner(&dir);
        let mut ticket = jobs.start(def(), RunTrigger::Api).await.unwrap();
        let id = ticket
            .run_id
            .expect("the run is recorded before start returns");
        let report = ticket.wait(Duration::from_secs(30)).await.expect("ends");
        assert_eq!(report.run_id, Some(id));
        assert_eq!(report.status, crate::state::RunStatus::Failed);
        assert!(
            report.error.as_deref().unwrap_or("").contains("kassandro"),
            "{report:?}"
        );
        assert!(jobs.live_runs().is_empty());
        assert!(!jobs.is_running("syncPOS:s1:kassandro"));
        let recorded = jobs.state().runs(Some("syncPOS:s1:kassandro"), 10).unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].id, id);
    }

    #[tokio::test]
    async fn after_shutdown_nothing_starts() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = runner(&dir);
        jobs.shutdown().await;
        assert!(matches!(
            jobs.start(def(), RunTrigger::Api).await,
            Err(StartError::ShuttingDown)
        ));
    }
}
