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

    /// Whether it knows no secret value (none set, or all shorter than 4 characters).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The secret values found in `config` at the given dotted paths. A `*` segment stands
    /// for every member of an object or array (`http.headers.*`: every header value); a last
    /// segment ending in `?*` for every query value of the URL there (`http.url?*`), as
    /// written and percent-decoded.
    ///
    /// ```
    /// use posbridge::redact::Redactor;
    /// let cfg = serde_json::json!({"http": {"url": "https://h/x?token=t0ken%2B1&page=1",
    ///     "headers": {"X-Api-Key": "k3y-value"}}});
    /// let r = Redactor::from_config(&cfg, &["http.url?*".into(), "http.headers.*".into()]);
    /// assert_eq!(r.redact("GET https://h/x?token=t0ken%2B1 key k3y-value"), "GET https://h/x?token=*** key ***");
    /// assert_eq!(r.redact("t0ken+1"), "***");
    /// ```
    pub fn from_config(config: &Value, secret_paths: &[String]) -> Self {
        let mut values = Vec::new();
        for p in secret_paths {
            let (path, query) = match p.strip_suffix("?*") {
                Some(path) => (path, true),
                None => (p.as_str(), false),
            };
            let mut nodes = vec![config];
            for part in path.split('.') {
                nodes = nodes
                    .into_iter()
                    .flat_map(|n| -> Vec<&Value> {
                        match (part, n) {
                            ("*", Value::Object(o)) => o.values().collect(),
                            ("*", Value::Array(a)) => a.iter().collect(),
                            _ => n.get(part).into_iter().collect(),
                        }
                    })
                    .collect();
            }
            for node in nodes {
                match node {
                    Value::String(s) if query => values.extend(query_values(s)),
                    Value::String(s) => values.push(s.clone()),
                    Value::Null => {}
                    other => values.push(other.to_string()),
                }
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

/// The values of a URL's query string, as written and percent-decoded.
fn query_values(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    let mut out = Vec::new();
    for pair in query.split('&') {
        let value = pair.split_once('=').map_or("", |(_, v)| v);
        if value.is_empty() {
            continue;
        }
        out.push(value.to_string());
        let decoded = percent_decode(&value.replace('+', " "));
        if decoded != value {
            out.push(decoded);
        }
    }
    out
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

    #[test]
    fn redacts_every_header_value_and_url_query_value() {
        let cfg = json!({"http": {"url": "http://h/in?api_key=q%2Fsecret&x", "headers": {"X-Token": "hdr-secret", "X-Other": "other-secret"}}});
        let paths = vec!["http.url?*".to_string(), "http.headers.*".to_string()];
        let r = Redactor::from_config(&cfg, &paths);
        let red = r.redact_config(&cfg, &paths);
        assert_eq!(red["http"]["url"], "http://h/in?api_key=***&x");
        assert_eq!(
            red["http"]["headers"],
            json!({"X-Token": "***", "X-Other": "***"})
        );
        assert_eq!(r.redact("401 for q/secret"), "401 for ***");
        // Paths that find nothing are no error.
        let none = Redactor::from_config(&json!({"path": "out.ndjson"}), &paths);
        assert_eq!(none.redact("out.ndjson"), "out.ndjson");
    }
}
