//! Redaction of secrets in every string the host shows: logs, errors, `inspect` output.

use std::sync::Arc;

use serde_json::Value;

/// The placeholder shown instead of a secret.
pub const REDACTED: &str = "***";

/// Knows the secret values of one connector instance and blanks them out of text.
///
/// ```
/// use posbridge::redact::Redactor;
/// let r = Redactor::new(vec!["s3cr3t".into()]);
/// assert_eq!(r.redact("token=s3cr3t"), "token=***");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Short values would blank out ordinary text; longest first so overlaps redact fully.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets: Arc::new(secrets),
        }
    }

    /// The secret values found in `config` at the given dotted paths.
    pub fn from_config(config: &Value, secret_paths: &[String]) -> Self {
        let mut values = Vec::new();
        for p in secret_paths {
            let mut node = Some(config);
            for part in p.split('.') {
                node = node.and_then(|n| n.get(part));
            }
            match node {
                Some(Value::String(s)) => values.push(s.clone()),
                Some(Value::Null) | None => {}
                Some(other) => values.push(other.to_string()),
            }
        }
        Self::new(values)
    }

    /// Adds more secret values (e.g. resolved `${env:…}` references).
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Self {
        let mut v: Vec<String> = self.secrets.as_ref().clone();
        v.extend(more);
        Self::new(v)
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// A copy of `config` with the values at `secret_paths` replaced, and any secret text blanked.
    pub fn redact_config(&self, config: &Value, secret_paths: &[String]) -> Value {
        let mut c = config.clone();
        for p in secret_paths {
            let parts: Vec<&str> = p.split('.').collect();
            let mut node = Some(&mut c);
            for part in &parts[..parts.len() - 1] {
                node = node.and_then(|n| n.get_mut(*part));
            }
            if let Some(Value::Object(map)) = node {
                if let Some(v) = map.get_mut(*parts.last().unwrap_or(&"")) {
                    if !v.is_null() {
                        *v = Value::String(REDACTED.into());
                    }
                }
            }
        }
        self.redact_value(&c)
    }

    /// Blanks secret text anywhere inside a JSON value.
    pub fn redact_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact_value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.redact_value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_config_paths_and_text() {
        let cfg = json!({"api_key": "abcdef123", "auth": {"token": "tok-987"}, "url": "http://x?k=abcdef123"});
        let paths = vec!["api_key".to_string(), "auth.token".to_string()];
        let r = Redactor::from_config(&cfg, &paths);
        let red = r.redact_config(&cfg, &paths);
        assert_eq!(red["api_key"], "***");
        assert_eq!(red["auth"]["token"], "***");
        assert_eq!(red["url"], "http://x?k=***");
        assert_eq!(r.redact("failed with tok-987"), "failed with ***");
    }
}
