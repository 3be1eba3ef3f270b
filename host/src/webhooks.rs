//! The host's webhook receiver. Plugins cannot listen on a port, so the host accepts
//! `POST`ed deliveries, hands the raw body and the signature header to a connector action
//! (e.g. stripe's `verify_webhook`) and appends each verified event once to an NDJSON file.
//!
//! Answers: 200 `{"received": true}` for a verified event (also for a repeat delivery of an
//! event already stored: vendors retry until they see a 2xx); 400 `{"error": …}` when the
//! connector refuses the delivery; 413 above the body limit; 404/405 for other paths/methods;
//! 500 when the event cannot be stored or the connector fails otherwise (the vendor retries).
//!
//! [`serve`] runs the receiver with [`ConnectionLimits`]: a client must send its request
//! headers within a timeout, and only so many connections are served at once, so slow or
//! idle clients cannot hold the receiver (a "slowloris" of 300 half-sent requests did).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use posbridge_plugin_api::ConnectorError;
use serde_json::{json, Value};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::plugins::ConnectorHandle;

/// The largest request body accepted (1 MiB); larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 1 << 20;

/// Checks one delivery and returns the event it carries.
pub trait WebhookVerifier: Send + Sync + 'static {
    /// `payload` is the raw body; `signature` the signature header's value, if any.
    fn verify(&self, payload: &str, signature: Option<&str>) -> Result<Value, ConnectorError>;
}

/// A [`WebhookVerifier`] that calls a connector action with
/// `{"payload": <body>, "signature_header": <header value>}` (the key is left out when the
/// request has no such header, so the connector reports it missing).
pub struct ConnectorVerifier {
    handle: ConnectorHandle,
    action: String,
}

impl ConnectorVerifier {
    /// Verifies through `action` of the opened connector `handle`.
    pub fn new(handle: ConnectorHandle, action: impl Into<String>) -> Self {
        Self {
            handle,
            action: action.into(),
        }
    }
}

impl WebhookVerifier for ConnectorVerifier {
    fn verify(&self, payload: &str, signature: Option<&str>) -> Result<Value, ConnectorError> {
        let mut input = json!({ "payload": payload });
        if let Some(s) = signature {
            input["signature_header"] = json!(s);
        }
        // The handle already redacts plugin errors; its redactor knows the config's secrets.
        self.handle.action(&self.action, &input)
    }
}

/// Why the event file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: not a JSON event: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What [`EventLog::append`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Written and synced to disk.
    New,
    /// An event with this id is already in the file; nothing written.
    Duplicate,
}

/// An append-only NDJSON file of events that stores each event id at most once.
/// The ids already in the file are read when it is opened, so restarts do not duplicate.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: File,
    seen: HashSet<String>,
    /// The file ends without a newline (a last line written by hand): add one before appending.
    needs_newline: bool,
}

