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
    Ok(AppState::new(AppInner {
        db,
        state,
        state_spec: state_spec.map(str::to_string),
        vault,
        registry,
        plugin_dirs,
        rate_limiter: KeyRateLimiter::new(settings.rate_limit_per_sec, settings.rate_limit_burst),
        settings,
        shutdown: CancelFlag::new(),
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
/// lets requests in flight finish.
pub async fn serve(listener: TcpListener, app: AppState, stop: impl Future<Output = ()>) {
    let shutdown = app.shutdown.clone();
    let router = super::router(app);
    crate::webhooks::serve(listener, router, ConnectionLimits::default(), async move {
        stop.await;
        tracing::info!("stopping: no new connections; finishing requests in flight");
        shutdown.cancel();
    })
    .await;
}
