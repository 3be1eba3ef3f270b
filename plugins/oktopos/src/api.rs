//! The TransactionAPI as the connector calls it: paths in either layout, the token, the page
//! envelope.

use chrono::NaiveDateTime;
use posbridge_plugin_api::rest::{
    common_error_message, items_at, Auth, PageNumber, RestClient, RestError, VendorErrors,
};
use posbridge_plugin_api::{ConnectorError, Host};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// The default `api_prefix`: the path before `transactions`.
pub const DEFAULT_API_PREFIX: &str = "/api";

/// The local date-time format of the `from` / `until` segments (e.g. `2021-12-01T12:00:00`).
pub const SEGMENT_DATE_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// How the filter is written into the path of the list endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PathLayout {
    /// `/{from}/{until}/{page}/{size}/{cash-register}`: only trailing segments can be left out.
    #[default]
    Positional,
    /// `/from/{from}/until/{until}/page/{page}/size/{size}/cash-register/{id}`: any pair can.
    Named,
}

/// Why a filter cannot be written in a layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("positional path segments cannot leave out `{missing}` and still give `{given}` (use path_layout: named)")]
    PositionalGap {
        missing: &'static str,
        given: &'static str,
    },
}

/// A filter for the list endpoint; every part is optional, as the document says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub page: Option<u32>,
    pub size: Option<u32>,
    pub cash_register: Option<u64>,
}

impl TransactionFilter {
    /// The parts in the document's order, by their segment names.
    fn segments(&self) -> [(&'static str, Option<String>); 5] {
        let date = |d: Option<NaiveDateTime>| d.map(|d| d.format(SEGMENT_DATE_TIME).to_string());
        [
            ("from", date(self.from)),
            ("until", date(self.until)),
            ("page", self.page.map(|p| p.to_string())),
            ("size", self.size.map(|s| s.to_string())),
            ("cash-register", self.cash_register.map(|c| c.to_string())),
        ]
    }

    /// The path after `transactions` (empty when no part is given). A part left out removes its
    /// whole segment; positionally that is only possible for trailing parts.
    pub fn path(&self, layout: PathLayout) -> Result<String, UrlError> {
        let segments = self.segments();
        let mut path = String::new();
        match layout {
            PathLayout::Named => {
                for (name, value) in &segments {
                    if let Some(v) = value {
                        path.push_str(&format!("/{name}/{v}"));
                    }
                }
            }
            PathLayout::Positional => {
                let used = segments
                    .iter()
                    .rposition(|(_, v)| v.is_some())
                    .map_or(0, |i| i + 1);
                for (name, value) in &segments[..used] {
                    match value {
                        Some(v) => path.push_str(&format!("/{v}")),
                        None => {
                            return Err(UrlError::PositionalGap {
                                missing: name,
                                given: segments[used - 1].0,
                            })
                        }
                    }
                }
            }
        }
        Ok(path)
    }
}

/// Normalises `api_prefix`: one leading slash, none trailing; empty when the API sits at the root.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// OktoPOS error bodies, `{"errors": [{"code", "message"}]}` (the shape the CustomerAPI
/// documents); other shapes fall back to the toolkit's common ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct OktoposErrors;

impl VendorErrors for OktoposErrors {
    fn message(&self, _status: u16, body: &Value) -> Option<String> {
        let listed: Vec<String> = body
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let message = e.get("message").and_then(Value::as_str)?;
                Some(match e.get("code").and_then(Value::as_str) {
                    Some(code) => format!("{code}: {message}"),
                    None => message.to_string(),
                })
            })
            .collect();
        if listed.is_empty() {
            common_error_message(body)
        } else {
            Some(listed.join("; "))
        }
    }
}

/// The instance as configured: where the API is, how its paths look, how the token travels.
#[derive(Clone)]
pub struct Api {
    /// `base_url` and `api_prefix`, normalised (no trailing slash), with the token.
    client: RestClient,
    layout: PathLayout,
}

