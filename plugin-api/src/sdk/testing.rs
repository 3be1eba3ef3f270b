//! A fake host for connector unit tests (feature `testing`): no `abi_stable` type, no network.
//!
//! [`FakeHost`] plays the vendor and the host at once. HTTP requests are answered from a script
//! — answers queued in order, answers by method and URL pattern, or a closure for anything
//! stateful — and every request is recorded, so a test can script failures (the third request
//! gets a 503) and count what the connector sent. The clock is settable, the plugin state lives
//! in memory, and log lines are captured.
//!
//! ```
//! use posbridge_plugin_api::testing::{json_response, FakeHost};
//! use posbridge_plugin_api::{ConnectorError, HttpRequest};
//! use serde_json::json;
//!
//! let fake = FakeHost::new();
//! fake.on("GET", "/v1/items", json_response(200, &json!({"items": [1, 2]})))
//!     .once("GET", "/v1/items", json_response(503, &json!({})))
//!     .on("POST", "/v1/orders/*", ConnectorError::Transient("connection reset".into()));
//! fake.set_now("2026-03-01T12:00:00Z".parse().unwrap());
//!
//! let host = fake.host(); // what `Connector::open` gets
//! let first = host.http(HttpRequest::get("https://api.example.com/v1/items")).unwrap();
//! let second = host.http(HttpRequest::get("https://api.example.com/v1/items?page=2")).unwrap();
//! assert_eq!((first.status, second.status), (503, 200)); // `once` answers first, one time
//! assert!(host.http(HttpRequest::post("https://api.example.com/v1/orders/7")).is_err());
//! assert_eq!(host.now().to_rfc3339(), "2026-03-01T12:00:00+00:00");
//!
//! host.state_put("token", "abc");
//! host.info("done");
//! assert_eq!(fake.request_count(), 3);
//! assert_eq!(fake.requests()[2].method, "POST");
//! assert_eq!(fake.state("token").as_deref(), Some("abc"));
//! assert_eq!(fake.log_lines()[0].message, "done");
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec, Tuple2};
use serde_json::Value;

use crate::abi::{FfiError, FfiHttpRequest, FfiHttpResponse, HostFfi, HostFfi_TO};
use crate::{ConnectorError, Host, HttpRequest, HttpResponse, LogLevel};

type Vendor = dyn Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync;

/// What a scripted request gets: an HTTP answer, or a failure of the request itself (a
/// dropped connection is [`ConnectorError::Transient`], a cancelled one
/// [`ConnectorError::Cancelled`]).
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP answer (any status).
    Response(HttpResponse),
    /// The request fails before an answer arrives.
    Error(ConnectorError),
}

impl From<HttpResponse> for Reply {
    fn from(r: HttpResponse) -> Self {
        Reply::Response(r)
    }
}

impl From<ConnectorError> for Reply {
    fn from(e: ConnectorError) -> Self {
        Reply::Error(e)
    }
}

impl Reply {
    fn into_result(self) -> Result<HttpResponse, ConnectorError> {
        match self {
            Reply::Response(r) => Ok(r),
            Reply::Error(e) => Err(e),
        }
    }
}

/// One log line a connector emitted through [`Host::log`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// The structured fields (an object, `{}` when none).
    pub fields: Value,
}

struct Route {
    method: String,
    pattern: String,
    reply: Reply,
    /// How many more times it answers; `None` for always.
    remaining: Option<usize>,
}

impl Route {
    fn matches(&self, req: &HttpRequest) -> bool {
        let method_ok = self.method == "*" || self.method.eq_ignore_ascii_case(&req.method);
        method_ok && url_matches(&self.pattern, &req.url)
    }
}

