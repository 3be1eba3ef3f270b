//! Stripe's error bodies and retry advice, read for the REST toolkit, and the connector's errors.

use posbridge_plugin_api::rest::{RestError, VendorErrors, Verdict};
use posbridge_plugin_api::{ConnectorError, HttpResponse};
use serde_json::Value;

/// Stripe's error body, `{"error": {"type", "code", "message", "param", "decline_code"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    /// `invalid_request_error`, `card_error`, `idempotency_error`, `api_error`, …
    pub kind: String,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    pub decline_code: Option<String>,
}

impl ApiError {
    /// Reads the error object of a body; `None` when the body has none.
    pub fn from_body(body: &Value) -> Option<Self> {
        let e = body.get("error")?.as_object()?;
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            kind: text("type").unwrap_or_else(|| "api_error".into()),
            code: text("code"),
            message: text("message").unwrap_or_else(|| "no message".into()),
            param: text("param"),
            decline_code: text("decline_code"),
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(c) = &self.code {
            write!(f, "/{c}")?;
        }
        if let Some(d) = &self.decline_code {
            write!(f, " ({d})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(p) = &self.param {
            write!(f, " [param {p}]")?;
        }
        Ok(())
    }
}

/// Stripe for the REST toolkit's answer handler: the message is the error object (type, code,
/// decline code, param), and the `Stripe-Should-Retry` header, when present, decides whether a
/// failure is worth a retry (a stored 500 is replayed on retry, so Stripe may say no). A 409
/// (a concurrent request with the same key) is worth one.
#[derive(Debug, Clone, Copy, Default)]
pub struct StripeErrors;

impl VendorErrors for StripeErrors {
    fn message(&self, _status: u16, body: &Value) -> Option<String> {
        ApiError::from_body(body).map(|e| e.to_string())
    }

    fn classify(&self, resp: &HttpResponse, body: Option<&Value>, usual: Verdict) -> Verdict {
        if matches!(usual, Verdict::Ok | Verdict::Auth) {
            return usual;
        }
        // Not Stripe's body (a proxy, a gateway): the usual mapping by status.
        if body.and_then(ApiError::from_body).is_none() {
            return usual;
        }
        let should_retry = resp
            .header("stripe-should-retry")
            .map(|v| v.trim().eq_ignore_ascii_case("true"));
        match should_retry {
            Some(false) => Verdict::Permanent,
            Some(true) if matches!(usual, Verdict::Permanent | Verdict::Config) => {
                Verdict::Transient
            }
            None if resp.status == 409 => Verdict::Transient,
            _ => usual,
        }
    }
}

/// What went wrong in a Stripe call or action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// An action's input is unusable; nothing was sent.
    #[error("stripe: {0}")]
    Input(String),
    /// The call failed (typed by the REST toolkit).
    #[error(transparent)]
    Rest(#[from] RestError),
}

impl StripeError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> Self {
        Self::Rest(RestError::bad_field(
            format!("stripe: {endpoint}"),
            field,
            expected,
        ))
    }
}

impl From<ConnectorError> for StripeError {
    fn from(e: ConnectorError) -> Self {
        Self::Rest(RestError::Host(e))
    }
}

impl From<StripeError> for ConnectorError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Input(_) => ConnectorError::Permanent(e.to_string()),
            StripeError::Rest(inner) => inner.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::rest::read_answer;
    use posbridge_plugin_api::testing::response;
    use serde_json::json;

    fn answer(status: u16, should_retry: Option<&str>, body: &Value) -> ConnectorError {
        let mut headers = vec![("Retry-After", "2")];
        headers.extend(should_retry.map(|v| ("Stripe-Should-Retry", v)));
        let resp = response(status, &headers, &body.to_string());
        read_answer(resp, "stripe: refunds", Default::default(), &StripeErrors)
            .unwrap_err()
            .into()
    }

    fn refused() -> Value {
        json!({"error": {
            "type": "invalid_request_error", "code": "amount_too_large",
            "message": "Refund amount is greater than unrefunded amount on charge", "param": "amount"
        }})
    }

    #[test]
    fn maps_to_host_kinds_and_names_the_code() {
        let e = answer(400, None, &refused());
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.contains("amount_too_large") && m.contains("[param amount]")),
            "{e:?}"
        );
        assert!(matches!(
            answer(500, None, &refused()),
            ConnectorError::Transient(_)
        ));
        // A stored 500 is replayed on retry: Stripe says not to retry.
        assert!(matches!(
            answer(500, Some("false"), &refused()),
            ConnectorError::Permanent(_)
        ));
        assert!(matches!(
            answer(409, None, &refused()),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            answer(409, Some("true"), &refused()),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            answer(400, Some("true"), &refused()),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            answer(429, None, &refused()),
            ConnectorError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 2
        ));
        let auth = answer(
            401,
            Some("false"),
            &json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}),
        );
        assert!(
            matches!(auth, ConnectorError::Auth(m) if m.starts_with("stripe:") && m.contains("Invalid API Key"))
        );
        // A gateway's body: statuses as usual.
        assert!(matches!(
            answer(502, Some("false"), &json!({"error": "injected"})),
            ConnectorError::Transient(_)
        ));
    }

    #[test]
    fn error_body_without_object_is_none() {
        assert_eq!(ApiError::from_body(&json!({"error": "injected"})), None);
        assert_eq!(ApiError::from_body(&json!({"id": "pi_1"})), None);
        assert!(matches!(
            ConnectorError::from(StripeError::Input("x".into())),
            ConnectorError::Permanent(m) if m == "stripe: x"
        ));
    }
}
