//! A REST client over [`Host::http`]: a base URL, default headers, credentials and the vendor's
//! error hook, and a builder for each request.

use std::sync::Arc;

use serde_json::Value;

use super::answer::{read_answer, Answer, DefaultErrors, RestError, VendorErrors};
use super::auth::Auth;
use crate::json_text::Json;
use crate::url::encode_pairs;
use crate::{ConnectorError, Host, HttpRequest, HttpResponse};

/// One vendor API as configured.
///
/// ```
/// # #[cfg(feature = "testing")] fn main() {
/// use posbridge_plugin_api::rest::{Auth, RestClient};
/// use posbridge_plugin_api::testing::{json_response, FakeHost};
/// use serde_json::json;
///
/// let vendor = FakeHost::with_vendor(|req| {
///     assert_eq!(req.url, "https://api.example.com/v1/items?page=2&q=a%20b");
///     Ok(json_response(200, &json!({"items": [1, 2]})))
/// });
/// let api = RestClient::new(vendor.host(), "acme", "https://api.example.com/v1/")
///     .auth(Auth::Bearer("t".into()))
///     .default_header("Accept", "application/json");
/// let items = api.get("/items").query("page", 2).query("q", "a b").send_json().unwrap();
/// assert_eq!(items["items"][1], 2);
/// assert!(vendor.requests()[0].headers.contains(&("Authorization".into(), "Bearer t".into())));
/// # }
/// # #[cfg(not(feature = "testing"))] fn main() {}
/// ```
#[derive(Clone)]
pub struct RestClient {
    host: Host,
    vendor: String,
    base_url: String,
    auth: Auth,
    headers: Vec<(String, String)>,
    errors: Arc<dyn VendorErrors>,
}

impl RestClient {
    /// A client for `base_url` (a trailing slash is dropped); `vendor` starts every error message.
    pub fn new(host: Host, vendor: &str, base_url: &str) -> Self {
        Self {
            host,
            vendor: vendor.into(),
            base_url: base_url.trim_end_matches('/').into(),
            auth: Auth::None,
            headers: Vec::new(),
            errors: Arc::new(DefaultErrors),
        }
    }

    /// The credentials sent with every request.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// A header sent with every request.
    pub fn default_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The vendor's error hook (message extraction, reclassification).
    pub fn vendor_errors(mut self, errors: impl VendorErrors + 'static) -> Self {
        self.errors = Arc::new(errors);
        self
    }

    /// The host the client sends through.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The configured credentials (e.g. to say where they went in an error message).
    pub fn credentials(&self) -> &Auth {
        &self.auth
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` joined with `path` by exactly one slash (an absolute URL is kept as it is).
    ///
    /// ```
    /// # #[cfg(feature = "testing")] fn main() {
    /// # use posbridge_plugin_api::rest::RestClient;
    /// # let host = posbridge_plugin_api::testing::FakeHost::new().host();
    /// let api = RestClient::new(host, "acme", "http://h/api/");
    /// assert_eq!(api.url("items"), "http://h/api/items");
    /// assert_eq!(api.url("/items"), "http://h/api/items");
    /// assert_eq!(api.url(""), "http://h/api");
    /// # }
    /// # #[cfg(not(feature = "testing"))] fn main() {}
    /// ```
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.into();
        }
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            self.base_url.clone()
        } else {
            format!("{}/{path}", self.base_url)
        }
    }

    /// A request with this method to `path` under the base URL.
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method: method.into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            endpoint: None,
        }
    }

    /// A `GET` request to `path`.
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request("GET", path)
    }

    /// A `POST` request to `path`.
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request("POST", path)
    }

    /// A `PUT` request to `path`.
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request("PUT", path)
    }

    /// A `DELETE` request to `path`.
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request("DELETE", path)
    }
}

/// One request being built; [`RequestBuilder::send`] sends it and reads the answer.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a RestClient,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    endpoint: Option<String>,
}

