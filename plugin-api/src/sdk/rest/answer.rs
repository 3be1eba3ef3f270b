//! One answer handler: an HTTP status (and, through a per-vendor hook, the body) becomes a
//! typed [`RestError`], which the host sees as the matching [`ConnectorError`] kind.
//!
//! | Status | Kind |
//! |---|---|
//! | 2xx | ok (a body that is not JSON is `Transient`: a truncated page is worth a retry) |
//! | 401, 403 | `Auth` |
//! | 429 | `RateLimited`, with `Retry-After` as seconds or an HTTP date |
//! | 503 with `Retry-After` | `RateLimited` with that delay: the server said when to come back, and only `RateLimited` carries a delay to the host |
//! | 408, 5xx | `Transient` |
//! | other 4xx (and 1xx, 3xx) | `Permanent` |

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::retry_after::parse_retry_after;
use crate::{ConnectorError, HttpResponse};

/// What an answer means, before it becomes a [`RestError`]. A [`VendorErrors`] hook may change
/// it (e.g. a 200 whose body says `"error": true` is `Permanent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A success.
    Ok,
    /// The credentials were refused.
    Auth,
    /// Slow down; come back after `retry_after` when given.
    RateLimited {
        /// How long to wait, when the answer says.
        retry_after: Option<Duration>,
    },
    /// Worth a retry.
    Transient,
    /// Will fail again.
    Permanent,
    /// The answer shows the configuration is wrong (e.g. a configured id the vendor does not know).
    Config,
}

impl Verdict {
    /// The usual meaning of a status (see the module table).
    pub fn of_status(resp: &HttpResponse, now: DateTime<Utc>) -> Self {
        let retry_after = || {
            resp.header("retry-after")
                .and_then(|v| parse_retry_after(v, now))
        };
        match resp.status {
            200..=299 => Self::Ok,
            401 | 403 => Self::Auth,
            429 => Self::RateLimited {
                retry_after: retry_after(),
            },
            503 => match retry_after() {
                Some(d) => Self::RateLimited {
                    retry_after: Some(d),
                },
                None => Self::Transient,
            },
            408 | 500..=599 => Self::Transient,
            _ => Self::Permanent,
        }
    }
}

/// The per-vendor part of answer handling. Both methods have defaults, so `DefaultErrors` (or
/// an empty `impl VendorErrors for MyVendor {}`) handles the common cases.
///
/// ```
/// use posbridge_plugin_api::rest::{read_answer, RestError, VendorErrors, Verdict};
/// use posbridge_plugin_api::HttpResponse;
/// use serde_json::Value;
///
/// /// ACME answers 200 with `{"ok": false, "reason": …}` for refused requests.
/// struct Acme;
///
/// impl VendorErrors for Acme {
///     fn message(&self, _status: u16, body: &Value) -> Option<String> {
///         body["reason"].as_str().map(str::to_string)
///     }
///     fn classify(&self, _resp: &HttpResponse, body: Option<&Value>, usual: Verdict) -> Verdict {
///         match body.and_then(|b| b["ok"].as_bool()) {
///             Some(false) => Verdict::Permanent,
///             _ => usual,
///         }
///     }
/// }
///
/// let resp = HttpResponse { status: 200, headers: vec![], body: br#"{"ok": false, "reason": "unknown till"}"#.to_vec() };
/// let err = read_answer(resp, "acme: POST receipts", Default::default(), &Acme).unwrap_err();
/// assert!(matches!(err, RestError::Permanent { ref message, .. } if message == "unknown till"));
/// ```
pub trait VendorErrors: Send + Sync {
    /// The vendor's error message in a parsed body, `None` when the body carries none.
    /// The default reads the common shapes (see [`common_error_message`]).
    fn message(&self, status: u16, body: &Value) -> Option<String> {
        let _ = status;
        common_error_message(body)
    }

    /// The final verdict, given the status's usual one. The default keeps it.
    fn classify(&self, resp: &HttpResponse, body: Option<&Value>, usual: Verdict) -> Verdict {
        let _ = (resp, body);
        usual
    }
}

/// The default [`VendorErrors`]: common message shapes, statuses as usual.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultErrors;

impl VendorErrors for DefaultErrors {}

/// The message of the common error body shapes: `{"message"}`, `{"error": "…"}`,
/// `{"error": {"message"}}`, `{"msg"}`, `{"detail"}`, `{"title"}`.
///
/// ```
/// use posbridge_plugin_api::rest::common_error_message;
/// use serde_json::json;
/// assert_eq!(common_error_message(&json!({"error": {"message": "no"}})).as_deref(), Some("no"));
/// assert_eq!(common_error_message(&json!({"items": []})), None);
/// ```
pub fn common_error_message(body: &Value) -> Option<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    text(body.get("message"))
        .or_else(|| match body.get("error") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(e @ Value::Object(_)) => text(e.get("message")),
            _ => None,
        })
        .or_else(|| text(body.get("msg")))
        .or_else(|| text(body.get("detail")))
        .or_else(|| text(body.get("title")))
}

