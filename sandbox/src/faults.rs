//! Fault injection: latency, 5xx, 429, dropped connections, malformed bodies and expiring
//! tokens, applied to every vendor request deterministically from a seed, plus the request log.
//!
//! The decision for a request depends only on `(seed, request number)`, so a client that sends
//! its requests in the same order meets the same faults on every run.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The fault knobs of a running simulator. Rates are shares of requests in `[0, 1]` (f64 on
/// purpose: probabilities, not money); drop, error, rate-limit and malformed are exclusive
/// outcomes, so their sum must not exceed 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Delay added before every vendor request is answered.
    pub latency_ms: u64,
    /// Share of requests answered with a 5xx (500, 502 or 503).
    pub error_rate: f64,
    /// Share of requests answered with 429 and a `Retry-After` header.
    pub rate_limit_rate: f64,
    /// The `Retry-After` value (seconds) of a 429.
    pub retry_after_secs: u64,
    /// Share of requests whose connection is closed without any answer.
    pub drop_rate: f64,
    /// Share of requests answered 200 with a truncated JSON body.
    pub malformed_rate: f64,
    /// A token issued at request number `k` is expired from request `k + n + 1` on
    /// (see [`Faults::token_expired`]); each vendor answers with its own auth error.
    pub expire_token_after: Option<u64>,
    /// Seed of the fault decisions.
    pub seed: u64,
}

/// Why a [`Faults`] value is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultsError {
    #[error("{0} must be between 0 and 1, got {1}")]
    RateOutOfRange(&'static str, f64),
    #[error(
        "drop_rate + error_rate + rate_limit_rate + malformed_rate must not exceed 1, got {0}"
    )]
    RatesExceedOne(f64),
}

/// What the harness does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The connection was closed without an answer.
    Drop,
    /// A 5xx was returned instead of calling the vendor handler.
    ServerError,
    /// A 429 was returned instead of calling the vendor handler.
    RateLimit,
    /// The vendor's answer was replaced by a 200 with a truncated body.
    Malformed,
}

impl Faults {
    /// Checks that every rate is a probability and the exclusive outcomes fit in 1.
    pub fn validate(&self) -> Result<(), FaultsError> {
        let rates = [
            ("drop_rate", self.drop_rate),
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("malformed_rate", self.malformed_rate),
        ];
        for (name, r) in rates {
            if !(0.0..=1.0).contains(&r) {
                return Err(FaultsError::RateOutOfRange(name, r));
            }
        }
        // Shares of requests (probabilities, not money), added up.
        let combined = rates.iter().fold(0.0_f64, |acc, (_, r)| acc + r);
        // A little slack for additions like 0.1 + 0.2 + 0.7.
        if combined > 1.0 + 1e-9 {
            return Err(FaultsError::RatesExceedOne(combined));
        }
        Ok(())
    }

    /// The fault (if any) for the request with this number: a pure function of
    /// `(seed, request_no)`, splitting `[0, 1)` into drop, error, rate-limit and malformed bands.
    pub fn decide(&self, request_no: u64) -> Option<FaultKind> {
        let u = unit_draw(self.seed, request_no, 0);
        let mut edge = self.drop_rate;
        if u < edge {
            return Some(FaultKind::Drop);
        }
        edge += self.error_rate;
        if u < edge {
            return Some(FaultKind::ServerError);
        }
        edge += self.rate_limit_rate;
        if u < edge {
            return Some(FaultKind::RateLimit);
        }
        edge += self.malformed_rate;
        if u < edge {
            return Some(FaultKind::Malformed);
        }
        None
    }

    /// Whether a token issued while answering request `issued_at` (0 = before any request) is
    /// expired at request `request_no`. Never, when `expire_token_after` is `None`.
    pub fn token_expired(&self, issued_at: u64, request_no: u64) -> bool {
        match self.expire_token_after {
            Some(n) => request_no.saturating_sub(issued_at) > n,
            None => false,
        }
    }
}

