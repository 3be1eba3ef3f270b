//! Starting and stopping the server: open the state, check the master key against it, listen,
//! and shut down gracefully on SIGTERM or Ctrl-C (stop accepting, set the shutdown flag that
//! running pipelines watch, let requests in flight finish).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;

use super::app::{AppInner, AppState, ServeSettings};
use super::db::ServeDb;
use super::master_key::MasterKey;
use super::metrics;
use super::rate_limit::KeyRateLimiter;
use super::vault::SecretVault;
use crate::hub::HubStore;
use crate::jobs::JobRunner;
use crate::payments::Payments;
use crate::plugins::Registry;
use crate::runtime::CancelFlag;
use crate::webhooks::ConnectionLimits;

/// Store id and purpose of the value that tells whether a master key is the one this state
/// database's secrets were sealed under ("" is no valid store id).
const KEY_CHECK: (&str, &str) = ("", "master-key-check");

/// Seals a known value on first start; later starts must open it, so a wrong key is refused at
/// start rather than at the first credential it cannot open.
pub fn check_master_key(db: &ServeDb, vault: &SecretVault) -> anyhow::Result<()> {
    let (store, purpose) = KEY_CHECK;
    match db.secret(store, purpose)? {
        Some(sealed) => vault.open(store, purpose, &sealed).map(|_| ()).map_err(|_| {
            anyhow::anyhow!(
                "the master key does not open the secrets of {}: they were sealed under another key; \
                 start with the key used before",
                db.path().display()
            )
        }),
        None => {
            let sealed = vault.seal(store, purpose, &json!({"posbridge": "master key check"}))?;
            db.put_secret(store, purpose, &sealed)?;
            Ok(())
        }
    }
}

/// Opens what the server needs: state database (migrated), vault (key checked), connectors.
pub fn open_app(
    state_spec: Option<&str>,
    key: &MasterKey,
    plugin_dirs: Vec<PathBuf>,
    registry: Registry,
    settings: ServeSettings,
) -> anyhow::Result<AppState> {
    let db = ServeDb::open(state_spec).context("cannot open the state database")?;
    let vault = SecretVault::new(key);
    check_master_key(&db, &vault)?;
    let state: Arc<dyn crate::state::StateStore> = Arc::from(crate::state::open_state(state_spec)?);
    let location = crate::state::StateLocation::parse(state_spec)?;
    let hub = HubStore::open(&location).context("cannot open the hub tables")?;
    let registry = Arc::new(registry);
    let shutdown = CancelFlag::new();
    let jobs = JobRunner::new(registry.clone(), state.clone(), shutdown.clone());
    let sealed = super::psp::VaultSealedStore::open(state_spec, vault.clone())?;
    let sealed: Arc<dyn crate::payments::SealedStore> = Arc::new(sealed);
    let payments = Payments::new(registry.clone(), sealed.clone(), state.clone());
    let catalog = super::pipeline_catalog::PipelineCatalog::open(db.path(), sealed)?;
    Ok(AppState::new(AppInner {
        db,
        state,
        state_spec: state_spec.map(str::to_string),
        vault,
        registry,
        hub,
        jobs,
        payments,
        catalog,
        scheduler: Default::default(),
        plugin_dirs,
        rate_limiter: KeyRateLimiter::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
        settings,
        shutdown,
        metrics: metrics::global(),
    }))
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves the API on `listener` until `stop` completes; then sets the app's shutdown flag and
/// lets requests in flight finish; running pipelines stop at their next checkpoint, and this
/// returns once they have.
pub async fn serve(listener: TcpListener, app: AppState, stop: impl Future<Output = ()>) {
    let shutdown = app.shutdown.clone();
    let jobs = app.jobs.clone();
    super::schedules::reload(&app).await;
    let router = super::router(app);
    crate::webhooks::serve(listener, router, ConnectionLimits::default(), async move {
        stop.await;
        tracing::info!("stopping: no new connections; finishing requests in flight");
        shutdown.cancel();
    })
    .await;
    jobs.shutdown().await;
    tracing::info!("stopped: every run reached a checkpoint");
}
