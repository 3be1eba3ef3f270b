//! sevDesk's failures, typed, and their mapping to the host's error kinds.

use posbridge_plugin_api::ConnectorError;
use serde_json::Value;

/// What went wrong talking to sevDesk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SevdeskError {
    /// The API refused the token (HTTP 401/403).
    #[error("sevdesk: {endpoint} refused the API token: {msg}")]
    Unauthorized { endpoint: String, msg: String },
    /// The API refused the request (400, 404, 422 …) with its error body.
    #[error("sevdesk: {endpoint} answered HTTP {status}: {msg}")]
    Refused {
        endpoint: String,
        status: u16,
        msg: String,
    },
    /// An answer lacks a field, or has it with the wrong type.
    #[error("sevdesk: {endpoint}: field `{field}` is missing or not {expected}")]
    BadField {
        endpoint: String,
        field: String,
        expected: &'static str,
    },
    /// Transport failures, 429, 5xx and unreadable bodies, already typed for the host.
    #[error(transparent)]
    Host(#[from] ConnectorError),
}

impl SevdeskError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> Self {
        Self::BadField {
            endpoint: endpoint.into(),
            field: field.into(),
            expected,
        }
    }
}

impl From<SevdeskError> for ConnectorError {
    fn from(e: SevdeskError) -> Self {
        match e {
            SevdeskError::Unauthorized { .. } => ConnectorError::Auth(e.to_string()),
            SevdeskError::Refused { .. } | SevdeskError::BadField { .. } => {
                ConnectorError::Permanent(e.to_string())
            }
            SevdeskError::Host(inner) => inner,
        }
    }
}

/// The message of sevDesk's error body `{"error": {"message": …}}` (spec `validationError`).
pub fn error_message(body: &Value) -> Option<String> {
    let err = body.get("error")?;
    match err {
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_error_body_and_maps_kinds() {
        assert_eq!(
            error_message(&json!({"objects": null, "error": {"message": "Authentication required", "code": null}}))
                .as_deref(),
            Some("Authentication required")
        );
        assert_eq!(error_message(&json!({"objects": []})), None);
        let auth: ConnectorError = SevdeskError::Unauthorized {
            endpoint: "GET Tools/bookkeepingSystemVersion".into(),
            msg: "Authentication required".into(),
        }
        .into();
        assert!(
            matches!(&auth, ConnectorError::Auth(m) if m.contains("sevdesk") && m.contains("Authentication required"))
        );
        let field: ConnectorError =
            SevdeskError::bad_field("GET Part", "objects", "an array").into();
        assert!(matches!(&field, ConnectorError::Permanent(m) if m.contains("objects")));
    }
}
