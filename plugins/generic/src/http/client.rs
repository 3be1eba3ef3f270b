//! How the HTTP transport reaches the network: through the host, or a stand-in in tests and tools.

use base64::Engine;
use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};

use super::config::{Auth, HttpConfig};

/// Sends one request. The plugin's real client is the [`Host`], which enforces egress,
/// timeouts and rate limits; a closure serves for tests and tools.
pub trait HttpClient {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError>;
}

impl HttpClient for Host {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        self.http(request)
    }
}

impl<F> HttpClient for F
where
    F: Fn(HttpRequest) -> Result<HttpResponse, ConnectorError>,
{
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        self(request)
    }
}

/// A request with the configured headers, credentials and timeout.
pub fn request(config: &HttpConfig, method: &str, url: String) -> HttpRequest {
    let mut r = HttpRequest::new(method, url).header("Accept", "application/json");
    for (name, value) in &config.headers {
        r = r.header(name, value.clone());
    }
    r = match &config.auth {
        None => r,
        Some(Auth::Bearer(token)) => r.header("Authorization", format!("Bearer {token}")),
        Some(Auth::Header { name, value }) => r.header(name, value.clone()),
        Some(Auth::Basic { username, password }) => {
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            r.header("Authorization", format!("Basic {pair}"))
        }
    };
    if let Some(t) = config.timeout() {
        r = r.timeout(t);
    }
    r
}

/// `url` with the parameters appended to its query string, percent-encoded.
pub fn with_query(url: &str, params: &[(&str, String)]) -> String {
    let mut out = url.to_string();
    for (name, value) in params.iter().filter(|(name, _)| !name.is_empty()) {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&percent_encode(name));
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

use posbridge_plugin_api::url::percent_encode;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query(
                "http://h/x",
                &[("page", "2".into()), ("limit", "10".into())]
            ),
            "http://h/x?page=2&limit=10"
        );
        assert_eq!(
            with_query("http://h/x?a=1", &[("cursor", "a+b/=ü".into())]),
            "http://h/x?a=1&cursor=a%2Bb%2F%3D%C3%BC"
        );
        assert_eq!(with_query("http://h/x", &[("", "1".into())]), "http://h/x");
    }

    #[test]
    fn credentials_become_headers() {
        let header = |auth: serde_json::Value| {
            let c: HttpConfig =
                serde_json::from_value(json!({ "url": "http://h", "auth": auth })).unwrap();
            request(&c, "GET", c.url.clone()).headers
        };
        let h = header(json!({ "basic": { "username": "Aladdin", "password": "open sesame" } }));
        assert!(h.contains(&(
            "Authorization".into(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".into()
        )));
        let h = header(json!({ "bearer": "tok" }));
        assert!(h.contains(&("Authorization".into(), "Bearer tok".into())));
        let h = header(json!({ "header": { "name": "X-Api-Key", "value": "k" } }));
        assert!(h.contains(&("X-Api-Key".into(), "k".into())));
    }
}
