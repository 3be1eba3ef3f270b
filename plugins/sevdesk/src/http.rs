//! Authenticated calls through the SDK's REST toolkit: the token in the `Authorization` header
//! (no scheme, spec "Authentication and Authorization"), `Accept: application/json` and a
//! meaningful `User-Agent` (the spec asks for one) on every request, JSON in and out. Statuses
//! and sevDesk's error bodies are read by the toolkit's answer handler.

use posbridge_plugin_api::rest::{Auth, RestClient, RestError};
use posbridge_plugin_api::Host;
use serde_json::Value;

use crate::config::Config;
use crate::error::bad_field;

/// A sevDesk API client for one configuration.
pub struct Client {
    api: RestClient,
    cfg: Config,
}

/// `METHOD path` without the query, which names the call in errors.
fn endpoint(method: &str, path_and_query: &str) -> String {
    let path = path_and_query.split('?').next().unwrap_or_default();
    format!("{method} {}", path.trim_start_matches('/'))
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        let api = RestClient::new(host, "sevdesk", &cfg.endpoint(""))
            .auth(Auth::Header {
                name: "Authorization".into(),
                value: cfg.api_token.clone(),
            })
            .default_header("Accept", "application/json")
            .default_header("User-Agent", "posbridge-sevdesk-connector");
        Self { api, cfg }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The host, for state and logs.
    pub fn host(&self) -> &Host {
        self.api.host()
    }

    /// `GET {base}/{path_and_query}`; the JSON answer.
    pub fn get(&self, path_and_query: &str) -> Result<Value, RestError> {
        self.api
            .get(path_and_query)
            .endpoint(endpoint("GET", path_and_query))
            .send_json()
    }

    /// `POST` or `PUT` of a JSON text (written exactly, see `json_text`).
    pub fn send_json(&self, method: &str, path: &str, body: String) -> Result<Value, RestError> {
        self.api
            .request(method, path)
            .body(body.into_bytes(), "application/json")
            .endpoint(endpoint(method, path))
            .send_json()
    }
}

pub use posbridge_plugin_api::url::percent_encode as encode_query_value;

/// The `objects` array of a list answer.
pub fn objects<'a>(body: &'a Value, endpoint: &str) -> Result<&'a Vec<Value>, RestError> {
    body.get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_field(endpoint, "objects", "an array"))
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
    use posbridge_plugin_api::testing::FakeHost;
    use posbridge_plugin_api::{ConnectorError, HttpResponse};
    use serde_json::json;

    fn answering(status: u16, body: &'static str) -> (FakeHost, Client) {
        let host = FakeHost::with_vendor(move |_| {
            Ok(HttpResponse {
                status,
                headers: vec![("Retry-After".into(), "2".into())],
                body: body.as_bytes().to_vec(),
            })
        });
        let cfg: Config = serde_json::from_value(
            json!({"base_url": "http://127.0.0.1:9/api/v1/", "api_token": "b7794de0085f5cd00560f160f290af38"}),
        )
        .unwrap();
        let client = Client::new(host.host(), cfg);
        (host, client)
    }

    #[test]
    fn requests_carry_the_token_without_scheme_and_the_headers() {
        let (host, client) = answering(200, r#"{"objects":[]}"#);
        client.get("Voucher?descriptionLike=PB-k&limit=10").unwrap();
        let req = &host.requests()[0];
        assert_eq!(
            req.url,
            "http://127.0.0.1:9/api/v1/Voucher?descriptionLike=PB-k&limit=10"
        );
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("Authorization"),
            Some("b7794de0085f5cd00560f160f290af38")
        );
        assert_eq!(header("Accept"), Some("application/json"));
        assert_eq!(header("User-Agent"), Some("posbridge-sevdesk-connector"));
    }

    #[test]
    fn maps_statuses_and_bodies() {
        let err = |status, body| {
            let (_, c) = answering(status, body);
            c.get("Voucher?limit=1").unwrap_err()
        };
        let auth: ConnectorError = err(
            401,
            r#"{"objects":null,"error":{"message":"Authentication required"}}"#,
        )
        .into();
        assert!(
            matches!(&auth, ConnectorError::Auth(m) if m.contains("sevdesk: GET Voucher") && m.contains("Authentication required") && !m.contains("limit")),
            "{auth:?}"
        );
        assert!(matches!(
            err(422, r#"{"error":{"message":"voucher.status: bad"}}"#),
            RestError::Permanent { status: 422, message, .. } if message == "voucher.status: bad"
        ));
        assert!(matches!(
            err(429, ""),
            RestError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 2
        ));
        assert!(matches!(err(502, ""), RestError::Transient { .. }));
        assert!(matches!(err(200, "{\"obj"), RestError::Transient { .. }));
    }

    #[test]
    fn ids_and_query_values() {
        assert_eq!(id_of(&json!({"id": "42"})), Some(42));
        assert_eq!(id_of(&json!({"id": 7})), Some(7));
        assert_eq!(id_of(&json!({"id": null})), None);
        assert_eq!(encode_query_value("PB-ab 1"), "PB-ab%201");
        assert_eq!(endpoint("GET", "/Voucher?x=1"), "GET Voucher");
    }
}