impl RequestBuilder<'_> {
    /// A query parameter (percent-encoded when sent).
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    /// A query parameter when there is a value.
    pub fn query_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(name, v),
            None => self,
        }
    }

    /// Several query parameters, in order.
    pub fn query_pairs<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        for (k, v) in pairs {
            self.query.push((k.as_ref().into(), v.as_ref().into()));
        }
        self
    }

    /// Adds a header to this request.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.body(
            serde_json::to_vec(body).unwrap_or_default(),
            "application/json",
        )
    }

    /// A JSON body written with exact decimal numbers (see [`crate::json_text`]).
    pub fn json_text(self, body: &Json) -> Self {
        self.body(body.to_text().into_bytes(), "application/json")
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(self, fields: &[(K, V)]) -> Self {
        self.body(
            encode_pairs(fields).into_bytes(),
            "application/x-www-form-urlencoded",
        )
    }

    /// A body of any type.
    pub fn body(mut self, body: Vec<u8>, content_type: &str) -> Self {
        self.body = body;
        self.header("Content-Type", content_type)
    }

    /// How errors name the call (default `METHOD path`, never the query, which may hold secrets).
    pub fn endpoint(mut self, name: impl Into<String>) -> Self {
        self.endpoint = Some(name.into());
        self
    }

    /// `vendor: endpoint`, the start of every error message about this call.
    pub fn context(&self) -> String {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path));
        format!("{}: {endpoint}", self.client.vendor)
    }

    /// The request as the host will get it, credentials applied (or signed) last.
    pub fn build(&self) -> Result<HttpRequest, ConnectorError> {
        let mut url = self.client.url(&self.path);
        if !self.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encode_pairs(&self.query));
        }
        let mut req = HttpRequest::new(&self.method, url);
        req.headers = self.client.headers.clone();
        req.headers.extend(self.headers.iter().cloned());
        req.body = self.body.clone();
        self.client.auth.apply(&mut req, self.client.host.now())?;
        Ok(req)
    }

    /// Sends the request without reading the answer (for a connector that reads statuses itself).
    pub fn send_raw(self) -> Result<HttpResponse, ConnectorError> {
        self.client.host.http(self.build()?)
    }

    /// Sends the request and reads the answer (see [`super::answer`]).
    pub fn send(self) -> Result<Answer, RestError> {
        let context = self.context();
        let client = self.client;
        let resp = client.host.http(self.build()?)?;
        read_answer(resp, &context, client.host.now(), client.errors.as_ref())
    }

    /// [`RequestBuilder::send`], keeping only the JSON body.
    pub fn send_json(self) -> Result<Value, RestError> {
        self.send().map(|a| a.body)
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::rest::{RequestSigner, Verdict};
    use crate::testing::{json_response, FakeHost};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn client(vendor: &FakeHost) -> RestClient {
        RestClient::new(vendor.host(), "acme", "http://h/api/")
            .default_header("Accept", "application/json")
    }

    #[test]
    fn requests_carry_the_path_query_headers_body_and_credentials() {
        let vendor = FakeHost::with_vendor(|_| Ok(json_response(201, &json!({"id": "a"}))));
        let api = client(&vendor).auth(Auth::from_spec("query:key", "s 1").unwrap());
        let id = api
            .post("/items")
            .query("dry", true)
            .header("Idempotency-Key", "k1")
            .json(&json!({"n": 1}))
            .send_json()
            .unwrap();
        assert_eq!(id, json!({"id": "a"}));
        let sent = &vendor.requests()[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.url, "http://h/api/items?dry=true&key=s%201");
        assert_eq!(sent.body, br#"{"n":1}"#);
        for h in [
            ("Accept", "application/json"),
            ("Idempotency-Key", "k1"),
            ("Content-Type", "application/json"),
        ] {
            assert!(sent.headers.contains(&(h.0.into(), h.1.into())), "{h:?}");
        }
    }

    #[test]
    fn a_form_body_is_encoded() {
        let vendor = FakeHost::with_vendor(|_| Ok(json_response(200, &json!({}))));
        client(&vendor)
            .post("refunds")
            .form(&[("metadata[id]", "a b")])
            .send()
            .unwrap();
        let sent = &vendor.requests()[0];
        assert_eq!(sent.body, b"metadata%5Bid%5D=a%20b");
        assert!(sent.headers.contains(&(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into()
        )));
    }

    #[test]
    fn errors_name_vendor_and_endpoint_but_not_the_query() {
        let vendor =
            FakeHost::with_vendor(|_| Ok(json_response(401, &json!({"message": "bad key"}))));
        let api = client(&vendor).auth(Auth::from_spec("query:key", "secret").unwrap());
        let e = api.get("items").query("page", 1).send().unwrap_err();
        assert_eq!(
            e.to_string(),
            "acme: GET items: the credentials were refused (HTTP 401): bad key"
        );
        let e = api.get("items").endpoint("item list").send().unwrap_err();
        assert!(e.to_string().starts_with("acme: item list:"), "{e}");
        assert!(matches!(ConnectorError::from(e), ConnectorError::Auth(_)));
    }

    #[test]
    fn the_signer_signs_the_final_request_with_the_host_clock() {
        struct Sig;
        impl RequestSigner for Sig {
            fn sign(&self, r: &mut HttpRequest, now: DateTime<Utc>) -> Result<(), ConnectorError> {
                let s = format!("{}|{}|{}", r.url, r.body.len(), now.timestamp());
                r.headers.push(("X-Signature".into(), s));
                Ok(())
            }
        }
        let vendor = FakeHost::with_vendor(|_| Ok(json_response(200, &json!([]))));
        let api = client(&vendor).auth(Auth::Signed(Arc::new(Sig)));
        api.get("x").query("a", 1).send().unwrap();
        let sent = &vendor.requests()[0];
        assert!(sent.headers.contains(&(
            "X-Signature".into(),
            "http://h/api/x?a=1|0|1700000000".into()
        )));
    }

    #[test]
    fn transport_failures_pass_through_and_the_hook_is_used() {
        let vendor = FakeHost::with_vendor(|_| Err(ConnectorError::Transient("reset".into())));
        let e = client(&vendor).get("x").send().unwrap_err();
        assert_eq!(
            e,
            RestError::Host(ConnectorError::Transient("reset".into()))
        );

        struct NotFoundIsConfig;
        impl VendorErrors for NotFoundIsConfig {
            fn classify(&self, r: &HttpResponse, _: Option<&Value>, usual: Verdict) -> Verdict {
                if r.status == 404 {
                    Verdict::Config
                } else {
                    usual
                }
            }
        }
        let vendor = FakeHost::with_vendor(|_| Ok(json_response(404, &json!({}))));
        let e = client(&vendor)
            .vendor_errors(NotFoundIsConfig)
            .get("shops/x")
            .send()
            .unwrap_err();
        assert!(matches!(e, RestError::Config { status: 404, .. }));
    }
}
