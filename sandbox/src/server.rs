//! The server harness: runs a vendor [`Simulator`] on 127.0.0.1 behind the fault middleware,
//! with the control endpoints under `/__sandbox/`.
//!
//! The server runs on its own background thread and tokio runtime, so [`start`] works from
//! plain threads and from inside a tokio runtime alike. Connections are served by hyper
//! directly (not `axum::serve`) so that a "drop" fault can close a connection without answering.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use posbridge_plugin_api::model::Sale;
use tokio::sync::oneshot;
use tower::ServiceExt;

use crate::faults::{apply_faults, DropConnection, FaultController, Faults, RequestLogEntry};

/// What each vendor simulator implements.
pub trait Simulator: Send + Sync + 'static {
    /// The vendor's registry name, e.g. `"kassandro"`.
    fn vendor(&self) -> &'static str;
    /// The vendor's documented routes. The harness adds fault injection and the control
    /// endpoints around them; handlers may extract [`crate::RequestContext`].
    fn router(self: Arc<Self>) -> Router;
    /// Credentials printed for the user, e.g. `("api_key", "...")`.
    fn credentials(&self) -> Vec<(String, String)>;
    /// What a connector reading everything must produce.
    fn canonical_sales(&self) -> Vec<Sale>;
    /// Makes new receipts appear (incremental tests).
    fn add_sales(&self, sales: Vec<Sale>);
}

/// A simulator listening on 127.0.0.1. Dropping it shuts it down too.
pub struct RunningSandbox {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    pub vendor: String,
    pub credentials: Vec<(String, String)>,
    pub sim: Arc<dyn Simulator>,
    controller: Arc<FaultController>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("base_url", &self.base_url)
            .field("vendor", &self.vendor)
            .finish_non_exhaustive()
    }
}

impl RunningSandbox {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting, closes every open connection and frees the port before returning.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    /// The fault knobs in force.
    pub fn faults(&self) -> Faults {
        self.controller.faults()
    }

    /// Changes the fault knobs of the running simulator.
    ///
    /// # Panics
    /// If the knobs are invalid (see [`Faults::validate`]); use [`RunningSandbox::try_set_faults`]
    /// to get the error instead.
    pub fn set_faults(&self, f: Faults) {
        if let Err(e) = self.try_set_faults(f) {
            panic!("invalid faults: {e}");
        }
    }

    /// Changes the fault knobs, refusing invalid ones.
    pub fn try_set_faults(&self, f: Faults) -> Result<(), crate::faults::FaultsError> {
        self.controller.set_faults(f)
    }

    /// The vendor requests seen so far, oldest first (control requests are not logged).
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.controller.requests()
    }

    /// How many vendor requests have arrived so far (the log may have been cleared since).
    pub fn request_count(&self) -> u64 {
        self.controller.request_count()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.controller.clear_requests()
    }

    /// Blocks until the server thread ends (it only ends on shutdown): for a CLI that serves
    /// until it is killed.
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The service error that makes hyper close a connection without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// Starts a simulator on 127.0.0.1 (`port` 0 = any free port) and returns once it listens.
pub fn start(sim: Arc<dyn Simulator>, port: u16, faults: Faults) -> anyhow::Result<RunningSandbox> {
    faults.validate()?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let controller = Arc::new(FaultController::new(faults));
    let app = app(sim.clone(), controller.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(format!("sandbox-{}", sim.vendor()))
        .enable_all()
        .build()
        .context("cannot build the sandbox runtime")?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("sandbox-{}-{}", sim.vendor(), addr.port()))
        .spawn(move || {
            runtime.block_on(serve(listener, app, stop_rx));
            // Dropping the runtime cancels every connection task still running.
            runtime.shutdown_background();
        })
        .context("cannot spawn the sandbox thread")?;
    Ok(RunningSandbox {
        base_url: format!("http://{addr}"),
        addr,
        vendor: sim.vendor().to_string(),
        credentials: sim.credentials(),
        sim,
        controller,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// The full router: control endpoints, everything else to the vendor behind the faults.
fn app(sim: Arc<dyn Simulator>, controller: Arc<FaultController>) -> Router {
    let vendor = sim.router().layer(axum::middleware::from_fn_with_state(
        controller.clone(),
        apply_faults,
    ));
    Router::new()
        .route(
            "/__sandbox/faults",
            get(get_faults).put(put_faults).patch(patch_faults),
        )
        .route(
            "/__sandbox/requests",
            get(get_requests).delete(delete_requests),
        )
        .with_state(controller)
        .fallback_service(vendor)
}

async fn get_faults(State(ctl): State<Arc<FaultController>>) -> Json<Faults> {
    Json(ctl.faults())
}

fn store_faults(ctl: &FaultController, f: Faults) -> Response {
    match ctl.set_faults(f) {
        Ok(()) => Json(ctl.faults()).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// PUT replaces every knob (missing fields take their defaults).
async fn put_faults(State(ctl): State<Arc<FaultController>>, Json(f): Json<Faults>) -> Response {
    store_faults(&ctl, f)
}

/// PATCH changes only the knobs present in the body.
async fn patch_faults(
    State(ctl): State<Arc<FaultController>>,
    Json(patch): Json<serde_json::Value>,
) -> Response {
    let mut current = serde_json::to_value(ctl.faults()).unwrap_or_default();
    if let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            cur.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<Faults>(current) {
        Ok(f) => store_faults(&ctl, f),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct LogQuery {
    /// Only entries with a larger request number.
    since: Option<u64>,
}

/// The log, oldest first; `?since=N` keeps the requests numbered above N.
async fn get_requests(
    State(ctl): State<Arc<FaultController>>,
    Query(q): Query<LogQuery>,
) -> Json<Vec<RequestLogEntry>> {
    let mut log = ctl.requests();
    if let Some(since) = q.since {
        log.retain(|e| e.request_no > since);
    }
    Json(log)
}

async fn delete_requests(State(ctl): State<Arc<FaultController>>) -> StatusCode {
    ctl.clear_requests();
    StatusCode::NO_CONTENT
}

/// Accepts connections until told to stop, then closes them all.
async fn serve(listener: std::net::TcpListener, app: Router, mut stop: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("sandbox listener: {e}");
            return;
        }
    };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!("sandbox accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                connections.spawn(serve_connection(stream, app));
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(stream: tokio::net::TcpStream, app: Router) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(req.map(axum::body::Body::new)).await;
            let response: Response = match response {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                Err(Dropped)
            } else {
                Ok(response)
            }
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
