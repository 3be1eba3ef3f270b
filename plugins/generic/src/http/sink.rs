//! The HTTP sink: each batch POSTed as one signed JSON document.
//!
//! Body: `{"stream": …, "records": [...], "idempotency_keys": [...]}`, signed as described in
//! [`super::signature`]. The answer decides the outcomes:
//! - a body `{"results": [...]}` with one result per record (`{"status": "written",
//!   "external_id": …}`, `{"status": "duplicate"}`, `{"status": "rejected", "reason": …}`)
//!   is taken record by record, whatever the status (2xx, 409 or another 4xx);
//! - otherwise 2xx means every record `Written`, 409 every record `Duplicate`, and another 4xx
//!   every record `Rejected` with the status and the start of the body as the reason;
//! - 408, 429, 5xx and transport failures answer every record `Retry` (with the
//!   `Retry-After` of a 429): the host sends them again after its backoff, with the same keys;
//!   a receiver may also answer `{"status": "retry", "reason": …}` for single records;
//! - 401/403 (`Auth`) fail the whole call, as `HttpResponse::error_for_status` maps them; so
//!   do redirects (`Permanent`).

use posbridge_plugin_api::{
    CheckReport, ConnectorError, HttpResponse, RecordOutcome, WriteRequest,
};
use serde_json::{json, Value};

use super::client::{request, HttpClient};
use super::config::HttpConfig;
use super::error::HttpError;
use super::signature::signature_header_value;

/// POSTs batches to the configured URL; the network is reached through an [`HttpClient`].
#[derive(Debug, Clone)]
pub struct HttpSink {
    config: HttpConfig,
    stream: String,
}

impl HttpSink {
    /// Validates `config` for writing `stream`.
    pub fn new(config: HttpConfig, stream: &str) -> Result<Self, HttpError> {
        config.validate()?;
        Ok(Self {
            config,
            stream: stream.to_string(),
        })
    }

    /// Sends one batch signed at `now_unix` (seconds) and answers one outcome per record.
    pub fn write(
        &self,
        client: &dyn HttpClient,
        request: &WriteRequest,
        records: &[Value],
        now_unix: i64,
    ) -> Result<Vec<RecordOutcome>, HttpError> {
        if request.stream != self.stream {
            return Err(HttpError::Config(format!(
                "this connector carries the stream {:?}, not {:?}",
                self.stream, request.stream
            )));
        }
        let keys = &request.idempotency_keys;
        if !keys.is_empty() && keys.len() != records.len() {
            return Err(HttpError::BadRequest(format!(
                "{} idempotency keys for {} records",
                keys.len(),
                records.len()
            )));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let answer = self
            .post(client, records, keys, now_unix)
            .and_then(|response| outcomes(&response, records.len(), &self.config.url));
        match answer {
            // The receiver is down or rate limiting: every record of the batch is sent again
            // after the host's backoff, with the same keys (the receiver dedups by them).
            Err(HttpError::Connector(e)) if e.is_retryable() => {
                Ok(vec![RecordOutcome::failed(&e); records.len()])
            }
            other => other,
        }
    }

    /// POSTs an empty signed batch: proves the URL, the credentials and the secret without
    /// writing anything.
    pub fn check(
        &self,
        client: &dyn HttpClient,
        now_unix: i64,
    ) -> Result<CheckReport, ConnectorError> {
        let url = &self.config.url;
        match self.post(client, &[], &[], now_unix) {
            Ok(r) if r.is_success() => Ok(CheckReport::ok(format!(
                "POST {url} accepted an empty signed batch (HTTP {})",
                r.status
            ))),
            Ok(r) => Ok(CheckReport::failed(format!(
                "POST {url} refused an empty signed batch: HTTP {} {}",
                r.status,
                r.snippet()
            ))),
            Err(HttpError::Connector(e)) if e.is_retryable() => Err(e),
            Err(e) => Ok(CheckReport::failed(format!("POST {url}: {e}"))),
        }
    }

    fn post(
        &self,
        client: &dyn HttpClient,
        records: &[Value],
        keys: &[String],
        now_unix: i64,
    ) -> Result<HttpResponse, HttpError> {
        let secret = self.config.hmac_secret.as_deref().ok_or_else(|| {
            HttpError::Config("http.hmac_secret is required to write to an HTTP endpoint".into())
        })?;
        let body = serde_json::to_vec(&json!({
            "stream": self.stream,
            "records": records,
            "idempotency_keys": keys,
        }))
        .map_err(|e| HttpError::BadRequest(format!("batch does not serialize: {e}")))?;
        let signature = signature_header_value(secret, now_unix, &body);
        let req = request(&self.config, "POST", self.config.url.clone())
            .header("Content-Type", "application/json")
            .header(&self.config.signature_header, signature)
            .body(body);
        Ok(client.send(req)?)
    }
}

/// The outcomes a receiver's answer stands for (see the module documentation).
fn outcomes(response: &HttpResponse, n: usize, url: &str) -> Result<Vec<RecordOutcome>, HttpError> {
    // Only 2xx and the 4xx that concern the records are answered record by record; the rest
    // (auth, timeouts, rate limits, 5xx, redirects) fail the batch so the host can act on it.
    let per_record = matches!(response.status, 200..=299 | 400..=499)
        && !matches!(response.status, 401 | 403 | 408 | 429);
    if !per_record {
        response.error_for_status(&format!("POST {url}"))?;
        return Err(HttpError::Response {
            url: url.into(),
            message: format!("unexpected HTTP {}", response.status),
        });
    }
    if let Some(results) = listed_results(response) {
        let results: Vec<RecordOutcome> =
            serde_json::from_value(results).map_err(|e| HttpError::Response {
                url: url.into(),
                message: format!(
                    "HTTP {}: results are not record outcomes: {e}",
                    response.status
                ),
            })?;
        if results.len() != n {
            return Err(HttpError::Response {
                url: url.into(),
                message: format!(
                    "HTTP {}: {} results for {n} records",
                    response.status,
                    results.len()
                ),
            });
        }
        return Ok(results);
    }
    let one = match response.status {
        200..=299 => RecordOutcome::Written { external_id: None },
        409 => RecordOutcome::Duplicate { external_id: None },
        status => RecordOutcome::Rejected {
            reason: format!("HTTP {status}: {}", response.snippet()),
        },
    };
    Ok(vec![one; n])
}

/// The `results` array of a JSON answer, if it has one.
fn listed_results(response: &HttpResponse) -> Option<Value> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    match body.get("results") {
        Some(r @ Value::Array(_)) => Some(r.clone()),
        _ => None,
    }
}
