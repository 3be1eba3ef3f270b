//! Authenticated calls: `Authorization: Bearer <key>` on every request, JSON in and out.
//! Pacing is the host's job (the manifest declares lexoffice's 2 requests per second).

use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::config::Config;
use crate::error::{error_message, LexofficeError};

/// A lexoffice API client for one configuration.
pub struct Client {
    host: Host,
    cfg: Config,
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        Self { host, cfg }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `GET {base}/v1/{path_and_query}`; `endpoint` names the call in errors.
    pub fn get(&self, path_and_query: &str, endpoint: &str) -> Result<Value, LexofficeError> {
        let req = HttpRequest::get(self.cfg.endpoint(path_and_query));
        self.send(req, endpoint)
    }

    /// `POST {base}/v1/{path}` with a JSON body given as text (exact decimals).
    pub fn post_json(
        &self,
        path: &str,
        body: String,
        endpoint: &str,
    ) -> Result<Value, LexofficeError> {
        let req = HttpRequest::post(self.cfg.endpoint(path))
            .header("Content-Type", "application/json")
            .body(body.into_bytes());
        self.send(req, endpoint)
    }

    fn send(&self, req: HttpRequest, endpoint: &str) -> Result<Value, LexofficeError> {
        let req = req
            .header("Authorization", format!("Bearer {}", self.cfg.api_key))
            .header("Accept", "application/json");
        let resp = self.host.http(req)?;
        read_answer(&resp, endpoint)
    }
}

/// Reads an answer: the JSON body of a 2xx; 401/403 [`LexofficeError::Unauthorized`]; other
/// 4xx [`LexofficeError::Refused`] with the vendor's message; 408/429/5xx the host's usual
/// retryable errors.
pub fn read_answer(resp: &HttpResponse, endpoint: &str) -> Result<Value, LexofficeError> {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let vendor_msg = body.as_ref().and_then(error_message);
    match resp.status {
        200..=299 => resp
            .json()
            .map_err(|e| ConnectorError::Transient(format!("lexoffice: {endpoint}: {e}")).into()),
        401 | 403 => Err(LexofficeError::Unauthorized {
            endpoint: endpoint.into(),
            msg: vendor_msg.unwrap_or_else(|| format!("HTTP {}", resp.status)),
        }),
        408 | 429 | 500..=599 => match resp.error_for_status(&format!("lexoffice: {endpoint}")) {
            Err(e) => Err(e.into()),
            Ok(()) => Err(ConnectorError::Bug(format!(
                "lexoffice: {endpoint}: status {}",
                resp.status
            ))
            .into()),
        },
        status => Err(LexofficeError::Refused {
            endpoint: endpoint.into(),
            status,
            msg: vendor_msg.unwrap_or_else(|| resp.snippet()),
        }),
    }
}

pub use posbridge_plugin_api::url::percent_encode as encode_query_value;

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "1".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn maps_statuses_and_bodies() {
        assert!(matches!(
            read_answer(&resp(401, r#"{"message":"Unauthorized"}"#), "profile"),
            Err(LexofficeError::Unauthorized { msg, .. }) if msg == "Unauthorized"
        ));
        assert!(matches!(
            read_answer(&resp(429, r#"{"message":"API rate limit exceeded"}"#), "vouchers"),
            Err(LexofficeError::Host(ConnectorError::RateLimited { retry_after: Some(d), .. })) if d.as_secs() == 1
        ));
        assert!(matches!(
            read_answer(&resp(502, ""), "vouchers"),
            Err(LexofficeError::Host(ConnectorError::Transient(_)))
        ));
        assert!(matches!(
            read_answer(&resp(400, r#"{"requestId":"x","IssueList":[{"i18nKey":"invalid_value","source":"taxType","type":"validation_failure"}]}"#), "vouchers"),
            Err(LexofficeError::Refused { status: 400, msg, .. }) if msg.contains("taxType")
        ));
        assert!(matches!(
            read_answer(&resp(200, "{\"content\":"), "voucherlist"),
            Err(LexofficeError::Host(ConnectorError::Transient(m))) if m.contains("voucherlist")
        ));
        assert_eq!(
            read_answer(&resp(200, r#"{"id":"a"}"#), "vouchers").unwrap(),
            serde_json::json!({"id": "a"})
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("PB-1 a,b"), "PB-1%20a%2Cb");
    }
}
