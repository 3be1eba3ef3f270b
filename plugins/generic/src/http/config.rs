//! The `http` section of the configuration: endpoint, auth, pagination, field map and signing.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::HttpError;

/// The default header carrying the sink's HMAC-SHA256 signature.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Posbridge-Signature";

/// An HTTP endpoint as source (a paginated JSON REST endpoint) or sink (batches POSTed as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The endpoint (`http://` or `https://`). It may carry a query string of its own; the
    /// pagination parameters are appended to it. Its host is the connector's allowed egress.
    pub url: String,
    /// Source only: `GET` (default) or `POST`. The sink always POSTs.
    #[serde(default)]
    pub method: HttpMethod,
    /// Extra request headers, sent by source and sink.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials, sent by source and sink.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Source only, with `method: POST`: the JSON body of every page request.
    #[serde(default)]
    pub body: Option<Value>,
    /// Source only: how pages are asked for and where the records are in the answer.
    /// Default: one request, the answer is the array of records.
    #[serde(default)]
    pub pagination: Pagination,
    /// Source only: canonical field (dotted path, e.g. `totals.gross`) → where its value is in
    /// a vendor record. Without a map, records pass through as they are.
    #[serde(default)]
    pub field_map: Option<BTreeMap<String, FieldRule>>,
    /// Sink only: the key of the HMAC-SHA256 signature of every batch. Required to write.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub hmac_secret: Option<String>,
    /// Sink only: the header that carries the signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Per-request timeout in seconds (default: the host's, 30 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn default_signature_header() -> String {
    DEFAULT_SIGNATURE_HEADER.into()
}

/// The request method of the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HttpMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

impl HttpMethod {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(#[schemars(extend("x-secret" = true))] String),
    /// A header of its own, e.g. `X-Api-Key: <value>`.
    Header {
        name: String,
        #[schemars(extend("x-secret" = true))]
        value: String,
    },
    /// `Authorization: Basic base64(<username>:<password>)`.
    Basic {
        username: String,
        #[schemars(extend("x-secret" = true))]
        password: String,
    },
}

/// Which pagination scheme the endpoint uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaginationKind {
    /// One request returns everything.
    #[default]
    None,
    /// `?<page_param>=<n>&<size_param>=<page_size>`, pages counted from `start_page`.
    Page,
    /// `?<offset_param>=<records before>&<size_param>=<page_size>`.
    Offset,
    /// `?<cursor_param>=<token>&<size_param>=<page_size>`; the next token is at `cursor_path`.
    Cursor,
}

/// The pagination parameters. Parameter names are sent exactly as written (case included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// `none` (default), `page`, `offset` or `cursor`.
    #[serde(default)]
    pub kind: PaginationKind,
    /// Query parameter of the page number (kind `page`). Default `page`.
    #[serde(default = "default_page_param")]
    pub page_param: String,
    /// Query parameter of the page size (kinds `page`, `offset`, `cursor`); empty: not sent.
    /// Default `limit`.
    #[serde(default = "default_size_param")]
    pub size_param: String,
    /// Query parameter of the offset (kind `offset`). Default `offset`.
    #[serde(default = "default_offset_param")]
    pub offset_param: String,
    /// Query parameter of the cursor token (kind `cursor`). Default `cursor`.
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// JSON pointer to the next page's token in the answer (kind `cursor`). Default `/next_cursor`.
    #[serde(default = "default_cursor_path")]
    pub cursor_path: String,
    /// JSON pointer to the array of records in the answer. Default `""` (the answer itself).
    #[serde(default)]
    pub records_path: String,
    /// Records asked for per request. Default 100.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// The number of the first page, 0 or 1 (kind `page`). Default 1.
    #[serde(default = "default_start_page")]
    pub start_page: u64,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            kind: PaginationKind::None,
            page_param: default_page_param(),
            size_param: default_size_param(),
            offset_param: default_offset_param(),
            cursor_param: default_cursor_param(),
            cursor_path: default_cursor_path(),
            records_path: String::new(),
            page_size: default_page_size(),
            start_page: default_start_page(),
        }
    }
}

fn default_page_param() -> String {
    "page".into()
}
fn default_size_param() -> String {
    "limit".into()
}
fn default_offset_param() -> String {
    "offset".into()
}
fn default_cursor_param() -> String {
    "cursor".into()
}
fn default_cursor_path() -> String {
    "/next_cursor".into()
}
fn default_page_size() -> usize {
    100
}
fn default_start_page() -> u64 {
    1
}

/// Where a canonical field's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldRule {
    /// A JSON pointer into the vendor record (e.g. `/receipt/no`); `""` is the whole record.
    Pointer(String),
    /// A fixed value, e.g. `{const: EUR}`.
    Const {
        #[serde(rename = "const")]
        value: Value,
    },
    /// An array mapped element by element: `each` points at the vendor array, `map` maps one
    /// element (its pointers are relative to the element).
    Each {
        each: String,
        map: BTreeMap<String, FieldRule>,
    },
}

