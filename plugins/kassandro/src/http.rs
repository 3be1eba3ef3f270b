//! Kassandro on the REST toolkit: the [`RestClient`] of a configuration (base URL with the
//! `/v1.0` prefix, Kassandro's error bodies), and sending one of its requests. Only what is
//! Kassandro's own — the `{"error": true, "msg"}` body, also inside a one-element array and
//! also on a 2xx — is the vendor hook here.

use posbridge_plugin_api::rest::{read_answer, RequestBuilder, RestClient, VendorErrors, Verdict};
use posbridge_plugin_api::{Host, HttpResponse};
use serde_json::Value;

use crate::config::Config;
use crate::error::{error_message, KassandroError};

/// The header the API reads its tokens from (document: Header-Key "kassandro-token").
pub const TOKEN_HEADER: &str = "kassandro-token";

/// Kassandro's error bodies for the toolkit's answer handler.
pub struct KassandroErrors;

impl VendorErrors for KassandroErrors {
    fn message(&self, _status: u16, body: &Value) -> Option<String> {
        error_message(body)
    }

    /// A 2xx whose body says `"error": true` is a refusal like a 4xx (the document draws the
    /// error body without a status).
    fn classify(&self, _resp: &HttpResponse, body: Option<&Value>, usual: Verdict) -> Verdict {
        match usual {
            Verdict::Ok if body.and_then(error_message).is_some() => Verdict::Permanent,
            other => other,
        }
    }
}

/// The API of a configuration, without credentials (the token endpoints take the key in the
/// query; the other calls add a token, see [`crate::client::Client`]).
pub fn api(host: Host, cfg: &Config) -> RestClient {
    RestClient::new(host, "kassandro", &cfg.api_root()).vendor_errors(KassandroErrors)
}

/// Sends a request and returns the JSON body of a successful answer; `endpoint` names the call
/// in errors.
///
/// 401/403 become [`KassandroError::Unauthorized`]; the vendor's error body (any other 4xx, or
/// a 2xx saying `"error": true`) becomes [`KassandroError::Refused`]; 429, 408 and 5xx get the
/// toolkit's typed errors (`Retry-After` as seconds or an HTTP date).
pub fn send(request: RequestBuilder<'_>, endpoint: &str) -> Result<Value, KassandroError> {
    request
        .endpoint(endpoint)
        .send_json()
        .map_err(|e| KassandroError::from_rest(e, endpoint))
}

/// A successful answer whose body is a JSON array (a page of records), kept as its text for the
/// caller to read into its own types: reading a page of receipts into a `Value` tree cost more
/// than everything else done with it.
pub struct ArrayAnswer {
    resp: HttpResponse,
    context: String,
    endpoint: String,
    host: Host,
}

impl ArrayAnswer {
    /// The body's text.
    pub fn text(&self) -> &[u8] {
        &self.resp.body
    }

    /// The body read as [`send`] reads it: its JSON, or the error its text deserves (not JSON;
    /// the vendor's error body in a one-element array). For a text the caller could not read.
    pub fn json(&self) -> Result<Value, KassandroError> {
        read_answer(
            self.resp.clone(),
            &self.context,
            self.host.now(),
            &KassandroErrors,
        )
        .map(|a| a.body)
        .map_err(|e| KassandroError::from_rest(e, &self.endpoint))
    }
}

/// A successful answer: a JSON array's text, or any other body's JSON.
pub enum Body {
    Array(ArrayAnswer),
    Json(Value),
}

/// [`send`], keeping a successful answer that starts like a JSON array as its text.
pub fn send_for_array(
    request: RequestBuilder<'_>,
    endpoint: &str,
    host: &Host,
) -> Result<Body, KassandroError> {
    let request = request.endpoint(endpoint);
    let context = request.context();
    let resp = request.send_raw().map_err(KassandroError::Host)?;
    let array = (200..=299).contains(&resp.status)
        && resp.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let answer = ArrayAnswer {
        resp,
        context,
        endpoint: endpoint.to_string(),
        host: host.clone(),
    };
    if array {
        Ok(Body::Array(answer))
    } else {
        answer.json().map(Body::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::testing::FakeHost;
    use posbridge_plugin_api::ConnectorError;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "3".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn read(r: HttpResponse, endpoint: &str) -> Result<Value, KassandroError> {
        let host = FakeHost::with_vendor(move |_| Ok(r.clone()));
        let cfg: Config = serde_json::from_value(
            serde_json::json!({"base_url": "http://127.0.0.1:9/k/", "api_key": "key"}),
        )
        .unwrap();
        let got = send(api(host.host(), &cfg).get(endpoint), endpoint);
        assert_eq!(
            host.requests()[0].url,
            format!("http://127.0.0.1:9/k/v1.0/{endpoint}")
        );
        got
    }

    #[test]
    fn maps_statuses_and_bodies() {
        assert!(matches!(
            read(resp(401, r#"{"error":true,"msg":"Invalid token."}"#), "receipts"),
            Err(KassandroError::Unauthorized { msg, .. }) if msg == "Invalid token."
        ));
        assert!(matches!(
            read(resp(429, ""), "receipts"),
            Err(KassandroError::Host(ConnectorError::RateLimited { retry_after: Some(d), .. })) if d.as_secs() == 3
        ));
        // A 503 that says when to come back is a rate limit (the toolkit's rule).
        assert!(matches!(
            read(resp(503, "busy"), "receipts"),
            Err(KassandroError::Host(ConnectorError::RateLimited { .. }))
        ));
        let mut no_retry_after = resp(503, "busy");
        no_retry_after.headers.clear();
        assert!(matches!(
            read(no_retry_after, "receipts"),
            Err(KassandroError::Host(ConnectorError::Transient(_)))
        ));
        assert!(matches!(
            read(resp(400, r#"{"error":true,"msg":"limit must be between 1 and 1000."}"#), "receipts"),
            Err(KassandroError::Refused { status: 400, msg, .. }) if msg.starts_with("limit")
        ));
        assert!(matches!(
            read(resp(200, "[{\"_id\":"), "receipts"),
            Err(KassandroError::Host(ConnectorError::Transient(m))) if m.contains("receipts")
        ));
        assert_eq!(
            read(resp(200, "[]"), "receipts").unwrap(),
            serde_json::json!([])
        );
        assert!(matches!(
            read(resp(200, r#"[{"error":true,"msg":"Token already exists."}]"#), "createtoken"),
            Err(KassandroError::Refused { status: 200, msg, .. }) if msg == "Token already exists."
        ));
    }
}
