//! lexoffice's error bodies, read for the REST toolkit.

use posbridge_plugin_api::rest::VendorErrors;
use serde_json::Value;

/// lexoffice's error bodies for the REST toolkit's answer handler (statuses keep their usual
/// meaning).
#[derive(Debug, Clone, Copy, Default)]
pub struct LexofficeErrors;

impl VendorErrors for LexofficeErrors {
    fn message(&self, _status: u16, body: &Value) -> Option<String> {
        error_message(body)
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
}
