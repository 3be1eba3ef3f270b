//! Authenticated calls: the token in the `Authorization` header (no scheme), JSON in and out.

use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::config::Config;
use crate::error::{error_message, SevdeskError};

/// A sevDesk API client for one configuration.
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

    /// The host, for state and logs.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `GET {base}/{path_and_query}`; the JSON answer.
    pub fn get(&self, path_and_query: &str) -> Result<Value, SevdeskError> {
        let req = HttpRequest::get(self.cfg.endpoint(path_and_query));
        self.send(req, &format!("GET {path_and_query}"))
    }

    /// `POST` or `PUT` of a JSON text (written exactly, see `json_text`).
    pub fn send_json(&self, method: &str, path: &str, body: String) -> Result<Value, SevdeskError> {
        let req = HttpRequest::new(method, self.cfg.endpoint(path))
            .header("Content-Type", "application/json")
            .body(body.into_bytes());
        self.send(req, &format!("{method} {path}"))
    }

    fn send(&self, req: HttpRequest, endpoint: &str) -> Result<Value, SevdeskError> {
        // The spec asks for a meaningful User-Agent and an Accept header.
        let req = req
            .header("Authorization", self.cfg.api_token.clone())
            .header("Accept", "application/json")
            .header("User-Agent", "posbridge-sevdesk-connector");
        let resp = self.host.http(req)?;
        read_answer(&resp, endpoint)
    }
}

/// Reads an answer: 2xx → the JSON body; 401/403 → `Unauthorized`; 429/408/5xx → the host's
/// retryable kinds; other statuses → `Refused` with sevDesk's error message.
pub fn read_answer(resp: &HttpResponse, endpoint: &str) -> Result<Value, SevdeskError> {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let vendor_msg = body.as_ref().and_then(error_message);
    match resp.status {
        200..=299 => resp
            .json()
            .map_err(|e| ConnectorError::Transient(format!("sevdesk: {endpoint}: {e}")).into()),
        401 | 403 => Err(SevdeskError::Unauthorized {
            endpoint: endpoint.into(),
            msg: vendor_msg.unwrap_or_else(|| format!("HTTP {}", resp.status)),
        }),
        429 | 408 | 500..=599 => {
            resp.error_for_status(&format!("sevdesk: {endpoint}"))?;
            Err(ConnectorError::Bug("error_for_status passed an error status".into()).into())
        }
        status => Err(SevdeskError::Refused {
            endpoint: endpoint.into(),
            status,
            msg: vendor_msg.unwrap_or_else(|| resp.snippet()),
        }),
    }
}

pub use posbridge_plugin_api::url::percent_encode as encode_query_value;

/// The `objects` array of a list answer.
pub fn objects<'a>(body: &'a Value, endpoint: &str) -> Result<&'a Vec<Value>, SevdeskError> {
    body.get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| SevdeskError::bad_field(endpoint, "objects", "an array"))
}

/// An id as sevDesk writes it: a string of digits or a number.
pub fn id_of(v: &Value) -> Option<u64> {
    match v.get("id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "2".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn maps_statuses_and_bodies() {
        assert!(matches!(
            read_answer(&resp(401, r#"{"objects":null,"error":{"message":"Authentication required"}}"#), "GET Voucher"),
            Err(SevdeskError::Unauthorized { msg, .. }) if msg == "Authentication required"
        ));
        assert!(matches!(
            read_answer(&resp(422, r#"{"error":{"message":"voucher.status: bad"}}"#), "POST x"),
            Err(SevdeskError::Refused { status: 422, msg, .. }) if msg == "voucher.status: bad"
        ));
        assert!(matches!(
            read_answer(&resp(429, ""), "GET Voucher"),
            Err(SevdeskError::Host(ConnectorError::RateLimited { retry_after: Some(d), .. })) if d.as_secs() == 2
        ));
        assert!(matches!(
            read_answer(&resp(502, ""), "GET Voucher"),
            Err(SevdeskError::Host(ConnectorError::Transient(_)))
        ));
        assert!(matches!(
            read_answer(&resp(200, "{\"obj"), "GET Voucher"),
            Err(SevdeskError::Host(ConnectorError::Transient(_)))
        ));
        assert_eq!(read_answer(&resp(201, "{}"), "x").unwrap(), json!({}));
    }

    #[test]
    fn ids_and_query_values() {
        assert_eq!(id_of(&json!({"id": "42"})), Some(42));
        assert_eq!(id_of(&json!({"id": 7})), Some(7));
        assert_eq!(id_of(&json!({"id": null})), None);
        assert_eq!(encode_query_value("PB-ab 1"), "PB-ab%201");
    }
}
