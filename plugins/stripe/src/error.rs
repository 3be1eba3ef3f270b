//! Stripe's failures, typed, and their mapping to the host's error kinds.

use posbridge_plugin_api::ConnectorError;
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

/// What went wrong talking to Stripe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// The secret key was refused (HTTP 401) or lacks a permission (HTTP 403).
    #[error("stripe: {endpoint} refused the secret key: {message}")]
    Unauthorized { endpoint: String, message: String },
    /// Stripe answered its error body.
    #[error("stripe: {endpoint} answered HTTP {status} {error}")]
    Api {
        endpoint: String,
        status: u16,
        error: Box<ApiError>,
        /// The `Stripe-Should-Retry` header, when present.
        should_retry: Option<bool>,
        /// The `Retry-After` header of a 429, when present.
        retry_after: Option<std::time::Duration>,
    },
    /// An answer lacks a field, or has it with the wrong type.
    #[error("stripe: {endpoint}: field `{field}` is missing or not {expected}")]
    BadField {
        endpoint: String,
        field: String,
        expected: &'static str,
    },
    /// An action's input is unusable; nothing was sent.
    #[error("stripe: {0}")]
    Input(String),
    /// Transport failures, 429, 5xx without Stripe's body and unreadable bodies, already typed.
    #[error(transparent)]
    Host(#[from] ConnectorError),
}

impl StripeError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> Self {
        Self::BadField {
            endpoint: endpoint.into(),
            field: field.into(),
            expected,
        }
    }

    /// Whether re-sending the same request (with the same `Idempotency-Key`) may succeed:
    /// Stripe's `Stripe-Should-Retry` header decides when present; else 409, 429 and 5xx,
    /// and transport failures, are worth one more try.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api {
                status,
                should_retry,
                ..
            } => should_retry.unwrap_or(matches!(status, 409 | 429 | 500..=599)),
            Self::Host(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<StripeError> for ConnectorError {
    fn from(e: StripeError) -> Self {
        match &e {
            StripeError::Unauthorized { .. } => ConnectorError::Auth(e.to_string()),
            StripeError::Api {
                status: 429,
                retry_after,
                ..
            } if e.is_retryable() => ConnectorError::RateLimited {
                retry_after: *retry_after,
                message: e.to_string(),
            },
            StripeError::Api { .. } if e.is_retryable() => ConnectorError::Transient(e.to_string()),
            StripeError::Api { .. } | StripeError::BadField { .. } | StripeError::Input(_) => {
                ConnectorError::Permanent(e.to_string())
            }
            StripeError::Host(inner) => inner.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(status: u16, should_retry: Option<bool>) -> StripeError {
        StripeError::Api {
            endpoint: "refunds".into(),
            status,
            error: ApiError::from_body(&json!({"error": {
                "type": "invalid_request_error", "code": "amount_too_large",
                "message": "Refund amount is greater than unrefunded amount on charge", "param": "amount"
            }}))
            .unwrap()
            .into(),
            should_retry,
            retry_after: (status == 429).then(|| std::time::Duration::from_secs(2)),
        }
    }

    #[test]
    fn maps_to_host_kinds_and_names_the_code() {
        let e: ConnectorError = api(400, None).into();
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.contains("amount_too_large") && m.contains("[param amount]")),
            "{e:?}"
        );
        assert!(matches!(
            api(500, None).into(),
            ConnectorError::Transient(_)
        ));
        // A stored 500 is replayed on retry: Stripe says not to retry.
        assert!(matches!(
            api(500, Some(false)).into(),
            ConnectorError::Permanent(_)
        ));
        assert!(matches!(
            api(409, Some(true)).into(),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            api(429, None).into(),
            ConnectorError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 2
        ));
        let auth: ConnectorError = StripeError::Unauthorized {
            endpoint: "balance".into(),
            message: "Invalid API Key provided".into(),
        }
        .into();
        assert!(matches!(auth, ConnectorError::Auth(m) if m.starts_with("stripe:")));
    }

    #[test]
    fn error_body_without_object_is_none() {
        assert_eq!(ApiError::from_body(&json!({"error": "injected"})), None);
        assert_eq!(ApiError::from_body(&json!({"id": "pi_1"})), None);
    }
}