impl EventLog {
    /// Opens (or creates) the file and collects the `id` of every event in it.
    pub fn open(path: &Path) -> Result<Self, EventLogError> {
        let io = |source| EventLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let existing = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut seen = HashSet::new();
        for (i, line) in existing.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(line).map_err(|e| EventLogError::Corrupt {
                path: path.to_path_buf(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            if let Some(id) = event_id(&event) {
                seen.insert(id.to_string());
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            seen,
            needs_newline: !existing.is_empty() && !existing.ends_with('\n'),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many distinct event ids the file holds.
    pub fn ids(&self) -> usize {
        self.seen.len()
    }

    /// Appends `event` as one line and syncs it to disk, unless its `id` is already stored.
    /// Events without a string `id` cannot be recognised again and are always appended.
    pub fn append(&mut self, event: &Value) -> Result<Appended, EventLogError> {
        let id = event_id(event);
        if id.is_some_and(|id| self.seen.contains(id)) {
            return Ok(Appended::Duplicate);
        }
        let mut line = Vec::new();
        if self.needs_newline {
            line.push(b'\n');
        }
        serde_json::to_writer(&mut line, event).map_err(|e| EventLogError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let io = |source| EventLogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.needs_newline = false;
        if let Some(id) = id {
            self.seen.insert(id.to_string());
        }
        Ok(Appended::New)
    }
}

/// The `id` of an event (vendors' retries carry the same id).
fn event_id(event: &Value) -> Option<&str> {
    event.get("id").and_then(Value::as_str)
}

/// Where and how the receiver listens for deliveries.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// The URL path that accepts `POST`s, e.g. `/webhooks/stripe`.
    pub path: String,
    /// The request header holding the signature, e.g. `Stripe-Signature`.
    pub signature_header: HeaderName,
}

/// Why a [`ReceiverSettings`] cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("path {0:?} must start with '/' and contain no '{{', '}}', '?' or '#'")]
    BadPath(String),
    #[error("{0:?} is not a valid HTTP header name")]
    BadHeader(String),
}

impl ReceiverSettings {
    /// Checks the path (a literal route, no captures) and the header name.
    pub fn new(path: &str, signature_header: &str) -> Result<Self, SettingsError> {
        if !path.starts_with('/') || path.contains(['{', '}', '?', '#']) {
            return Err(SettingsError::BadPath(path.to_string()));
        }
        let signature_header = HeaderName::try_from(signature_header)
            .map_err(|_| SettingsError::BadHeader(signature_header.to_string()))?;
        Ok(Self {
            path: path.to_string(),
            signature_header,
        })
    }
}

/// What every request handler shares.
struct Receiver {
    settings: ReceiverSettings,
    verifier: Arc<dyn WebhookVerifier>,
    log: Mutex<EventLog>,
}

/// The receiver's routes: `POST <path>` only, bodies up to [`BODY_LIMIT_BYTES`].
pub fn router(
    settings: ReceiverSettings,
    verifier: Arc<dyn WebhookVerifier>,
    log: EventLog,
) -> Router {
    let path = settings.path.clone();
    let state = Arc::new(Receiver {
        settings,
        verifier,
        log: Mutex::new(log),
    });
    Router::new()
        .route(&path, post(receive))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// One delivery: verify, store once, answer.
async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(payload) = String::from_utf8(body.to_vec()) else {
        tracing::warn!(bytes = body.len(), "webhook refused: body is not UTF-8");
        return error(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
    };
    let header_name = &rx.settings.signature_header;
    let signature = match headers.get(header_name).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.to_string()),
        Some(Err(_)) => {
            let m = format!("the {header_name} header is not visible ASCII");
            tracing::warn!("webhook refused: {m}");
            return error(StatusCode::BAD_REQUEST, &m);
        }
    };
    let bytes = payload.len();
    let rx2 = rx.clone();
    // Plugin calls and fsync block: keep them off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        let event = rx2
            .verifier
            .verify(&payload, signature.as_deref())
            .map_err(Delivery::Refused)?;
        let mut log = rx2.log.lock().unwrap_or_else(|e| e.into_inner());
        let appended = log.append(&event).map_err(Delivery::NotStored)?;
        Ok::<_, Delivery>((event, appended))
    })
    .await;
    match outcome {
        Ok(Ok((event, appended))) => {
            let id = event_id(&event).unwrap_or("");
            let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
            match appended {
                Appended::New => tracing::info!(id, kind, bytes, "webhook event stored"),
                Appended::Duplicate => {
                    tracing::info!(id, kind, bytes, "webhook event already stored (retry)")
                }
            }
            (StatusCode::OK, Json(json!({ "received": true }))).into_response()
        }
        Ok(Err(Delivery::Refused(e))) => {
            // A refusal is the plugin's own reason; anything else keeps its kind in front.
            let (status, m) = match e {
                ConnectorError::Permanent(m) | ConnectorError::Config(m) => {
                    (StatusCode::BAD_REQUEST, m)
                }
                other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
            };
            tracing::warn!(status = status.as_u16(), bytes, "webhook refused: {m}");
            error(status, &m)
        }
        Ok(Err(Delivery::NotStored(e))) => {
            tracing::error!("webhook event not stored: {e}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the event could not be stored",
            )
        }
        Err(e) => {
            tracing::error!("webhook handler failed: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// How long and how many clients the receiver serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection that has not sent a complete request head (request line and headers)
    /// this long after it opened, or after its previous response, is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// How long a shutdown waits for deliveries in flight before it closes their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` over HTTP/1.1 on `listener` within `limits` until `shutdown` completes, then
/// lets requests in flight finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting: past the limit, clients wait in the kernel's backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // E.g. out of file descriptors: wait a little instead of spinning.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("webhook connection closed: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("deliveries still in flight after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// Why a delivery was not accepted.
enum Delivery {
    Refused(ConnectorError),
    NotStored(EventLogError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_stores_each_id_once_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        let mut log = EventLog::open(&path).unwrap();
        let a = json!({"id": "evt_a", "type": "x"});
        assert_eq!(log.append(&a).unwrap(), Appended::New);
        assert_eq!(log.append(&a).unwrap(), Appended::Duplicate);
        drop(log);

        let mut log = EventLog::open(&path).unwrap();
        assert_eq!(log.ids(), 1);
        assert_eq!(log.append(&a).unwrap(), Appended::Duplicate);
        let b = json!({"id": "evt_b"});
        assert_eq!(log.append(&b).unwrap(), Appended::New);
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!("evt_a"), json!("evt_b")]);
    }

    #[test]
    fn a_file_without_a_final_newline_gets_one_before_the_next_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, r#"{"id":"evt_a"}"#).unwrap();
        let mut log = EventLog::open(&path).unwrap();
        assert_eq!(log.append(&json!({"id": "evt_b"})).unwrap(), Appended::New);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"id\":\"evt_a\"}\n{\"id\":\"evt_b\"}\n");
    }

    #[test]
    fn a_corrupt_line_is_reported_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        std::fs::write(&path, "{\"id\":\"evt_a\"}\n{\"id\":\n").unwrap();
        match EventLog::open(&path) {
            Err(EventLogError::Corrupt { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a corrupt line, got {other:?}"),
        }
    }

    #[test]
    fn settings_refuse_paths_that_are_not_literal_routes() {
        assert!(ReceiverSettings::new("/webhooks/stripe", "Stripe-Signature").is_ok());
        assert!(matches!(
            ReceiverSettings::new("webhooks", "Stripe-Signature"),
            Err(SettingsError::BadPath(_))
        ));
        assert!(matches!(
            ReceiverSettings::new("/hooks/{id}", "Stripe-Signature"),
            Err(SettingsError::BadPath(_))
        ));
        assert!(matches!(
            ReceiverSettings::new("/hooks", "bad header"),
            Err(SettingsError::BadHeader(_))
        ));
    }
}