/// Whether `url` matches `pattern`: `*` matches everything; a pattern starting with `/` is
/// compared with the URL's path (query left out), otherwise with the whole URL; a trailing
/// `*` makes it a prefix.
fn url_matches(pattern: &str, url: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let subject = if pattern.starts_with('/') {
        let no_query = url.split(['?', '#']).next().unwrap_or(url);
        match no_query.find("://") {
            Some(i) => {
                let rest = &no_query[i + 3..];
                rest.find('/').map(|j| &rest[j..]).unwrap_or("/")
            }
            None => no_query,
        }
    } else {
        url
    };
    match pattern.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == pattern,
    }
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Reply>>,
    routes: Mutex<Vec<Route>>,
    vendor: Option<Arc<Vendor>>,
    requests: Mutex<Vec<HttpRequest>>,
    logs: Mutex<Vec<LogLine>>,
    state: Mutex<HashMap<String, String>>,
    now_millis: AtomicI64,
    cancelled: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock must not hide its own failure behind ours.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host's capabilities with a scripted vendor behind `http`; cheap to clone (clones share
/// everything), so a test keeps one to inspect while the connector holds the [`Host`].
///
/// A request is answered by the first of: the next reply queued with
/// [`FakeHost::respond`]; a route added with [`FakeHost::once`] or [`FakeHost::times`] that has
/// answers left; a route added with [`FakeHost::on`] (first added wins); the vendor closure of
/// [`FakeHost::with_vendor`]. Without any, the request fails with a `Permanent` error naming it.
#[derive(Clone)]
pub struct FakeHost {
    inner: Arc<Inner>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// The default clock: 2023-11-14T22:13:20Z.
    pub const DEFAULT_NOW_MILLIS: i64 = 1_700_000_000_000;

    /// A host with nothing scripted yet and the clock at [`FakeHost::DEFAULT_NOW_MILLIS`].
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A host whose requests (those no queued reply or route answers) go to `vendor`, a
    /// closure playing the vendor — for answers that depend on earlier requests.
    pub fn with_vendor(
        vendor: impl Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync + 'static,
    ) -> Self {
        Self::build(Some(Arc::new(vendor)))
    }

    fn build(vendor: Option<Arc<Vendor>>) -> Self {
        let inner = Inner {
            vendor,
            now_millis: AtomicI64::new(Self::DEFAULT_NOW_MILLIS),
            ..Inner::default()
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The [`Host`] a connector is opened with.
    pub fn host(&self) -> Host {
        Host::from_ffi(HostFfi_TO::from_value(self.clone(), TD_Opaque))
    }

    /// Queues a reply for the next request, whatever it is; queued replies answer in order.
    pub fn respond(&self, reply: impl Into<Reply>) -> &Self {
        lock(&self.inner.queue).push_back(reply.into());
        self
    }

    /// Answers every request with this method (`*` for any) and URL pattern (see below) with
    /// `reply`. Pattern: `*` for any URL; starting with `/`, the URL's path without the query
    /// (`/v1/items`); else the whole URL; a trailing `*` matches any rest (`/v1/items/*`).
    pub fn on(&self, method: &str, pattern: &str, reply: impl Into<Reply>) -> &Self {
        self.route(method, pattern, reply.into(), None)
    }

    /// Like [`FakeHost::on`], for the next matching request only; it answers before `on`
    /// routes, so `once(…503…)` then `on(…200…)` scripts one failure and then success.
    pub fn once(&self, method: &str, pattern: &str, reply: impl Into<Reply>) -> &Self {
        self.times(method, pattern, 1, reply)
    }

    /// Like [`FakeHost::once`], for the next `n` matching requests.
    pub fn times(&self, method: &str, pattern: &str, n: usize, reply: impl Into<Reply>) -> &Self {
        self.route(method, pattern, reply.into(), Some(n))
    }

    fn route(&self, method: &str, pattern: &str, reply: Reply, remaining: Option<usize>) -> &Self {
        lock(&self.inner.routes).push(Route {
            method: method.to_string(),
            pattern: pattern.to_string(),
            reply,
            remaining,
        });
        self
    }

    /// Sets the clock the connector reads through [`Host::now`].
    pub fn set_now(&self, now: chrono::DateTime<chrono::Utc>) -> &Self {
        self.set_now_millis(now.timestamp_millis())
    }

    /// Sets the clock in milliseconds since the Unix epoch.
    pub fn set_now_millis(&self, millis: i64) -> &Self {
        self.inner.now_millis.store(millis, Ordering::SeqCst);
        self
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) -> &Self {
        self.inner
            .now_millis
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        self
    }

    /// Asks the connector to stop: [`Host::is_cancelled`] turns true and [`Host::http`]
    /// fails with [`ConnectorError::Cancelled`].
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
    }

    /// A value of the plugin's key-value state.
    pub fn state(&self, key: &str) -> Option<String> {
        lock(&self.inner.state).get(key).cloned()
    }

    /// Puts a value into the plugin's key-value state (e.g. a cached token from an earlier run).
    pub fn set_state(&self, key: &str, value: &str) -> &Self {
        lock(&self.inner.state).insert(key.to_string(), value.to_string());
        self
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        lock(&self.inner.requests).clone()
    }

    /// How many requests were sent so far.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.requests).len()
    }

