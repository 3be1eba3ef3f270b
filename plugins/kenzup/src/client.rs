//! Signed calls to the Kenzup export endpoint and the parsing of its pages.

use chrono::{NaiveDate, SecondsFormat};
use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::config::KenzupConfig;
use crate::signature::{RequestSigner, SignedFields};

/// One page of the export, as Kenzup answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    pub total_pages: u64,
    pub current_page: u64,
    pub items: Vec<Value>,
}

/// Which page of which export a request is for, for paths and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportQuery<'a> {
    pub shop_uuid: &'a str,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub page: u32,
    pub items_per_page: u32,
}

impl ExportQuery<'_> {
    /// The request path (what the signature's `uri` covers).
    pub fn path(&self) -> String {
        format!("/api/v1/ledger/export-sales/{}/json", self.shop_uuid)
    }

    /// The query string, parameter names exactly as documented.
    pub fn query(&self) -> String {
        format!(
            "start={}&end={}&page={}&items_per_page={}",
            self.start.format("%Y-%m-%d"),
            self.end.format("%Y-%m-%d"),
            self.page,
            self.items_per_page
        )
    }

    fn describe(&self) -> String {
        format!(
            "kenzup: sales export of shop {} ({}..{}) page {}",
            self.shop_uuid, self.start, self.end, self.page
        )
    }
}

/// Talks to one Kenzup account through the host.
pub struct KenzupClient {
    host: Host,
    config: KenzupConfig,
    signer: RequestSigner,
}

impl KenzupClient {
    pub fn new(host: Host, config: KenzupConfig, signer: RequestSigner) -> Self {
        Self {
            host,
            config,
            signer,
        }
    }

    pub fn config(&self) -> &KenzupConfig {
        &self.config
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Fetches one page of a shop's export.
    pub fn export_sales(&self, q: &ExportQuery<'_>) -> Result<ExportPage, ConnectorError> {
        let path = q.path();
        let timestamp = self.host.now().to_rfc3339_opts(SecondsFormat::Secs, false);
        let signature = self.signer.header_value(&SignedFields {
            client_id: &self.config.client_id,
            host: self.config.authority(),
            method: "GET",
            timestamp: &timestamp,
            uri: &path,
            payload: b"",
        });
        let url = format!("{}{path}?{}", self.config.base(), q.query());
        let resp = self.host.http(
            HttpRequest::get(url)
                .header("X-SIGNATURE", signature)
                .header("Accept", "application/json"),
        )?;
        check_status(&resp, q)?;
        parse_page(&resp, q)
    }
}

/// Maps a non-2xx answer to a typed error naming the connector, the shop and the page.
fn check_status(resp: &HttpResponse, q: &ExportQuery<'_>) -> Result<(), ConnectorError> {
    match resp.status {
        401 | 403 => Err(ConnectorError::Auth(format!(
            "kenzup: the request signature was refused for shop {} (check client_id, private_key_pem \
             and that the clock is right): HTTP {} {}",
            q.shop_uuid,
            resp.status,
            resp.snippet()
        ))),
        404 => Err(ConnectorError::Config(format!(
            "kenzup: shop {} is not known to Kenzup (check shop_uuids): HTTP 404 {}",
            q.shop_uuid,
            resp.snippet()
        ))),
        _ => resp.error_for_status(&q.describe()),
    }
}

/// Parses a 200 page; a body that is not JSON is worth a retry, a missing field is not.
fn parse_page(resp: &HttpResponse, q: &ExportQuery<'_>) -> Result<ExportPage, ConnectorError> {
    let body: Value = serde_json::from_slice(&resp.body).map_err(|e| {
        ConnectorError::Transient(format!(
            "{}: the response is not valid JSON ({e}): {}",
            q.describe(),
            resp.snippet()
        ))
    })?;
    let missing = |field: &str| {
        ConnectorError::Permanent(format!(
            "{}: the response lacks a valid `{field}`",
            q.describe()
        ))
    };
    let total_pages = body
        .get("total_pages")
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("total_pages"))?;
    let current_page = body
        .get("current_page")
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("current_page"))?;
    let items = body
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| missing("items"))?;
    Ok(ExportPage {
        total_pages,
        current_page,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> ExportQuery<'static> {
        ExportQuery {
            shop_uuid: "b5f6e9e3",
            start: "2023-08-27".parse().unwrap(),
            end: "2023-08-30".parse().unwrap(),
            page: 2,
            items_per_page: 7000,
        }
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "3".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn path_and_query_follow_the_document() {
        assert_eq!(q().path(), "/api/v1/ledger/export-sales/b5f6e9e3/json");
        assert_eq!(
            q().query(),
            "start=2023-08-27&end=2023-08-30&page=2&items_per_page=7000"
        );
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let auth = check_status(&resp(401, "{}"), &q()).unwrap_err();
        assert!(matches!(&auth, ConnectorError::Auth(m) if m.starts_with("kenzup:")));
        assert!(matches!(
            check_status(&resp(404, "{}"), &q()),
            Err(ConnectorError::Config(_))
        ));
        assert!(matches!(
            check_status(&resp(429, "{}"), &q()),
            Err(ConnectorError::RateLimited { retry_after: Some(d), .. }) if d.as_secs() == 3
        ));
        assert!(matches!(
            check_status(&resp(503, ""), &q()),
            Err(ConnectorError::Transient(_))
        ));
        assert!(matches!(
            check_status(&resp(400, "{}"), &q()),
            Err(ConnectorError::Permanent(_))
        ));
        assert!(check_status(&resp(200, "{}"), &q()).is_ok());
    }

    #[test]
    fn pages_parse_and_bad_pages_name_the_field() {
        let p = parse_page(
            &resp(
                200,
                r#"{"total_items":1,"total_pages":1,"current_page":1,"items":[{"a":1}]}"#,
            ),
            &q(),
        )
        .unwrap();
        assert_eq!((p.total_pages, p.current_page, p.items.len()), (1, 1, 1));
        assert!(matches!(
            parse_page(&resp(200, "{\"total"), &q()),
            Err(ConnectorError::Transient(_))
        ));
        let err =
            parse_page(&resp(200, r#"{"total_pages":1,"current_page":1}"#), &q()).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(m) if m.contains("`items`") && m.contains("page 2"))
        );
    }
}
