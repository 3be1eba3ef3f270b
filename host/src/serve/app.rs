//! [`AppState`]: what every handler shares (state database, vault, loaded connectors, limits,
//! the shutdown flag), and [`ServeSettings`], the knobs of `posbridge serve`.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::db::{ServeDb, ServeDbError};
use super::envelope::ApiError;
use super::metrics::Metrics;
use super::pipeline_catalog::PipelineCatalog;
use super::rate_limit::KeyRateLimiter;
use super::schedules::SchedulerSlot;
use super::vault::{SecretVault, VaultError};
use crate::hub::HubStore;
use crate::jobs::JobRunner;
use crate::payments::Payments;
use crate::plugins::Registry;
use crate::runtime::CancelFlag;
use crate::schedule::Clock;
use crate::state::StateStore;

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The largest request body (bytes); larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests per second per API key (sustained); 0 turns the limit off.
    pub rate_limit_per_sec: u32,
    /// Requests a key may send at once before the per-second rate applies.
    pub rate_limit_burst: u32,
    /// A request still running after this long is answered 503 `timeout`.
    pub request_timeout: Duration,
    /// How long a sync call (`syncPOS`, `pushToERP`, …) waits for its run before answering
    /// 202 with the run id to poll.
    pub job_wait: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            rate_limit_per_sec: 50,
            rate_limit_burst: 50,
            request_timeout: Duration::from_secs(30),
            job_wait: Duration::from_secs(20),
        }
    }
}

/// The shared state of the server; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

/// The parts of [`AppState`].
pub struct AppInner {
    /// API keys, stores, sealed secrets.
    pub db: ServeDb,
    /// Cursors, ledger, runs, dead letters (the same database file).
    pub state: Arc<dyn StateStore>,
    /// The `--state` value, for parts that open their own connection.
    pub state_spec: Option<String>,
    /// Seals connector credentials and PSP configs.
    pub vault: SecretVault,
    /// The loaded connectors.
    pub registry: Arc<Registry>,
    /// The canonical hub: the export endpoints read it, the sync jobs fill it.
    pub hub: HubStore,
    /// Runs pipelines in the background: sync jobs, `POST /api/v1/pipelines/{name}/run`,
    /// schedules.
    pub jobs: JobRunner,
    /// PSP configs (sealed) and idempotent payments.
    pub payments: Payments,
    /// The pipelines the server holds (configs sealed).
    pub catalog: PipelineCatalog,
    /// The running scheduler's stop flag ([`super::schedules`]).
    pub scheduler: SchedulerSlot,
    /// The scheduler's time: the system clock, or a test clock in `sandbox` builds
    /// ([`crate::schedule::serve_clock`]).
    pub scheduler_clock: Arc<dyn Clock>,
    /// The plugin folders the registry was loaded from.
    pub plugin_dirs: Vec<PathBuf>,
    pub settings: ServeSettings,
    pub rate_limiter: KeyRateLimiter,
    /// Set on SIGTERM / Ctrl-C: running pipelines watch it and stop at a checkpoint.
    pub shutdown: CancelFlag,
    pub metrics: &'static Metrics,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: AppInner) -> Self {
        Self(Arc::new(inner))
    }

    /// Runs blocking work (database, plugin calls) off the async workers.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppInner) -> Result<T, ApiError> + Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me.0))
            .await
            .map_err(ApiError::internal)?
    }
}

impl AppInner {
    /// Seals `value` under the master key and stores it for `store` and `purpose`
    /// (e.g. `credentials:kassandro`, `psp:stripe`), replacing what was there.
    pub fn put_secret(&self, store: &str, purpose: &str, value: &Value) -> Result<(), ApiError> {
        let sealed = self
            .vault
            .seal(store, purpose, value)
            .map_err(ApiError::internal)?;
        self.db
            .put_secret(store, purpose, &sealed)
            .map_err(ApiError::internal)
    }

    /// The opened value of `store` and `purpose`, if one is stored.
    pub fn secret(&self, store: &str, purpose: &str) -> Result<Option<Value>, ApiError> {
        let Some(sealed) = self.db.secret(store, purpose).map_err(ApiError::internal)? else {
            return Ok(None);
        };
        self.vault
            .open(store, purpose, &sealed)
            .map(Some)
            .map_err(|e: VaultError| ApiError::internal(e))
    }
}

impl From<ServeDbError> for ApiError {
    fn from(e: ServeDbError) -> Self {
        match e {
            ServeDbError::StoreExists(_) => ApiError::conflict(e.to_string()),
            ServeDbError::UnknownStore(_) | ServeDbError::UnknownKey(_) => {
                ApiError::not_found(e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}
