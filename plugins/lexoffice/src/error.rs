//! lexoffice's failures, typed, and their mapping to the host's error kinds.

use posbridge_plugin_api::ConnectorError;
use serde_json::Value;

/// What went wrong talking to lexoffice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexofficeError {
    /// The API refused the key (HTTP 401/403).
    #[error("lexoffice: {endpoint} refused the API key: {msg}")]
    Unauthorized { endpoint: String, msg: String },
    /// A 4xx other than 401/403/408/429, with the vendor's message.
    #[error("lexoffice: {endpoint} answered HTTP {status}: {msg}")]
    Refused {
        endpoint: String,
        status: u16,
        msg: String,
    },
    /// An answer lacks a field, or has it with the wrong type.
    #[error("lexoffice: {endpoint}: field `{field}` is missing or not {expected}")]
    BadField {
        endpoint: String,
        field: String,
        expected: &'static str,
    },
    /// Transport failures, 429, 5xx and unreadable bodies, already typed for the host.
    #[error(transparent)]
    Host(#[from] ConnectorError),
}

impl LexofficeError {
    /// A missing or mistyped field of an answer.
    pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> Self {
        Self::BadField {
            endpoint: endpoint.into(),
            field: field.into(),
            expected,
        }
    }
}

impl From<LexofficeError> for ConnectorError {
    fn from(e: LexofficeError) -> Self {
        match e {
            LexofficeError::Unauthorized { .. } => ConnectorError::Auth(e.to_string()),
            LexofficeError::Refused { .. } | LexofficeError::BadField { .. } => {
                ConnectorError::Permanent(e.to_string())
            }
            LexofficeError::Host(inner) => inner,
        }
    }
}

/// The message of one of lexoffice's error bodies, whichever of its shapes:
///
/// - the regular one: `{"status", "error", "path", "traceId", "timestamp", "message", "details":
///   [{"violation", "field", "message"}]}`;
/// - the legacy one (used by the vouchers and contacts endpoints):
///   `{"requestId", "IssueList": [{"i18nKey", "source", "type"}]}`;
/// - the gateway's (401, 429): `{"message": "..."}`.
pub fn error_message(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    if let Some(issues) = obj.get("IssueList").and_then(Value::as_array) {
        let parts: Vec<String> = issues
            .iter()
            .map(|i| {
                let text = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("?");
                format!("{} {} ({})", text("source"), text("i18nKey"), text("type"))
            })
            .collect();
        return Some(if parts.is_empty() {
            "the request was refused without an issue".into()
        } else {
            parts.join("; ")
        });
    }
    let message = obj.get("message").and_then(Value::as_str)?;
    let details: Vec<String> = obj
        .get("details")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|x| {
                    let text = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("?");
                    format!("{}: {}", text("field"), text("message"))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(if details.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", details.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_error_shape() {
        let legacy = json!({"requestId": "r", "IssueList": [
            {"i18nKey": "missing_entity", "source": "voucherItems[0].categoryId", "type": "validation_failure"}]});
        assert_eq!(
            error_message(&legacy).as_deref(),
            Some("voucherItems[0].categoryId missing_entity (validation_failure)")
        );
        let regular = json!({"status": 400, "error": "Bad Request", "message": "Missing parameter",
            "details": [{"violation": "NOTNULL", "field": "voucherType", "message": "must not be null"}]});
        assert_eq!(
            error_message(&regular).as_deref(),
            Some("Missing parameter (voucherType: must not be null)")
        );
        assert_eq!(
            error_message(&json!({"message": "Unauthorized"})).as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(error_message(&json!({"content": []})), None);
    }

    #[test]
    fn maps_to_host_kinds() {
        let auth: ConnectorError = LexofficeError::Unauthorized {
            endpoint: "profile".into(),
            msg: "Unauthorized".into(),
        }
        .into();
        assert!(matches!(&auth, ConnectorError::Auth(m) if m.contains("lexoffice")));
        let refused: ConnectorError = LexofficeError::Refused {
            endpoint: "vouchers".into(),
            status: 400,
            msg: "x".into(),
        }
        .into();
        assert!(matches!(refused, ConnectorError::Permanent(_)));
    }
}
