//! Authenticated calls through the SDK's REST toolkit: `Authorization: Bearer <key>` on every
//! request, JSON in and out, lexoffice's error bodies read by [`LexofficeErrors`].
//! Pacing is the host's job (the manifest declares lexoffice's 2 requests per second).

use posbridge_plugin_api::rest::{
    fetch_page, Auth, PageNumber, PageOf, Position, RestClient, RestError,
};
use posbridge_plugin_api::Host;
use serde_json::Value;

use crate::config::Config;
use crate::error::LexofficeErrors;

/// A lexoffice API client for one configuration.
pub struct Client {
    api: RestClient,
    cfg: Config,
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        let api = RestClient::new(host, "lexoffice", &cfg.endpoint(""))
            .auth(Auth::Bearer(cfg.api_key.clone()))
            .default_header("Accept", "application/json")
            .vendor_errors(LexofficeErrors);
        Self { api, cfg }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `GET {base}/v1/{path_and_query}`; `endpoint` names the call in errors.
    pub fn get(&self, path_and_query: &str, endpoint: &str) -> Result<Value, RestError> {
        self.api.get(path_and_query).endpoint(endpoint).send_json()
    }

    /// One page of a lexoffice list (`content`, zero-based `page` and `size`, `last`): the page
    /// at `at` of `GET {base}/v1/{path}?{query}`.
    pub fn list_page(
        &self,
        path: &str,
        query: &[(&str, String)],
        size: u32,
        at: &Position,
        endpoint: &str,
    ) -> Result<PageOf, RestError> {
        let request = self.api.get(path).query_pairs(query).endpoint(endpoint);
        fetch_page(request, &list_pages(size), at, "/content")
    }

    /// `POST {base}/v1/{path}` with a JSON body given as text (exact decimals).
    pub fn post_json(&self, path: &str, body: String, endpoint: &str) -> Result<Value, RestError> {
        self.api
            .post(path)
            .body(body.into_bytes(), "application/json")
            .endpoint(endpoint)
            .send_json()
    }
}

/// lexoffice's list pager: zero-based `page`, `size`, and `last` on the last page (a short or
/// empty page ends the list when `last` is missing).
pub fn list_pages(size: u32) -> PageNumber {
    PageNumber::new("page", 0)
        .size("size", u64::from(size))
        .last_flag("/last")
}

/// How errors name a list page: `voucherlist (page 2)`.
pub fn page_endpoint(list: &str, at: &Position) -> String {
    match at {
        Position::Page(n) => format!("{list} (page {n})"),
        _ => list.to_string(),
    }
}

/// A missing or mistyped field of an answer of `endpoint`.
pub fn bad_field(endpoint: &str, field: impl Into<String>, expected: &'static str) -> RestError {
    RestError::bad_field(format!("lexoffice: {endpoint}"), field, expected)
}

pub use posbridge_plugin_api::url::percent_encode as encode_query_value;

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::testing::{response, FakeHost};
    use posbridge_plugin_api::ConnectorError;
    use serde_json::json;
    use std::time::Duration;

    fn answering(status: u16, body: &'static str) -> (FakeHost, Client) {
        let host =
            FakeHost::with_vendor(move |_| Ok(response(status, &[("Retry-After", "1")], body)));
        let cfg: Config =
            serde_json::from_value(json!({"base_url": "http://127.0.0.1:9/", "api_key": "k"}))
                .unwrap();
        let client = Client::new(host.host(), cfg);
        (host, client)
    }

    #[test]
    fn requests_carry_the_key_and_the_version_prefix() {
        let (host, client) = answering(200, r#"{"id":"a"}"#);
        assert_eq!(
            client.get("vouchers/a", "vouchers").unwrap(),
            json!({"id": "a"})
        );
        let sent = &host.requests()[0];
        assert_eq!(sent.url, "http://127.0.0.1:9/v1/vouchers/a");
        assert!(sent
            .headers
            .contains(&("Authorization".into(), "Bearer k".into())));
        client
            .post_json("vouchers", "{}".into(), "POST vouchers")
            .unwrap();
        assert!(host.requests()[1]
            .headers
            .contains(&("Content-Type".into(), "application/json".into())));
    }

    #[test]
    fn maps_statuses_and_bodies() {
        let err = |status, body| answering(status, body).1.get("x", "vouchers").unwrap_err();
        let e = err(401, r#"{"message":"Unauthorized"}"#);
        assert!(matches!(&e, RestError::Auth { message, .. } if message == "Unauthorized"));
        assert!(e.to_string().starts_with("lexoffice: vouchers"), "{e}");
        assert!(matches!(
            ConnectorError::from(err(429, r#"{"message":"API rate limit exceeded"}"#)),
            ConnectorError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(1)
        ));
        assert!(matches!(err(502, ""), RestError::Transient { .. }));
        assert!(matches!(
            err(400, r#"{"requestId":"x","IssueList":[{"i18nKey":"invalid_value","source":"taxType","type":"validation_failure"}]}"#),
            RestError::Permanent { status: 400, message, .. } if message.contains("taxType")
        ));
        assert!(matches!(
            err(200, "{\"content\":"),
            RestError::Transient { context, .. } if context.contains("vouchers")
        ));
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("PB-1 a,b"), "PB-1%20a%2Cb");
    }
}
