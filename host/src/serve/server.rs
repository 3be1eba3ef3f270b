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
    let sealed = Arc::new(super::psp::VaultSealedStore::open(
        state_spec,
        vault.clone(),
    )?);
    let payments = Payments::new(registry.clone(), sealed.clone(), state.clone());
    let catalog = super::pipeline_catalog::PipelineCatalog::open(db.path(), sealed)?;
    let scheduler_clock = crate::schedule::serve_clock()?;
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
        scheduler_clock,
        plugin_dirs,
        rate_limiter: KeyRateLimiter::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
        settings,
        shutdown,
        metrics: metrics::global(),
    }))
}

/// A future that completes on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called (inside a tokio runtime), not when the future is first polled: call it before
/// announcing the server, so that a signal sent right after `listening on …` is not lost to
/// the default action (which would kill the process without a graceful stop).
pub fn termination_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                (term, int) => {
                    let e = term.err().or(int.err()).map(|e| e.to_string());
                    tracing::warn!("cannot watch SIGTERM/SIGINT ({e:?}); stopping on Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves the API on `listener` until `stop` completes; then sets the app's shutdown flag and
/// lets requests in flight finish; running pipelines stop at their next checkpoint, and this
/// returns once they have.
pub async fn serve(listener: TcpListener, app: AppState, stop: impl Future<Output = ()>) {
    let shutdown = app.shutdown.clone();
    let jobs = app.jobs.clone();
    super::schedules::reload(&app).await;
    serve_router(listener, super::router(app), shutdown, stop).await;
    jobs.shutdown().await;
    tracing::info!("stopped: every run reached a checkpoint");
}

/// [`serve`] of a given router; `shutdown` is set when `stop` completes.
async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancelFlag,
    stop: impl Future<Output = ()>,
) {
    crate::webhooks::serve(listener, router, ConnectionLimits::default(), async move {
        stop.await;
        tracing::info!("stopping: no new connections; finishing requests in flight");
        shutdown.cancel();
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::envelope::{ApiResult, Envelope};
    use axum::routing::get;
    use tokio::sync::{oneshot, Notify};

    fn test_app(dir: &std::path::Path) -> AppState {
        let spec = format!("sqlite:{}", dir.join("s.db").display());
        let key = MasterKey::from_hex(&"42".repeat(32), "test").unwrap();
        open_app(
            Some(&spec),
            &key,
            vec![],
            Registry::default(),
            ServeSettings::default(),
        )
        .unwrap()
    }

    #[test]
    fn another_master_key_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        drop(test_app(dir.path()));
        let spec = format!("sqlite:{}", dir.path().join("s.db").display());
        let other = MasterKey::from_hex(&"43".repeat(32), "test").unwrap();
        let err = open_app(
            Some(&spec),
            &other,
            vec![],
            Registry::default(),
            ServeSettings::default(),
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("another key"), "{err}");
    }

    /// A request in flight when the stop comes is answered; the shutdown flag is set at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_lets_requests_in_flight_finish_and_sets_the_shutdown_flag() {
        let dir = tempfile::tempdir().unwrap();
        let app = test_app(dir.path());
        let shutdown = app.shutdown.clone();
        let (entered_tx, entered_rx) = oneshot::channel::<()>();
        let entered_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let release = std::sync::Arc::new(Notify::new());
        let release_in_handler = release.clone();
        let slow = axum::Router::new().route(
            "/slow",
            get(move || {
                if let Some(tx) = entered_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                let release = release_in_handler.clone();
                async move {
                    release.notified().await;
                    let answer: ApiResult<&str> = Ok(Envelope::ok("done"));
                    answer
                }
            }),
        );
        let router = crate::serve::router_of(app, vec![(slow, Default::default())]);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/slow", listener.local_addr().unwrap());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_router(listener, router, shutdown.clone(), async {
            let _ = stop_rx.await;
        }));

        let request = tokio::spawn(async move { reqwest::get(url).await?.text().await });
        entered_rx.await.unwrap();
        stop_tx.send(()).unwrap();
        // The flag that running pipelines watch is set while the request is still in flight.
        shutdown.cancelled().await;
        assert!(
            !server.is_finished(),
            "the server waits for the request in flight"
        );
        release.notify_one();
        let body = request.await.unwrap().unwrap();
        assert_eq!(body, r#"{"success":true,"data":"done"}"#);
        server.await.unwrap();
    }
}