/// A failed call, typed. `context` names the vendor and the call (`lexoffice: GET vouchers`);
/// `message` is the vendor's error message, or the start of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// The credentials were refused.
    #[error("{context}: the credentials were refused (HTTP {status}): {message}")]
    Auth {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error message, or the start of the body.
        message: String,
    },
    /// The vendor asked to slow down.
    #[error("{context}: rate limited (HTTP {status}): {message}")]
    RateLimited {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The HTTP status.
        status: u16,
        /// How long to wait, when the answer says.
        retry_after: Option<Duration>,
        /// The vendor's error message, or the start of the body.
        message: String,
    },
    /// Worth a retry: 408, 5xx, a 2xx body that is not JSON.
    #[error("{context}: HTTP {status}: {message}")]
    Transient {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error message, or the start of the body.
        message: String,
    },
    /// Will fail again: a refused request.
    #[error("{context}: HTTP {status}: {message}")]
    Permanent {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error message, or the start of the body.
        message: String,
    },
    /// The answer shows the configuration is wrong.
    #[error("{context}: HTTP {status}: {message}")]
    Config {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error message, or the start of the body.
        message: String,
    },
    /// A successful answer lacks a field, or has it with the wrong type.
    #[error("{context}: field `{field}` is missing or not {expected}")]
    BadField {
        /// The vendor and the call, e.g. `lexoffice: GET vouchers`.
        context: String,
        /// The field, as a dotted path.
        field: String,
        /// What it should have been.
        expected: &'static str,
    },
    /// The host's own failure (transport, cancellation), already typed.
    #[error(transparent)]
    Host(#[from] ConnectorError),
}

impl RestError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(
        context: impl Into<String>,
        field: impl Into<String>,
        expected: &'static str,
    ) -> Self {
        Self::BadField {
            context: context.into(),
            field: field.into(),
            expected,
        }
    }

    /// The HTTP status of a vendor answer, `None` for field and host errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Auth { status, .. }
            | Self::RateLimited { status, .. }
            | Self::Transient { status, .. }
            | Self::Permanent { status, .. }
            | Self::Config { status, .. } => Some(*status),
            Self::BadField { .. } | Self::Host(_) => None,
        }
    }

    /// Whether the host would retry it.
    pub fn is_retryable(&self) -> bool {
        ConnectorError::from(self.clone()).is_retryable()
    }
}

impl From<RestError> for ConnectorError {
    fn from(e: RestError) -> Self {
        let text = e.to_string();
        match e {
            RestError::Auth { .. } => Self::Auth(text),
            RestError::RateLimited { retry_after, .. } => Self::RateLimited {
                retry_after,
                message: text,
            },
            RestError::Transient { .. } => Self::Transient(text),
            RestError::Permanent { .. } | RestError::BadField { .. } => Self::Permanent(text),
            RestError::Config { .. } => Self::Config(text),
            RestError::Host(inner) => inner,
        }
    }
}

/// A successful answer: the response and its body as JSON (`Null` when the body is empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The response as received.
    pub response: HttpResponse,
    /// Its body as JSON.
    pub body: Value,
}

impl Answer {
    /// A response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }
}