    /// The log lines emitted so far as text: `level message fields`, level as a number
    /// (1 error … 5 trace).
    pub fn logs(&self) -> Vec<String> {
        lock(&self.inner.logs)
            .iter()
            .map(|l| format!("{} {} {}", l.level as u8, l.message, l.fields))
            .collect()
    }

    /// The log lines emitted so far.
    pub fn log_lines(&self) -> Vec<LogLine> {
        lock(&self.inner.logs).clone()
    }

    fn answer(&self, req: &HttpRequest) -> Result<HttpResponse, ConnectorError> {
        if let Some(r) = lock(&self.inner.queue).pop_front() {
            return r.into_result();
        }
        {
            let mut routes = lock(&self.inner.routes);
            let limited = routes
                .iter_mut()
                .find(|r| r.remaining.is_some_and(|n| n > 0) && r.matches(req));
            if let Some(r) = limited {
                r.remaining = r.remaining.map(|n| n - 1);
                return r.reply.clone().into_result();
            }
            if let Some(r) = routes
                .iter()
                .find(|r| r.remaining.is_none() && r.matches(req))
            {
                return r.reply.clone().into_result();
            }
        }
        match &self.inner.vendor {
            Some(v) => v(req),
            None => Err(ConnectorError::Permanent(format!(
                "FakeHost: no answer scripted for {} {}",
                req.method, req.url
            ))),
        }
    }
}