impl Api {
    pub fn new(
        host: Host,
        base_url: &str,
        api_prefix: &str,
        layout: PathLayout,
        auth: Auth,
    ) -> Self {
        let root = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            normalize_prefix(api_prefix)
        );
        let client = RestClient::new(host, "oktopos", &root)
            .auth(auth)
            .default_header("Accept", "application/json")
            .vendor_errors(OktoposErrors);
        Self { client, layout }
    }

    /// The list URL of a filter (without the token, so it can appear in messages).
    pub fn list_url(&self, filter: &TransactionFilter) -> Result<String, UrlError> {
        Ok(self
            .client
            .url(&format!("transactions{}", filter.path(self.layout)?)))
    }

    /// Performs a GET with the token; a refused token (401/403) names where it was sent and
    /// the option that moves it.
    pub fn get_json(&self, url: &str) -> Result<Value, ConnectorError> {
        let answer = self
            .client
            .get(url)
            .endpoint(format!("GET {url}"))
            .send_json();
        answer
            .map_err(|e| match e {
                RestError::Auth {
                    context,
                    status,
                    message,
                } => RestError::Auth {
                    context,
                    status,
                    message: format!(
                    "{message}; the token was sent {}: check `token`, and `auth` (header:NAME, \
                     bearer, query:NAME, basic) if the instance expects it elsewhere",
                    self.client.credentials()
                ),
                },
                other => other,
            })
            .map_err(ConnectorError::from)
    }
}

/// One page of the list endpoint, as far as the connector needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionPage {
    /// The page object (`actualPage`, `lastPage`, `transactionCount`, `transactions`).
    pub envelope: Value,
    pub transactions: Vec<Value>,
}

impl TransactionPage {
    /// Whether a page follows page `asked` (of `size` transactions): until `lastPage` (the
    /// number of the last page), or without it until a short or empty page. The page's own
    /// `actualPage`, when present, is the page number.
    pub fn has_next(&self, asked: u64, size: u32) -> bool {
        let n = self
            .envelope
            .get("actualPage")
            .and_then(Value::as_u64)
            .unwrap_or(asked);
        !pages(size).is_last(n, &self.envelope, self.transactions.len())
    }
}

/// The TransactionAPI's paging: 1-based pages, the last one numbered by `lastPage` (the page
/// is a path segment, so only the paginator's last-page test is used).
pub fn pages(size: u32) -> PageNumber {
    PageNumber::new("page", 1)
        .size("size", u64::from(size))
        .total_pages("/lastPage")
}

