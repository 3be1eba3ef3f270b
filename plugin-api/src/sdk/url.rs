//! Building URLs and form bodies: percent-encoding (RFC 3986) and query strings.

/// Percent-encodes everything but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`),
/// for a query value, a path segment or a form field.
///
/// ```
/// use posbridge_plugin_api::url::percent_encode;
/// assert_eq!(percent_encode("2026-01-01T10:00:00+01:00"), "2026-01-01T10%3A00%3A00%2B01%3A00");
/// assert_eq!(percent_encode("Grüße & co"), "Gr%C3%BC%C3%9Fe%20%26%20co");
/// ```
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `name=value&…` with both sides percent-encoded (a query string without the `?`, or an
/// `application/x-www-form-urlencoded` body).
///
/// ```
/// use posbridge_plugin_api::url::encode_pairs;
/// assert_eq!(encode_pairs(&[("limit", "10"), ("created[gte]", "1700000000")]), "limit=10&created%5Bgte%5D=1700000000");
/// ```
pub fn encode_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_ref()),
                percent_encode(v.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
