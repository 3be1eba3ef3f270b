//! Signed calls to the Kenzup export endpoint (through the SDK's REST toolkit, the RSA
//! signature as its signing hook) and the parsing of its pages.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use posbridge_plugin_api::rest::{
    self, fetch_page, Auth, PageNumber, Position, RestClient, RestError, VendorErrors, Verdict,
};
use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::config::KenzupConfig;
use crate::signature::{RequestSigner, SignedFields};

/// One page of the export: its items and the number of the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    pub items: Vec<Value>,
    pub next_page: Option<u64>,
}

/// The export's paging: 1-based `page` and `items_per_page` in the query, the last page by
/// `total_pages`, or without it a short or empty page.
pub fn export_pages(items_per_page: u32) -> PageNumber {
    PageNumber::new("page", 1)
        .size("items_per_page", u64::from(items_per_page))
        .total_pages("/total_pages")
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

    fn describe(&self) -> String {
        format!(
            "kenzup: sales export of shop {} ({}..{}) page {}",
            self.shop_uuid, self.start, self.end, self.page
        )
    }
}

/// Kenzup's answers for the REST toolkit: a 404 names a shop Kenzup does not know, which is
/// the configuration's fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct KenzupErrors;

impl VendorErrors for KenzupErrors {
    fn classify(&self, resp: &HttpResponse, _body: Option<&Value>, usual: Verdict) -> Verdict {
        if resp.status == 404 {
            Verdict::Config
        } else {
            usual
        }
    }
}

/// Signs every request with the client's RSA key (the `X-SIGNATURE` header), through the
/// toolkit's signature hook.
pub struct KenzupSigner {
    pub signer: RequestSigner,
    pub client_id: String,
}

impl rest::RequestSigner for KenzupSigner {
    fn sign(&self, req: &mut HttpRequest, now: DateTime<Utc>) -> Result<(), ConnectorError> {
        let timestamp = now.to_rfc3339_opts(SecondsFormat::Secs, false);
        let (host, uri) = authority_and_path(&req.url);
        let header = self.signer.header_value(&SignedFields {
            client_id: &self.client_id,
            host,
            method: &req.method,
            timestamp: &timestamp,
            uri,
            payload: &req.body,
        });
        req.headers.push(("X-SIGNATURE".into(), header));
        Ok(())
    }
}