/// Reads an answer: the JSON of a success, else the typed failure with the vendor's message.
///
/// ```
/// use posbridge_plugin_api::rest::{read_answer, DefaultErrors, RestError};
/// use posbridge_plugin_api::HttpResponse;
/// let resp = HttpResponse { status: 429, headers: vec![("Retry-After".into(), "2".into())], body: br#"{"message":"slow down"}"#.to_vec() };
/// let err = read_answer(resp, "acme: GET items", Default::default(), &DefaultErrors).unwrap_err();
/// assert!(matches!(err, RestError::RateLimited { retry_after: Some(d), ref message, .. } if d.as_secs() == 2 && message == "slow down"));
/// ```
pub fn read_answer(
    resp: HttpResponse,
    context: &str,
    now: DateTime<Utc>,
    vendor: &dyn VendorErrors,
) -> Result<Answer, RestError> {
    let parsed: Result<Value, _> = if resp.body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&resp.body)
    };
    let body = parsed.as_ref().ok();
    let verdict = vendor.classify(&resp, body, Verdict::of_status(&resp, now));
    let message = || {
        body.and_then(|b| vendor.message(resp.status, b))
            .unwrap_or_else(|| match resp.snippet() {
                s if s.trim().is_empty() => "no error body".to_string(),
                s => s,
            })
    };
    let context = context.to_string();
    let status = resp.status;
    match verdict {
        Verdict::Ok => match parsed {
            Ok(body) => Ok(Answer {
                response: resp,
                body,
            }),
            Err(e) => Err(RestError::Transient {
                context,
                status,
                message: format!("the response is not valid JSON ({e}): {}", resp.snippet()),
            }),
        },
        Verdict::Auth => Err(RestError::Auth {
            context,
            status,
            message: message(),
        }),
        Verdict::RateLimited { retry_after } => Err(RestError::RateLimited {
            context,
            status,
            retry_after,
            message: message(),
        }),
        Verdict::Transient => Err(RestError::Transient {
            context,
            status,
            message: message(),
        }),
        Verdict::Permanent => Err(RestError::Permanent {
            context,
            status,
            message: message(),
        }),
        Verdict::Config => Err(RestError::Config {
            context,
            status,
            message: message(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testing::response as resp;

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    fn read(r: HttpResponse) -> Result<Answer, RestError> {
        read_answer(r, "acme: GET items", now(), &DefaultErrors)
    }

    #[test]
    fn statuses_become_their_kinds() {
        let kind = |status: u16| {
            read(resp(status, &[], "{}"))
                .map(|_| "ok")
                .map_err(|e| ConnectorError::from(e).kind_name())
        };
        assert_eq!(kind(200), Ok("ok"));
        assert_eq!(kind(204), Ok("ok"));
        assert_eq!(kind(401), Err("auth"));
        assert_eq!(kind(403), Err("auth"));
        assert_eq!(kind(429), Err("rate_limited"));
        assert_eq!(kind(408), Err("transient"));
        assert_eq!(kind(500), Err("transient"));
        assert_eq!(kind(503), Err("transient"));
        assert_eq!(kind(400), Err("permanent"));
        assert_eq!(kind(404), Err("permanent"));
        assert_eq!(kind(422), Err("permanent"));
        assert_eq!(kind(302), Err("permanent"));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_date_also_on_503() {
        let delay =
            |status: u16, value: &str| match read(resp(status, &[("Retry-After", value)], "")) {
                Err(RestError::RateLimited { retry_after, .. }) => retry_after,
                other => panic!("{other:?}"),
            };
        assert_eq!(delay(429, "3"), Some(Duration::from_secs(3)));
        assert_eq!(
            delay(429, "Sun, 01 Mar 2026 12:00:10 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(delay(429, "later"), None);
        assert_eq!(delay(503, "5"), Some(Duration::from_secs(5)));
        let e: ConnectorError = read(resp(429, &[("retry-after", "4")], ""))
            .unwrap_err()
            .into();
        assert_eq!(
            e,
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(4)),
                message: "acme: GET items: rate limited (HTTP 429): no error body".into()
            }
        );
    }

    #[test]
    fn the_vendor_message_is_named_else_the_body() {
        let e = read(resp(400, &[], r#"{"error":{"message":"bad limit"}}"#)).unwrap_err();
        assert_eq!(e.to_string(), "acme: GET items: HTTP 400: bad limit");
        assert_eq!(e.status(), Some(400));
        let e = read(resp(502, &[], "<html>gateway</html>")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "acme: GET items: HTTP 502: <html>gateway</html>"
        );
    }

    #[test]
    fn a_success_that_is_not_json_is_transient_and_empty_is_null() {
        let e = read(resp(200, &[], "{\"items\":")).unwrap_err();
        assert!(
            matches!(&e, RestError::Transient { message, .. } if message.contains("not valid JSON"))
        );
        assert!(e.is_retryable());
        assert_eq!(read(resp(204, &[], "")).unwrap().body, Value::Null);
        let ok = read(resp(200, &[("X-Id", "7")], r#"{"a":1}"#)).unwrap();
        assert_eq!(
            (ok.body["a"].as_i64(), ok.header("x-id")),
            (Some(1), Some("7"))
        );
    }

    #[test]
    fn a_vendor_hook_reads_its_message_and_reclassifies() {
        /// A vendor answering 200 with `{"error": true, "msg": …}` and 404 for unknown config ids.
        struct Flagged;
        impl VendorErrors for Flagged {
            fn message(&self, _status: u16, body: &Value) -> Option<String> {
                body.get("msg")
                    .and_then(Value::as_str)
                    .map(|m| format!("says {m}"))
            }
            fn classify(&self, r: &HttpResponse, body: Option<&Value>, usual: Verdict) -> Verdict {
                if body.and_then(|b| b.get("error")) == Some(&json!(true)) {
                    Verdict::Permanent
                } else if r.status == 404 {
                    Verdict::Config
                } else {
                    usual
                }
            }
        }
        let read = |r| read_answer(r, "v: x", now(), &Flagged);
        let e = read(resp(200, &[], r#"{"error":true,"msg":"no"}"#)).unwrap_err();
        assert!(
            matches!(&e, RestError::Permanent { status: 200, message, .. } if message == "says no")
        );
        assert!(matches!(
            ConnectorError::from(read(resp(404, &[], "{}")).unwrap_err()),
            ConnectorError::Config(_)
        ));
        assert!(read(resp(200, &[], r#"{"error":false}"#)).is_ok());
    }

    #[test]
    fn errors_map_to_the_host_kinds() {
        let to = |e: RestError| ConnectorError::from(e).kind_name();
        assert_eq!(
            to(RestError::bad_field("v: x", "items", "an array")),
            "permanent"
        );
        assert_eq!(to(RestError::Host(ConnectorError::Cancelled)), "cancelled");
        assert_eq!(
            RestError::bad_field("v: x", "items", "an array").to_string(),
            "v: x: field `items` is missing or not an array"
        );
    }
}