/// An answer with this status, headers and body, as a vendor would send it.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A JSON answer with this status.
pub fn json_response(status: u16, body: &serde_json::Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn level_of(n: u8) -> LogLevel {
    match n {
        1 => LogLevel::Error,
        2 => LogLevel::Warn,
        3 => LogLevel::Info,
        4 => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

impl HostFfi for FakeHost {
    fn http(&self, request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError> {
        let req = HttpRequest {
            method: request.method.into_string(),
            url: request.url.into_string(),
            headers: request
                .headers
                .into_iter()
                .map(|Tuple2(k, v)| (k.into_string(), v.into_string()))
                .collect(),
            body: request.body.into_vec(),
            timeout: (request.timeout_ms > 0).then(|| Duration::from_millis(request.timeout_ms)),
        };
        lock(&self.inner.requests).push(req.clone());
        if self.inner.cancelled.load(Ordering::SeqCst) {
            return RResult::RErr(ConnectorError::Cancelled.into());
        }
        match self.answer(&req) {
            Ok(resp) => RResult::ROk(FfiHttpResponse {
                status: resp.status,
                headers: resp
                    .headers
                    .into_iter()
                    .map(|(k, v)| Tuple2(RString::from(k), RString::from(v)))
                    .collect::<RVec<_>>(),
                body: RVec::from(resp.body),
            }),
            Err(e) => RResult::RErr(e.into()),
        }
    }
    fn log(&self, level: u8, _target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>) {
        let fields = serde_json::from_str(fields_json.as_str())
            .unwrap_or_else(|_| Value::String(fields_json.to_string()));
        lock(&self.inner.logs).push(LogLine {
            level: level_of(level),
            message: message.to_string(),
            fields,
        });
    }
    fn now_millis(&self) -> i64 {
        self.inner.now_millis.load(Ordering::SeqCst)
    }
    fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }
    fn state_get(&self, key: RStr<'_>) -> ROption<RString> {
        self.state(key.as_str()).map(RString::from).into()
    }
    fn state_put(&self, key: RStr<'_>, value: RStr<'_>) {
        self.set_state(key.as_str(), value.as_str());
    }
}

/// The former name of [`FakeHost::with_vendor`]'s host, kept so older tests compile.
#[doc(hidden)]
pub struct ScriptedHost;

impl ScriptedHost {
    /// Same as [`FakeHost::with_vendor`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        vendor: impl Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync + 'static,
    ) -> FakeHost {
        FakeHost::with_vendor(vendor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_patterns() {
        assert!(url_matches("*", "https://a/b"));
        assert!(url_matches(
            "/v1/items",
            "https://a.example/v1/items?page=2"
        ));
        assert!(!url_matches("/v1/items", "https://a.example/v1/items/3"));
        assert!(url_matches("/v1/items/*", "https://a.example/v1/items/3"));
        assert!(url_matches("/", "https://a.example"));
        assert!(url_matches(
            "https://a.example/v1/*",
            "https://a.example/v1/x?y=1"
        ));
        assert!(!url_matches("https://b.example/*", "https://a.example/v1"));
    }

    #[test]
    fn queued_replies_then_limited_routes_then_routes_then_the_vendor() {
        let fake = FakeHost::with_vendor(|_| Ok(response(418, &[], "")));
        fake.on("GET", "/a", json_response(200, &json!({})))
            .times("GET", "/a", 2, response(503, &[], ""))
            .respond(response(201, &[], ""));
        let host = fake.host();
        let status = |m: &str, u: &str| {
            host.http(HttpRequest::new(m, format!("https://h{u}")))
                .unwrap()
                .status
        };
        assert_eq!(status("GET", "/a"), 201);
        assert_eq!(status("GET", "/a"), 503);
        assert_eq!(status("GET", "/a"), 503);
        assert_eq!(status("GET", "/a"), 200);
        assert_eq!(status("POST", "/a"), 418);
        assert_eq!(fake.request_count(), 5);
    }

    #[test]
    fn an_unscripted_request_names_itself_and_cancel_stops_http() {
        let fake = FakeHost::new();
        let host = fake.host();
        let e = host.http(HttpRequest::get("https://h/x")).unwrap_err();
        assert!(e.to_string().contains("GET https://h/x"), "{e}");
        fake.cancel();
        assert!(host.is_cancelled());
        assert_eq!(
            host.http(HttpRequest::get("https://h/x")).unwrap_err(),
            ConnectorError::Cancelled
        );
    }

    #[test]
    fn the_clock_moves_and_logs_keep_level_and_fields() {
        let fake = FakeHost::new();
        let host = fake.host();
        assert_eq!(host.now_millis(), FakeHost::DEFAULT_NOW_MILLIS);
        fake.advance(Duration::from_secs(2));
        assert_eq!(host.now_millis(), FakeHost::DEFAULT_NOW_MILLIS + 2000);
        host.log(LogLevel::Warn, "slow", json!({"ms": 5}));
        assert_eq!(
            fake.log_lines(),
            vec![LogLine {
                level: LogLevel::Warn,
                message: "slow".into(),
                fields: json!({"ms": 5})
            }]
        );
        assert_eq!(fake.logs(), vec![r#"2 slow {"ms":5}"#.to_string()]);
    }
}
