//! Kassandro's failures, typed, and their mapping to the host's error kinds.

use posbridge_plugin_api::rest::RestError;
use posbridge_plugin_api::ConnectorError;
use serde_json::Value;

/// What went wrong talking to Kassandro.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KassandroError {
    /// The API refused the token or API key (HTTP 401/403).
    #[error("kassandro: {endpoint} refused the credentials: {msg}")]
    Unauthorized { endpoint: String, msg: String },
    /// The API answered its error body `{"error": true, "msg": …}`.
    #[error("kassandro: {endpoint} answered HTTP {status}: {msg}")]
    Refused {
        endpoint: String,
        status: u16,
        msg: String,
    },
    /// An answer lacks a field, or has it with the wrong type.
    #[error("kassandro: {endpoint}: field `{field}` is missing or not {expected}")]
    BadField {
        endpoint: String,
        field: String,
        expected: &'static str,
    },
    /// Transport failures, 429, 5xx and unreadable bodies, already typed for the host.
    #[error(transparent)]
    Host(#[from] ConnectorError),
}

impl KassandroError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> Self {
        Self::BadField {
            endpoint: endpoint.into(),
            field: field.into(),
            expected,
        }
    }
}

impl KassandroError {
    /// The toolkit's typed failure of a call to `endpoint`, in the terms the token handling
    /// needs: a refused credential, a refusal with the vendor's message, or the host's kind.
    pub fn from_rest(e: RestError, endpoint: &str) -> Self {
        match e {
            RestError::Auth { message, .. } => Self::Unauthorized {
                endpoint: endpoint.into(),
                msg: message,
            },
            RestError::Permanent {
                status, message, ..
            } => Self::Refused {
                endpoint: endpoint.into(),
                status,
                msg: message,
            },
            RestError::BadField {
                field, expected, ..
            } => Self::bad_field(endpoint, field, expected),
            other => Self::Host(other.into()),
        }
    }
}

impl From<KassandroError> for ConnectorError {
    fn from(e: KassandroError) -> Self {
        match e {
            KassandroError::Unauthorized { .. } => ConnectorError::Auth(e.to_string()),
            KassandroError::Refused { .. } | KassandroError::BadField { .. } => {
                ConnectorError::Permanent(e.to_string())
            }
            KassandroError::Host(inner) => inner,
        }
    }
}

/// The vendor's error body, `{"error": true, "msg": …}`, also when wrapped in a one-element
/// array as the document draws the token answers. `None` when the body is no error body.
pub fn error_message(body: &Value) -> Option<String> {
    let obj = envelope(body)?;
    if obj.get("error").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(
        obj.get("msg")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string(),
    )
}

/// The status object of a token-style answer: the object itself, or the only element of a
/// one-element array, when it carries the `error` flag.
pub fn envelope(body: &Value) -> Option<&serde_json::Map<String, Value>> {
    let obj = match body {
        Value::Array(items) if items.len() == 1 => items[0].as_object()?,
        Value::Object(o) => o,
        _ => return None,
    };
    obj.contains_key("error").then_some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_error_bodies_plain_and_wrapped() {
        assert_eq!(
            error_message(&json!({"error": true, "msg": "Invalid token."})).as_deref(),
            Some("Invalid token.")
        );
        assert_eq!(
            error_message(&json!([{"error": true, "msg": "Invalid API key."}])).as_deref(),
            Some("Invalid API key.")
        );
        assert_eq!(
            error_message(&json!([{"error": false, "token": "t"}])),
            None
        );
        assert_eq!(error_message(&json!([{"_id": "x", "price": 1}])), None);
    }

    #[test]
    fn maps_to_host_kinds() {
        let auth: ConnectorError = KassandroError::Unauthorized {
            endpoint: "gettoken".into(),
            msg: "Invalid API key.".into(),
        }
        .into();
        assert!(
            matches!(&auth, ConnectorError::Auth(m) if m.contains("kassandro") && m.contains("Invalid API key."))
        );
        let field: ConnectorError =
            KassandroError::bad_field("receipts", "[3].price", "a number").into();
        assert!(
            matches!(&field, ConnectorError::Permanent(m) if m.contains("receipts") && m.contains("[3].price"))
        );
    }
}
