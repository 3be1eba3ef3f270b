//! Validation of a connector config against the JSON Schema in its manifest.

use serde_json::Value;

/// One place where a config breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigViolation {
    /// JSON path of the offending value, e.g. `$.auth.token` or `$.stores[2]`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Converts a JSON pointer (`/a/0/b`) to a JSON path (`$.a[0].b`).
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push('.');
            out.push_str(&seg);
        }
    }
    out
}

/// Validates `config` against `schema`; returns every violation (empty when valid).
/// The validator has no network access: a remote `$ref` is an error, never a fetch.
pub fn validate_config(schema: &Value, config: &Value) -> Vec<ConfigViolation> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![ConfigViolation {
                path: "$".into(),
                message: format!("the connector's config schema is invalid: {e}"),
            }]
        }
    };
    let mut out: Vec<ConfigViolation> = validator
        .iter_errors(config)
        .map(|e| {
            let mut path = pointer_to_path(&e.instance_path().to_string());
            // "additionalProperties" errors point at the object; name the unknown field.
            let message = e.to_string();
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                e.kind()
            {
                if unexpected.len() == 1 {
                    path = format!("{path}.{}", unexpected[0]);
                }
            }
            ConfigViolation { path, message }
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_the_field() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"port": {"type": "integer"}, "items": {"type": "array", "items": {"type": "string"}}},
            "additionalProperties": false
        });
        let v = validate_config(&schema, &json!({"port": "x", "items": ["a", 3], "nope": 1}));
        let paths: Vec<_> = v.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, vec!["$.items[1]", "$.nope", "$.port"]);
        assert!(validate_config(&schema, &json!({"port": 1})).is_empty());
    }

    #[test]
    fn pointer_conversion() {
        assert_eq!(pointer_to_path(""), "$");
        assert_eq!(pointer_to_path("/a/0/b~1c"), "$.a[0].b/c");
    }
}