/// A uniform draw in `[0, 1)` from `(seed, request_no, stream)` (SplitMix64 finalizer: cheap,
/// stateless and well mixed).
fn unit_draw(seed: u64, request_no: u64, stream: u64) -> f64 {
    let mut z = seed
        ^ request_no.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One vendor request as the simulator saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// The harness's request number (1-based, counts vendor requests only).
    pub request_no: u64,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: Option<String>,
    /// Request headers, with secrets (auth, keys, tokens, signatures, cookies) replaced by `***`.
    pub headers: Vec<(String, String)>,
    /// The status sent; 0 when the connection was dropped.
    pub status: u16,
    /// The injected fault, if any.
    #[serde(default)]
    pub fault: Option<FaultKind>,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// How many log entries are kept; older ones are forgotten.
const LOG_CAPACITY: usize = 200_000;

/// The shared fault state of one running simulator: the knobs, the request counter, the log.
#[derive(Debug, Default)]
pub struct FaultController {
    faults: RwLock<Faults>,
    counter: AtomicU64,
    log: Mutex<VecDeque<RequestLogEntry>>,
}

impl FaultController {
    /// A controller with these knobs.
    pub fn new(faults: Faults) -> Self {
        Self {
            faults: RwLock::new(faults),
            ..Self::default()
        }
    }

    /// The current knobs.
    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the knobs (validated first).
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultsError> {
        faults.validate()?;
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = faults;
        Ok(())
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Forgets the logged requests (the request counter goes on).
    pub fn clear_requests(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many vendor requests have arrived so far.
    pub fn request_count(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }

    fn next_request_no(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn record(&self, entry: RequestLogEntry) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }
}

/// What a vendor handler learns about its request: its number and the knobs in force.
/// Extract it in a handler (`ctx: RequestContext`) to answer expired tokens the vendor's way.
/// Outside the harness (e.g. a router tested with `oneshot`) it is request 0 without faults.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub request_no: u64,
    pub faults: Faults,
}

impl RequestContext {
    /// Whether a token issued at request `issued_at` is expired now (see [`Faults::token_expired`]).
    pub fn token_expired(&self, issued_at: u64) -> bool {
        self.faults.token_expired(issued_at, self.request_no)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Marks a response whose connection the server must close without sending it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// Header names whose values are never logged.
fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || n == "set-cookie"
        || ["key", "token", "secret", "signature", "password", "auth"]
            .iter()
            .any(|s| n.contains(s))
}

fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if is_secret_header(k.as_str()) {
                "***".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_string(), value)
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "status": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

/// The axum middleware that numbers, delays, faults and logs every vendor request.
pub(crate) async fn apply_faults(
    State(ctl): State<Arc<FaultController>>,
    mut req: Request,
    next: Next,
) -> Response {
    let request_no = ctl.next_request_no();
    let faults = ctl.faults();
    let timestamp_ms = now_ms();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers = redacted_headers(req.headers());

    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let fault = faults.decide(request_no);
    let response = match fault {
        Some(FaultKind::Drop) => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            r
        }
        Some(FaultKind::ServerError) => {
            let codes = [
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
            ];
            let pick = (unit_draw(faults.seed, request_no, 1) * codes.len() as f64) as usize;
            json_error(codes[pick.min(codes.len() - 1)], "injected server error")
        }
        Some(FaultKind::RateLimit) => {
            let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(faults.retry_after_secs),
            );
            r
        }
        Some(FaultKind::Malformed) | None => {
            req.extensions_mut().insert(RequestContext {
                request_no,
                faults: faults.clone(),
            });
            let r = next.run(req).await;
            if fault == Some(FaultKind::Malformed) {
                truncate_body(r).await
            } else {
                r
            }
        }
    };
    let dropped = response.extensions().get::<DropConnection>().is_some();
    ctl.record(RequestLogEntry {
        request_no,
        method,
        path,
        query,
        headers,
        status: if dropped {
            0
        } else {
            response.status().as_u16()
        },
        fault,
        timestamp_ms,
    });
    response
}

/// A 200 whose body is the first half of the vendor's answer (at least one byte short).
async fn truncate_body(response: Response) -> Response {
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let cut = if bytes.len() < 2 {
        axum::body::Bytes::from_static(b"{\"")
    } else {
        bytes.slice(..bytes.len() / 2)
    };
    let mut r = Response::new(Body::from(cut));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_deterministic_and_match_rates() {
        let f = Faults {
            error_rate: 0.2,
            rate_limit_rate: 0.1,
            drop_rate: 0.05,
            malformed_rate: 0.05,
            seed: 7,
            ..Faults::default()
        };
        let a: Vec<_> = (1..=10_000).map(|n| f.decide(n)).collect();
        let b: Vec<_> = (1..=10_000).map(|n| f.decide(n)).collect();
        assert_eq!(a, b);
        let share = |k| a.iter().filter(|d| **d == Some(k)).count() as f64 / a.len() as f64;
        assert!((share(FaultKind::ServerError) - 0.2).abs() < 0.02);
        assert!((share(FaultKind::RateLimit) - 0.1).abs() < 0.015);
        assert!((share(FaultKind::Drop) - 0.05).abs() < 0.01);
        assert!((share(FaultKind::Malformed) - 0.05).abs() < 0.01);
        let other_seed = Faults {
            seed: 8,
            ..f.clone()
        };
        assert_ne!(
            a,
            (1..=10_000)
                .map(|n| other_seed.decide(n))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn no_faults_by_default() {
        let f = Faults::default();
        assert!((1..=1000).all(|n| f.decide(n).is_none()));
        assert!(!f.token_expired(0, 1_000_000));
    }

    #[test]
    fn token_expiry_counts_requests_since_issue() {
        let f = Faults {
            expire_token_after: Some(3),
            ..Faults::default()
        };
        assert!(!f.token_expired(10, 13));
        assert!(f.token_expired(10, 14));
        let ctx = RequestContext {
            request_no: 5,
            faults: f,
        };
        assert!(ctx.token_expired(1));
        assert!(!ctx.token_expired(2));
    }

    #[test]
    fn validation_rejects_bad_rates() {
        let f = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        assert_eq!(
            f.validate(),
            Err(FaultsError::RateOutOfRange("error_rate", 1.5))
        );
        let f = Faults {
            error_rate: 0.6,
            drop_rate: 0.6,
            ..Faults::default()
        };
        assert!(matches!(f.validate(), Err(FaultsError::RatesExceedOne(_))));
        assert!(Faults {
            error_rate: 0.5,
            drop_rate: 0.5,
            ..Faults::default()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn secrets_are_not_logged() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("k"));
        h.insert("authorization", HeaderValue::from_static("Bearer t"));
        h.insert("X-SIGNATURE", HeaderValue::from_static("s"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        let r = redacted_headers(&h);
        for (k, v) in &r {
            if k == "accept" {
                assert_eq!(v, "application/json");
            } else {
                assert_eq!(v, "***", "{k}");
            }
        }
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn partial_json_fills_defaults() {
        let f: Faults = serde_json::from_str(r#"{"error_rate":0.5}"#).unwrap();
        assert_eq!(f.error_rate, 0.5);
        assert_eq!(f.expire_token_after, None);
    }
}
