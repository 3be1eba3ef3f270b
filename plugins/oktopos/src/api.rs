//! The TransactionAPI as the connector calls it: paths, the auth header, the page envelope.

use chrono::NaiveDateTime;
use posbridge_plugin_api::{ConnectorError, Host, HttpRequest};
use serde_json::Value;

/// The header carrying the token (the OpenAPI security scheme is named `api_key`).
pub const AUTH_HEADER: &str = "api_key";

/// The local date-time format of the `from` / `until` segments (e.g. `2021-12-01T12:00:00`).
pub const SEGMENT_DATE_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// A filter for `GET /api/transactions/{from}/{until}/{page}/{size}/{cash-register}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionFilter {
    pub from: NaiveDateTime,
    pub until: NaiveDateTime,
    pub page: u32,
    pub size: u32,
    /// Left out (the whole segment) when `None`.
    pub cash_register: Option<u64>,
}

impl TransactionFilter {
    /// The URL: the segments are positional, so only a trailing one is ever left out.
    pub fn url(&self, base_url: &str) -> String {
        let mut url = format!(
            "{}/api/transactions/{}/{}/{}/{}",
            base_url.trim_end_matches('/'),
            self.from.format(SEGMENT_DATE_TIME),
            self.until.format(SEGMENT_DATE_TIME),
            self.page,
            self.size
        );
        if let Some(id) = self.cash_register {
            url.push_str(&format!("/{id}"));
        }
        url
    }
}

/// One page of the list endpoint, as far as the connector needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionPage {
    pub actual_page: u64,
    pub last_page: u64,
    pub transactions: Vec<Value>,
}

impl TransactionPage {
    /// Whether a later page exists.
    pub fn has_next(&self) -> bool {
        !self.transactions.is_empty() && self.actual_page < self.last_page
    }
}

/// Reads the page envelope: a JSON array holding one page object (as documented), or a bare
/// page object. A missing field is a `Permanent` error naming the page and the field.
pub fn parse_page(body: &Value, url: &str) -> Result<TransactionPage, ConnectorError> {
    let missing =
        |f: &str| ConnectorError::Permanent(format!("oktopos: page {url} lacks field `{f}`"));
    let page = match body {
        Value::Array(items) => items.first().ok_or_else(|| missing("[0]"))?,
        other => other,
    };
    if !page.is_object() {
        return Err(missing("[0]"));
    }
    let number = |f: &str| {
        page.get(f)
            .and_then(Value::as_u64)
            .ok_or_else(|| missing(f))
    };
    let transactions = page
        .get("transactions")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| missing("transactions"))?;
    Ok(TransactionPage {
        actual_page: number("actualPage")?,
        last_page: number("lastPage")?,
        transactions,
    })
}

/// Performs a GET with the token and maps non-2xx statuses to typed errors (401/403 → `Auth`
/// with a message naming the connector).
pub fn get_json(host: &Host, token: &str, url: &str) -> Result<Value, ConnectorError> {
    let resp = host.http(
        HttpRequest::get(url)
            .header(AUTH_HEADER, token)
            .header("Accept", "application/json"),
    )?;
    if matches!(resp.status, 401 | 403) {
        return Err(ConnectorError::Auth(format!(
            "oktopos: the OktoPOS Manager refused the token (HTTP {}): {}",
            resp.status,
            resp.snippet()
        )));
    }
    resp.error_for_status(&format!("oktopos: GET {url}"))?;
    resp.json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn at(d: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2021, 12, d)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    #[test]
    fn urls_keep_positional_segments_and_drop_an_unused_register() {
        let mut f = TransactionFilter {
            from: at(1, 0, 0, 0),
            until: at(15, 23, 59, 59),
            page: 2,
            size: 100,
            cash_register: None,
        };
        assert_eq!(
            f.url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/api/transactions/2021-12-01T00:00:00/2021-12-15T23:59:59/2/100"
        );
        f.cash_register = Some(5);
        assert!(f.url("http://x").ends_with("/2/100/5"));
    }

    #[test]
    fn the_page_envelope_is_read_wrapped_or_bare() {
        let page = json!({"actualPage": 1, "lastPage": 3, "transactionCount": 5, "transactions": [{"referenceNumber": "1"}]});
        let wrapped = parse_page(&json!([page.clone()]), "u").unwrap();
        assert_eq!(
            (
                wrapped.actual_page,
                wrapped.last_page,
                wrapped.transactions.len()
            ),
            (1, 3, 1)
        );
        assert!(wrapped.has_next());
        assert_eq!(parse_page(&page, "u").unwrap(), wrapped);
    }

    #[test]
    fn a_page_without_last_page_names_page_and_field() {
        let err = parse_page(
            &json!([{"actualPage": 1, "transactions": []}]),
            "http://h/p",
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(m) if m.contains("http://h/p") && m.contains("lastPage")),
            "{err}"
        );
    }
}