/// The authority (`host[:port]`, without userinfo) and the path (without the query) of a URL.
pub fn authority_and_path(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = &rest[end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    (authority, path)
}

/// Talks to one Kenzup account through the host.
pub struct KenzupClient {
    api: RestClient,
    config: KenzupConfig,
}

impl KenzupClient {
    pub fn new(host: Host, config: KenzupConfig, signer: RequestSigner) -> Self {
        let signer = KenzupSigner {
            signer,
            client_id: config.client_id.clone(),
        };
        let api = RestClient::new(host, "kenzup", config.base())
            .auth(Auth::Signed(Arc::new(signer)))
            .default_header("Accept", "application/json")
            .vendor_errors(KenzupErrors);
        Self { api, config }
    }

    pub fn config(&self) -> &KenzupConfig {
        &self.config
    }

    pub fn host(&self) -> &Host {
        self.api.host()
    }

    /// Fetches one page of a shop's export. `items` may be missing (no items); an `items`
    /// that is not a list is `Permanent`, naming shop, page and field.
    pub fn export_sales(&self, q: &ExportQuery<'_>) -> Result<ExportPage, ConnectorError> {
        let request = self
            .api
            .get(&q.path())
            .query("start", q.start.format("%Y-%m-%d"))
            .query("end", q.end.format("%Y-%m-%d"))
            .endpoint(q.describe());
        let pages = export_pages(q.items_per_page);
        let page = fetch_page(
            request,
            &pages,
            &Position::Page(u64::from(q.page)),
            "/items",
        )
        .map_err(|e| explain(e, q))?;
        let next_page = match page.next {
            Some(Position::Page(n)) => Some(n),
            _ => None,
        };
        Ok(ExportPage {
            items: page.items,
            next_page,
        })
    }
}

/// Says what to check when Kenzup refuses the signature or does not know the shop.
fn explain(e: RestError, q: &ExportQuery<'_>) -> ConnectorError {
    match e {
        RestError::Auth {
            status, message, ..
        } => ConnectorError::Auth(format!(
            "kenzup: the request signature was refused for shop {} (check client_id, \
             private_key_pem and that the clock is right): HTTP {status} {message}",
            q.shop_uuid
        )),
        RestError::Config {
            status, message, ..
        } => ConnectorError::Config(format!(
            "kenzup: shop {} is not known to Kenzup (check shop_uuids): HTTP {status} {message}",
            q.shop_uuid
        )),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::testing::{response, FakeHost};

    const PRIVATE: &str = include_str!("../tests/fixtures/test-private.pem");

    fn q() -> ExportQuery<'static> {
        ExportQuery {
            shop_uuid: "b5f6e9e3",
            start: "2023-08-27".parse().unwrap(),
            end: "2023-08-30".parse().unwrap(),
            page: 2,
            items_per_page: 7000,
        }
    }

    fn answering(status: u16, body: &'static str) -> (FakeHost, KenzupClient) {
        let host =
            FakeHost::with_vendor(move |_| Ok(response(status, &[("Retry-After", "3")], body)));
        let config: KenzupConfig = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:8123/", "client_id": "POS_1",
            "private_key_pem": PRIVATE, "shop_uuids": ["b5f6e9e3"]
        }))
        .unwrap();
        let client = KenzupClient::new(
            host.host(),
            config,
            RequestSigner::from_pem(PRIVATE).unwrap(),
        );
        (host, client)
    }

    #[test]
    fn path_query_and_signature_follow_the_document() {
        assert_eq!(q().path(), "/api/v1/ledger/export-sales/b5f6e9e3/json");
        let (host, c) = answering(200, r#"{"total_pages":1,"current_page":1,"items":[]}"#);
        c.export_sales(&q()).unwrap();
        let sent = &host.requests()[0];
        assert_eq!(
            sent.url,
            "http://127.0.0.1:8123/api/v1/ledger/export-sales/b5f6e9e3/json\
             ?start=2023-08-27&end=2023-08-30&page=2&items_per_page=7000"
        );
        let sig = &sent
            .headers
            .iter()
            .find(|(k, _)| k == "X-SIGNATURE")
            .unwrap()
            .1;
        // The host clock of the scripted host is 2023-11-14T22:13:20Z.
        assert!(
            sig.starts_with(
                "client_id=POS_1,host=127.0.0.1:8123,method=GET,timestamp=2023-11-14T22:13:20+00:00,\
                 uri=/api/v1/ledger/export-sales/b5f6e9e3/json,payload=,signature="
            ),
            "{sig}"
        );
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let err = |status, body| answering(status, body).1.export_sales(&q()).unwrap_err();
        assert!(
            matches!(&err(401, "{}"), ConnectorError::Auth(m) if m.starts_with("kenzup: the request signature was refused"))
        );
        assert!(matches!(err(404, "{}"), ConnectorError::Config(m) if m.contains("shop_uuids")));
        assert!(matches!(
            err(429, "{}"),
            ConnectorError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 3
        ));
        assert!(matches!(err(503, ""), ConnectorError::RateLimited { .. }));
        assert!(matches!(err(500, ""), ConnectorError::Transient(_)));
        assert!(matches!(err(400, "{}"), ConnectorError::Permanent(_)));
    }

    #[test]
    fn pages_are_read_liberally_and_bad_items_name_the_field() {
        let (_, c) = answering(
            200,
            r#"{"total_items":1,"total_pages":1,"current_page":1,"items":[{"a":1}]}"#,
        );
        let p = c.export_sales(&q()).unwrap();
        assert_eq!((p.next_page, p.items.len()), (None, 1));
        // Page 2 of 3 has a successor; without `total_pages`, only a full page has one.
        let (_, c) = answering(200, r#"{"total_pages":3,"items":[{"a":1}]}"#);
        assert_eq!(c.export_sales(&q()).unwrap().next_page, Some(3));
        let (_, c) = answering(200, r#"{"items":[{"a":1}]}"#);
        assert_eq!(c.export_sales(&q()).unwrap().next_page, None);
        let (_, c) = answering(200, r#"{"total_pages":1,"current_page":1}"#);
        assert_eq!(c.export_sales(&q()).unwrap().items, Vec::<Value>::new());
        let (_, c) = answering(200, "{\"total");
        assert!(matches!(
            c.export_sales(&q()),
            Err(ConnectorError::Transient(_))
        ));
        let (_, c) = answering(200, r#"{"total_pages":1,"items":7}"#);
        let err = c.export_sales(&q()).unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Permanent(m) if m.contains("`items`") && m.contains("page 2")),
            "{err}"
        );
    }

    #[test]
    fn authority_and_path_of_urls() {
        assert_eq!(
            authority_and_path("https://u:p@app.kenzup.com:8443/api/x?y=1#z"),
            ("app.kenzup.com:8443", "/api/x")
        );
        assert_eq!(authority_and_path("http://h"), ("h", ""));
    }
}