/// Reads the page envelope: a JSON array holding one page object (as documented), or a bare
/// page object; an empty array is an empty page. Paging fields may be missing (see
/// [`TransactionPage::has_next`]); `transactions` that is not a list is a `Permanent` error
/// naming the page.
pub fn parse_page(body: &Value, url: &str) -> Result<TransactionPage, ConnectorError> {
    let bad = |f: &str| {
        ConnectorError::Permanent(format!(
            "oktopos: page {url}: field `{f}` is not a page object or list"
        ))
    };
    let envelope = match body {
        Value::Array(items) => items
            .first()
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        other => other.clone(),
    };
    if !envelope.is_object() {
        return Err(bad("[0]"));
    }
    let transactions = items_at(&envelope, "/transactions").ok_or_else(|| bad("transactions"))?;
    Ok(TransactionPage {
        envelope,
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use serde_json::json;

    fn at(d: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2021, 12, d)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    fn full(cash_register: Option<u64>) -> TransactionFilter {
        TransactionFilter {
            from: Some(at(1, 0, 0, 0)),
            until: Some(at(15, 23, 59, 59)),
            page: Some(2),
            size: Some(100),
            cash_register,
        }
    }

    fn api(prefix: &str, layout: PathLayout) -> Api {
        let host = FakeHost::with_vendor(|_| Ok(json_response(200, &json!([]))));
        Api::new(
            host.host(),
            "http://127.0.0.1:9/",
            prefix,
            layout,
            Auth::Bearer("t".into()),
        )
    }

    #[test]
    fn a_refused_token_names_where_it_went_and_the_option() {
        let host = FakeHost::with_vendor(|_| {
            Ok(json_response(
                401,
                &json!({"errors": [{"code": "unauthorized", "message": "bad token"}]}),
            ))
        });
        let a = Api::new(
            host.host(),
            "http://h",
            "/api",
            PathLayout::Named,
            Auth::from_spec("query:key", "s3cret").unwrap(),
        );
        let err = a.get_json("http://h/api/transactions").unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Auth(m) if m.contains("oktopos")
                && m.contains("`key` query parameter") && m.contains("`auth`")
                && m.contains("unauthorized: bad token")
                && !m.contains("s3cret")),
            "{err}"
        );
        assert_eq!(
            host.requests()[0].url,
            "http://h/api/transactions?key=s3cret"
        );
    }

    #[test]
    fn positional_urls_keep_the_order_and_drop_an_unused_register() {
        let a = api("/api", PathLayout::Positional);
        assert_eq!(
            a.list_url(&full(None)).unwrap(),
            "http://127.0.0.1:9/api/transactions/2021-12-01T00:00:00/2021-12-15T23:59:59/2/100"
        );
        assert!(a.list_url(&full(Some(5))).unwrap().ends_with("/2/100/5"));
        assert_eq!(
            a.list_url(&TransactionFilter::default()).unwrap(),
            "http://127.0.0.1:9/api/transactions"
        );
    }

    #[test]
    fn named_urls_name_every_segment_in_the_documents_order() {
        let a = api("/api", PathLayout::Named);
        assert_eq!(
            a.list_url(&full(Some(5))).unwrap(),
            "http://127.0.0.1:9/api/transactions/from/2021-12-01T00:00:00\
             /until/2021-12-15T23:59:59/page/2/size/100/cash-register/5"
        );
    }

    #[test]
    fn from_without_until_is_a_named_path_and_no_positional_one() {
        let f = TransactionFilter {
            from: Some(at(1, 12, 0, 0)),
            page: Some(1),
            size: Some(50),
            ..TransactionFilter::default()
        };
        assert_eq!(
            f.path(PathLayout::Named).unwrap(),
            "/from/2021-12-01T12:00:00/page/1/size/50"
        );
        assert_eq!(
            f.path(PathLayout::Positional),
            Err(UrlError::PositionalGap {
                missing: "until",
                given: "size"
            })
        );
        // A trailing part alone is fine positionally.
        let from_only = TransactionFilter {
            from: Some(at(1, 12, 0, 0)),
            ..TransactionFilter::default()
        };
        assert_eq!(
            from_only.path(PathLayout::Positional).unwrap(),
            "/2021-12-01T12:00:00"
        );
        assert_eq!(
            from_only.path(PathLayout::Named).unwrap(),
            "/from/2021-12-01T12:00:00"
        );
    }

    #[test]
    fn the_prefix_is_normalised_and_may_be_empty() {
        for (prefix, root) in [
            ("/api", "http://127.0.0.1:9/api/transactions"),
            ("api/v2/", "http://127.0.0.1:9/api/v2/transactions"),
            ("/", "http://127.0.0.1:9/transactions"),
            ("", "http://127.0.0.1:9/transactions"),
        ] {
            let a = api(prefix, PathLayout::Named);
            assert_eq!(
                a.list_url(&TransactionFilter::default()).unwrap(),
                root,
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn the_page_envelope_is_read_wrapped_or_bare() {
        let page = json!({"actualPage": 1, "lastPage": 3, "transactionCount": 5, "transactions": [{"referenceNumber": "1"}]});
        let wrapped = parse_page(&json!([page.clone()]), "u").unwrap();
        assert_eq!(wrapped.transactions.len(), 1);
        assert!(wrapped.has_next(1, 100));
        assert_eq!(parse_page(&page, "u").unwrap(), wrapped);
        let last = parse_page(
            &json!([{"actualPage": 3, "lastPage": 3, "transactions": [{}]}]),
            "u",
        )
        .unwrap();
        assert!(!last.has_next(3, 1));
        // An empty list is an empty page, the last.
        let empty = parse_page(&json!([]), "u").unwrap();
        assert!(empty.transactions.is_empty() && !empty.has_next(1, 100));
    }

    #[test]
    fn without_paging_fields_a_full_page_has_a_successor_and_a_short_one_not() {
        let full = parse_page(&json!([{"transactions": [{}, {}]}]), "u").unwrap();
        assert!(full.has_next(1, 2));
        assert!(!full.has_next(1, 3));
        let err = parse_page(&json!([{"transactions": 5}]), "http://h/p").unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(m) if m.contains("http://h/p") && m.contains("transactions")),
            "{err}"
        );
    }
}