impl HttpConfig {
    /// Checks what serde cannot: the URL, header names, pointers, pagination numbers.
    pub fn validate(&self) -> Result<(), HttpError> {
        let bad = |m: String| Err(HttpError::Config(format!("http: {m}")));
        let rest = self
            .url
            .strip_prefix("https://")
            .or_else(|| self.url.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with(['/', '?', '#']) => {}
            _ => return bad(format!("url {:?} is not an http(s) URL", self.url)),
        }
        if self.url.contains('#') {
            return bad(format!("url {:?} must not have a fragment", self.url));
        }
        for name in self.headers.keys().chain(match &self.auth {
            Some(Auth::Header { name, .. }) => Some(name),
            _ => None,
        }) {
            if !is_header_name(name) {
                return bad(format!("{name:?} is not a valid header name"));
            }
        }
        if !is_header_name(&self.signature_header) {
            return bad(format!(
                "signature_header {:?} is not a valid header name",
                self.signature_header
            ));
        }
        if self.body.is_some() && self.method != HttpMethod::Post {
            return bad("body is only sent with method POST".into());
        }
        if self.hmac_secret.as_deref() == Some("") {
            return bad("hmac_secret is empty".into());
        }
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs must be at least 1".into());
        }
        let p = &self.pagination;
        check_pointer("pagination.records_path", &p.records_path)?;
        if p.kind == PaginationKind::Cursor {
            check_pointer("pagination.cursor_path", &p.cursor_path)?;
        }
        if p.page_size == 0 {
            return bad("pagination.page_size must be at least 1".into());
        }
        if p.start_page > 1 {
            return bad("pagination.start_page must be 0 or 1".into());
        }
        let needed = match p.kind {
            PaginationKind::None => None,
            PaginationKind::Page => Some(("page_param", &p.page_param)),
            PaginationKind::Offset => Some(("offset_param", &p.offset_param)),
            PaginationKind::Cursor => Some(("cursor_param", &p.cursor_param)),
        };
        if let Some((field, value)) = needed {
            if value.is_empty() {
                return bad(format!("pagination.{field} is empty"));
            }
        }
        Ok(())
    }

    /// The per-request timeout, if configured.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_secs.map(Duration::from_secs)
    }
}

/// Fails unless `pointer` is a JSON pointer (`""` or starting with `/`).
pub fn check_pointer(what: &str, pointer: &str) -> Result<(), HttpError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(HttpError::Config(format!(
            "http: {what} {pointer:?} is not a JSON pointer (it must be empty or start with '/')"
        )))
    }
}

/// An RFC 9110 token: what a header name may be.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(v: Value) -> HttpConfig {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn defaults_are_plain_rest() {
        let c = http(json!({ "url": "https://api.example.com/v1/sales" }));
        assert_eq!(c.method, HttpMethod::Get);
        assert_eq!(c.pagination.kind, PaginationKind::None);
        assert_eq!(c.pagination.size_param, "limit");
        assert_eq!(c.pagination.start_page, 1);
        assert_eq!(c.signature_header, DEFAULT_SIGNATURE_HEADER);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn auth_variants_parse() {
        let c = http(json!({ "url": "http://h", "auth": { "bearer": "t" } }));
        assert_eq!(c.auth, Some(Auth::Bearer("t".into())));
        let c = http(
            json!({ "url": "http://h", "auth": { "basic": { "username": "u", "password": "p" } } }),
        );
        assert!(matches!(c.auth, Some(Auth::Basic { .. })));
        assert!(serde_json::from_value::<HttpConfig>(
            json!({ "url": "http://h", "auth": { "digest": "x" } })
        )
        .is_err());
    }

    #[test]
    fn field_rules_parse_in_all_three_forms() {
        let c = http(json!({ "url": "http://h", "field_map": {
            "id": "/uuid",
            "currency": { "const": "EUR" },
            "lines": { "each": "/items", "map": { "name": "/title" } }
        }}));
        let map = c.field_map.unwrap();
        assert_eq!(map["id"], FieldRule::Pointer("/uuid".into()));
        assert_eq!(
            map["currency"],
            FieldRule::Const {
                value: json!("EUR")
            }
        );
        assert!(matches!(&map["lines"], FieldRule::Each { each, .. } if each == "/items"));
    }

    #[test]
    fn validation_refuses_what_serde_lets_through() {
        for bad in [
            json!({ "url": "ftp://h" }),
            json!({ "url": "https://" }),
            json!({ "url": "http://h", "headers": { "bad name": "x" } }),
            json!({ "url": "http://h", "body": {} }),
            json!({ "url": "http://h", "hmac_secret": "" }),
            json!({ "url": "http://h", "pagination": { "records_path": "data" } }),
            json!({ "url": "http://h", "pagination": { "kind": "page", "start_page": 2 } }),
            json!({ "url": "http://h", "pagination": { "kind": "offset", "page_size": 0 } }),
        ] {
            assert!(
                matches!(http(bad.clone()).validate(), Err(HttpError::Config(_))),
                "{bad}"
            );
        }
    }
}
