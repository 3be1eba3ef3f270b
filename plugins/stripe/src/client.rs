//! Calls to Stripe through the host: Bearer secret key, form-encoded bodies, the
//! `Idempotency-Key` header on writes, and reading Stripe's answers and error bodies.

use posbridge_plugin_api::{Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::config::Config;
use crate::error::{ApiError, StripeError};

/// Form fields in the order they are sent (`key[sub]=value`, as Stripe spells nested fields).
pub type Form = Vec<(String, String)>;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub body: Value,
    /// Stripe's `Idempotent-Replayed: true`: the stored answer of an earlier request.
    pub replayed: bool,
}

/// A Stripe API client for one configuration.
pub struct Client {
    host: Host,
    cfg: Config,
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        Self { host, cfg }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `GET /v1/{path}?{query}`; `endpoint` names the call in errors.
    pub fn get(&self, path: &str, query: &Form, endpoint: &str) -> Result<Value, StripeError> {
        let mut url = self.cfg.endpoint(path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_form(query));
        }
        let req = self.authorized(HttpRequest::get(url));
        Ok(read_answer(&self.host.http(req)?, endpoint)?.body)
    }

    /// `POST /v1/{path}` with a form body and an `Idempotency-Key`. Sent once: a dropped
    /// connection, a timeout or an answer Stripe marks retryable comes back as a typed error
    /// (`Transient`, `RateLimited` with `Retry-After`), and whoever retries — the host — sends
    /// the same key again, so Stripe replays or completes the first attempt instead of acting
    /// twice.
    pub fn post_idempotent(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
        endpoint: &str,
    ) -> Result<Reply, StripeError> {
        let req = self
            .authorized(HttpRequest::post(self.cfg.endpoint(path)))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Idempotency-Key", idempotency_key)
            .body(encode_form(form).into_bytes());
        read_answer(&self.host.http(req)?, endpoint)
    }

    fn authorized(&self, req: HttpRequest) -> HttpRequest {
        req.header("Authorization", format!("Bearer {}", self.cfg.secret_key))
    }
}

/// Reads an answer: 2xx JSON, or the typed failure.
pub fn read_answer(resp: &HttpResponse, endpoint: &str) -> Result<Reply, StripeError> {
    if resp.is_success() {
        let body = resp.json().map_err(|e| match e {
            posbridge_plugin_api::ConnectorError::Transient(m) => {
                posbridge_plugin_api::ConnectorError::Transient(format!("stripe: {endpoint}: {m}"))
            }
            other => other,
        })?;
        let replayed = resp
            .header("idempotent-replayed")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        return Ok(Reply { body, replayed });
    }
    let error = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .as_ref()
        .and_then(ApiError::from_body);
    if matches!(resp.status, 401 | 403) {
        return Err(StripeError::Unauthorized {
            endpoint: endpoint.into(),
            message: error
                .map(|e| e.message)
                .unwrap_or_else(|| format!("HTTP {}", resp.status)),
        });
    }
    match error {
        Some(error) => Err(StripeError::Api {
            endpoint: endpoint.into(),
            status: resp.status,
            error: Box::new(error),
            should_retry: resp
                .header("stripe-should-retry")
                .map(|v| v.trim().eq_ignore_ascii_case("true")),
            retry_after: resp.retry_after(),
        }),
        None => {
            // Not Stripe's body (a proxy, a gateway): the usual mapping by status.
            resp.error_for_status(&format!("stripe: {endpoint}"))?;
            Err(StripeError::bad_field(endpoint, "error", "an object"))
        }
    }
}

/// `application/x-www-form-urlencoded` text of the fields (RFC 3986 unreserved stay as they are).
pub fn encode_form(fields: &Form) -> String {
    posbridge_plugin_api::url::encode_pairs(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::ConnectorError;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn encodes_nested_fields() {
        let form: Form = vec![
            ("metadata[sale_id]".into(), "demo:S1:R1:7".into()),
            ("description".into(), "Bon 7 & mehr".into()),
        ];
        assert_eq!(
            encode_form(&form),
            "metadata%5Bsale_id%5D=demo%3AS1%3AR1%3A7&description=Bon%207%20%26%20mehr"
        );
    }

    #[test]
    fn reads_successes_replays_and_errors() {
        let ok = read_answer(
            &resp(200, &[("Idempotent-Replayed", "true")], r#"{"id":"pi_1"}"#),
            "payment_intents",
        )
        .unwrap();
        assert!(ok.replayed);
        assert_eq!(ok.body["id"], "pi_1");
        let e = read_answer(
            &resp(
                400,
                &[("Stripe-Should-Retry", "false")],
                r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}"#,
            ),
            "payment_intents",
        )
        .unwrap_err();
        assert!(
            matches!(&e, StripeError::Api { status: 400, should_retry: Some(false), error, .. } if error.kind == "idempotency_error")
        );
        assert!(!e.is_retryable());
        assert!(matches!(
            read_answer(&resp(401, &[], r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}"#), "balance"),
            Err(StripeError::Unauthorized { message, .. }) if message.starts_with("Invalid API Key")
        ));
        let gateway =
            read_answer(&resp(502, &[], r#"{"error":"injected"}"#), "refunds").unwrap_err();
        assert!(matches!(
            gateway,
            StripeError::Host(ConnectorError::Transient(_))
        ));
        assert!(gateway.is_retryable());
        assert!(matches!(
            read_answer(&resp(200, &[], "{\"id\":"), "refunds"),
            Err(StripeError::Host(ConnectorError::Transient(m))) if m.contains("refunds")
        ));
    }
}
