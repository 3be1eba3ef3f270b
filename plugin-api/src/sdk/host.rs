//! The safe face of the host capabilities a connector calls back into.

use std::sync::Arc;
use std::time::Duration;

use abi_stable::std_types::{RStr, RString, RVec, Tuple2};
use serde_json::Value;

use crate::abi::{FfiHttpRequest, HostBox};
use crate::ConnectorError;

/// Log levels understood by [`Host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something is off but the work goes on.
    Warn = 2,
    /// Progress worth showing.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

/// An HTTP request to hand to the host.
///
/// ```
/// use posbridge_plugin_api::HttpRequest;
/// let r = HttpRequest::get("https://api.example.com/v1/items").header("Accept", "application/json");
/// assert_eq!(r.method, "GET");
/// ```
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// The HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// The full URL, query included.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// How long the host waits for the answer; `None` for its default (30 s).
    pub timeout: Option<Duration>,
}

impl HttpRequest {
    /// A request with this method and URL, no headers and no body.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            ..Default::default()
        }
    }
    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }
    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// A JSON body with its content type.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("Content-Type", "application/json")
    }
    /// A JSON body written with exact decimal numbers (see [`crate::json_text::Json`]).
    pub fn json_text(mut self, body: &crate::json_text::Json) -> Self {
        self.body = body.to_text().into_bytes();
        self.header("Content-Type", "application/json")
    }
    /// Sets the body (set the content type with [`HttpRequest::header`]).
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
    /// Sets the timeout of this request.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// The host's answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The body as JSON; a parse error is `Transient` (a truncated or garbled page is worth a retry).
    pub fn json(&self) -> Result<Value, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::Transient(format!(
                "response is not valid JSON ({e}): {}",
                self.snippet()
            ))
        })
    }
    /// The first 200 characters of the body, for error messages.
    pub fn snippet(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(200)
            .collect()
    }
    /// `Retry-After` as delta-seconds or an HTTP date, if present and readable. A date is
    /// measured from the system clock; prefer [`HttpResponse::retry_after_at`] with
    /// [`Host::now`], which is the host's clock (what the toolkit in [`crate::rest`] does).
    ///
    /// ```
    /// use posbridge_plugin_api::HttpResponse;
    /// let r = HttpResponse { status: 429, headers: vec![("Retry-After".into(), "3".into())], body: vec![] };
    /// assert_eq!(r.retry_after(), Some(std::time::Duration::from_secs(3)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_at(chrono::Utc::now())
    }

    /// `Retry-After` as delta-seconds or an HTTP date, measured from `now`.
    ///
    /// ```
    /// use posbridge_plugin_api::HttpResponse;
    /// let r = HttpResponse { status: 503, headers: vec![("retry-after".into(), "Sun, 01 Mar 2026 12:00:30 GMT".into())], body: vec![] };
    /// let now = "2026-03-01T12:00:00Z".parse().unwrap();
    /// assert_eq!(r.retry_after_at(now), Some(std::time::Duration::from_secs(30)));
    /// ```
    pub fn retry_after_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| crate::rest::retry_after::parse_retry_after(v, now))
    }
    /// Maps a non-2xx status to the usual typed error: 401/403 `Auth`, 429 `RateLimited`,
    /// 408/5xx `Transient`, other 4xx `Permanent`.
    pub fn error_for_status(&self, context: &str) -> Result<(), ConnectorError> {
        let msg = || format!("{context}: HTTP {} {}", self.status, self.snippet());
        match self.status {
            200..=299 => Ok(()),
            401 | 403 => Err(ConnectorError::Auth(msg())),
            429 => Err(ConnectorError::RateLimited {
                retry_after: self.retry_after(),
                message: msg(),
            }),
            408 | 500..=599 => Err(ConnectorError::Transient(msg())),
            _ => Err(ConnectorError::Permanent(msg())),
        }
    }
}

/// The host's capabilities, cheap to clone. Obtained in [`crate::Connector::open`].
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostBox>,
}

impl Host {
    /// Wraps the host's capabilities (the SDK and the test host call this).
    #[doc(hidden)]
    pub fn from_ffi(inner: HostBox) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Performs an HTTP request through the host (which owns timeouts, egress rules and tracing).
    /// Transport failures come back as `Transient`; HTTP error statuses are returned as responses.
    pub fn http(&self, req: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        if self.is_cancelled() {
            return Err(ConnectorError::Cancelled);
        }
        let ffi = FfiHttpRequest {
            method: req.method.into(),
            url: req.url.into(),
            headers: req
                .headers
                .into_iter()
                .map(|(k, v)| Tuple2(RString::from(k), RString::from(v)))
                .collect::<RVec<_>>(),
            body: RVec::from(req.body),
            timeout_ms: req.timeout.map(|t| t.as_millis() as u64).unwrap_or(0),
        };
        let resp = self
            .inner
            .http(ffi)
            .into_result()
            .map_err(ConnectorError::from)?;
        Ok(HttpResponse {
            status: resp.status,
            headers: resp
                .headers
                .into_iter()
                .map(|Tuple2(k, v)| (k.into_string(), v.into_string()))
                .collect(),
            body: resp.body.into_vec(),
        })
    }

    /// Emits a log event through the host's `tracing`, tagged with the plugin.
    pub fn log(&self, level: LogLevel, message: &str, fields: Value) {
        let fields = if fields.is_null() {
            String::from("{}")
        } else {
            fields.to_string()
        };
        self.inner.log(
            level as u8,
            RStr::from("plugin"),
            RStr::from(message),
            RStr::from(fields.as_str()),
        );
    }

    /// Logs at info level.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message, Value::Null)
    }

    /// Logs at debug level.
    pub fn debug(&self, message: &str) {
        self.log(LogLevel::Debug, message, Value::Null)
    }

    /// Logs at warn level.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message, Value::Null)
    }

    /// Milliseconds since the Unix epoch by the host's clock.
    pub fn now_millis(&self) -> i64 {
        self.inner.now_millis()
    }

    /// The host's clock as a UTC timestamp.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.now_millis()).unwrap_or_default()
    }

    /// Whether the host asked to stop; long loops should check it between requests.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Reads from the plugin's key-value state (per connector name).
    pub fn state_get(&self, key: &str) -> Option<String> {
        self.inner
            .state_get(RStr::from(key))
            .into_option()
            .map(RString::into_string)
    }

    /// Writes to the plugin's key-value state.
    pub fn state_put(&self, key: &str, value: &str) {
        self.inner.state_put(RStr::from(key), RStr::from(value))
    }
}
