//! Authenticated calls on the REST toolkit: the right token in the `kassandro-token` header,
//! put there by a [`RequestSigner`] that reads the current token, and renewed once when the
//! API refuses it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use posbridge_plugin_api::rest::{Auth, RequestBuilder, RequestSigner, RestClient};
use posbridge_plugin_api::{ConnectorError, Host, HttpRequest};
use serde_json::Value;

use crate::auth::{TokenKind, Tokens};
use crate::config::Config;
use crate::error::KassandroError;
use crate::http::{api, send, send_for_array, Body, TOKEN_HEADER};

/// A Kassandro API client for one configuration.
pub struct Client {
    cfg: Config,
    api: RestClient,
    tokens: Arc<Tokens>,
}

/// The toolkit's credentials for one call: the current token of `kind` (cached in the host's
/// state, else acquired), remembering which one went out so a refusal renews that one.
struct TokenHeader {
    tokens: Arc<Tokens>,
    kind: TokenKind,
    sent: Mutex<Option<String>>,
}

impl TokenHeader {
    fn sent(&self) -> Option<String> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl RequestSigner for TokenHeader {
    fn sign(&self, request: &mut HttpRequest, _now: DateTime<Utc>) -> Result<(), ConnectorError> {
        let token = self.tokens.get(self.kind)?;
        request.headers.push((TOKEN_HEADER.into(), token.clone()));
        *self.sent.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
        Ok(())
    }
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        let api = api(host, &cfg);
        let tokens = Arc::new(Tokens::new(api.clone(), cfg.clone()));
        Self { cfg, api, tokens }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn host(&self) -> &Host {
        self.api.host()
    }

    /// `GET {base}/v1.0/{path}?{query}` with a token of `kind`; `endpoint` names it in errors.
    /// The values are dates, date-times, numbers and flags, sent as the document spells them
    /// (`T00:00:00`, not the `%3A` a generic encoder writes).
    pub fn get(
        &self,
        kind: TokenKind,
        path: &str,
        query: &[(&str, String)],
        endpoint: &str,
    ) -> Result<Value, KassandroError> {
        let path = with_query(path, query);
        self.send(kind, endpoint, |api| api.get(&path))
    }

    /// [`Client::get`] of a page of records: an answer that is a JSON array comes as its text
    /// (see [`Body`]).
    pub fn get_array(
        &self,
        kind: TokenKind,
        path: &str,
        query: &[(&str, String)],
        endpoint: &str,
    ) -> Result<Body, KassandroError> {
        let path = with_query(path, query);
        let host = self.host().clone();
        self.send_with(
            kind,
            endpoint,
            |api| api.get(&path),
            |request, endpoint| send_for_array(request, endpoint, &host),
        )
    }

    /// Sends the request `build` makes on the API, with a token of `kind`. A refused token
    /// (expired or deleted) is renewed once for this refusal; a second refusal is returned.
    pub fn send(
        &self,
        kind: TokenKind,
        endpoint: &str,
        build: impl Fn(&RestClient) -> RequestBuilder<'_>,
    ) -> Result<Value, KassandroError> {
        self.send_with(kind, endpoint, build, send)
    }

    /// [`Client::send`], reading the answer with `read`.
    fn send_with<T>(
        &self,
        kind: TokenKind,
        endpoint: &str,
        build: impl Fn(&RestClient) -> RequestBuilder<'_>,
        read: impl Fn(RequestBuilder<'_>, &str) -> Result<T, KassandroError>,
    ) -> Result<T, KassandroError> {
        let signer = Arc::new(TokenHeader {
            tokens: self.tokens.clone(),
            kind,
            sent: Mutex::new(None),
        });
        let api = self.api.clone().auth(Auth::Signed(signer.clone()));
        match read(build(&api), endpoint) {
            Err(KassandroError::Unauthorized { .. }) => {
                let refused = signer.sent().unwrap_or_default();
                // The renewed token is in the state, where the signer reads it.
                self.tokens.renew(kind, &refused)?;
                read(build(&api), endpoint)
            }
            other => other,
        }
    }
}

/// `path?k=v&…`, the values as they are.
fn with_query(path: &str, query: &[(&str, String)]) -> String {
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if pairs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use posbridge_plugin_api::{ConnectorError, HttpRequest, HttpResponse};
    use serde_json::{json, Value};

    use super::*;

    /// A token server: which tokens the key has, which are still valid, how it answers.
    #[derive(Default)]
    struct Server {
        /// The account token `gettoken` lists.
        listed: Option<String>,
        /// Tokens the data endpoints accept.
        valid: Vec<String>,
        created: usize,
        /// `gettoken` answers an error when nothing is listed (else `token: null`).
        error_when_none: bool,
        /// `createtoken` is refused this many times with 409, though nothing is listed yet
        /// (another client is creating it), and the token then appears.
        refuse_create: usize,
        /// The data endpoints refuse every token.
        refuse_all: bool,
    }

    fn token_of(req: &HttpRequest) -> Option<&str> {
        req.headers
            .iter()
            .find(|(k, _)| k == TOKEN_HEADER)
            .map(|(_, v)| v.as_str())
    }

    fn path(req: &HttpRequest) -> String {
        let rest = req.url.split("/v1.0/").nth(1).unwrap_or_default();
        rest.split('?').next().unwrap_or_default().to_string()
    }

    fn answer(s: &mut Server, req: &HttpRequest) -> HttpResponse {
        let token = token_of(req).map(str::to_string);
        match path(req).as_str() {
            "gettoken" => match &s.listed {
                None if s.error_when_none => {
                    json_response(404, &json!([{"error": true, "msg": "No token found."}]))
                }
                // The document's token answer, as a bare object.
                t => json_response(
                    200,
                    &json!({"error": false, "msg": "Your token.", "token": t}),
                ),
            },
            "createtoken" if s.refuse_create > 0 => {
                s.refuse_create -= 1;
                s.listed = Some("theirs".into());
                s.valid.push("theirs".into());
                json_response(
                    409,
                    &json!([{"error": true, "msg": "Token already exists."}]),
                )
            }
            "createtoken" if s.listed.is_some() => json_response(
                400,
                &json!([{"error": true, "msg": "Token already exists."}]),
            ),
            "createtoken" => {
                s.created += 1;
                let t = format!("t{}", s.created);
                s.listed = Some(t.clone());
                s.valid.push(t.clone());
                json_response(
                    200,
                    &json!([{"error": false, "msg": "Created.", "token": t}]),
                )
            }
            "deletetoken" => {
                s.listed = None;
                json_response(200, &json!([{"error": false, "msg": "Token deleted."}]))
            }
            _ if !s.refuse_all && token.is_some_and(|t| s.valid.contains(&t)) => {
                json_response(200, &json!([]))
            }
            _ => json_response(401, &json!({"error": true, "msg": "Token expired."})),
        }
    }

    fn client(server: Server) -> (Client, FakeHost, Arc<Mutex<Server>>) {
        let server = Arc::new(Mutex::new(server));
        let s = server.clone();
        let host = FakeHost::with_vendor(move |req| Ok(answer(&mut s.lock().unwrap(), req)));
        let cfg: Config = serde_json::from_value(json!({
            "base_url": "http://127.0.0.1:9", "api_key": "key"
        }))
        .unwrap();
        (Client::new(host.host(), cfg), host, server)
    }

    fn paths(host: &FakeHost) -> Vec<String> {
        host.requests().iter().map(path).collect()
    }

    fn registers(c: &Client) -> Result<Value, KassandroError> {
        c.get(TokenKind::Account, "cashregisters", &[], "cashregisters")
    }

    #[test]
    fn logs_in_when_gettoken_answers_that_there_is_none() {
        for error_when_none in [true, false] {
            let (c, host, _) = client(Server {
                error_when_none,
                ..Server::default()
            });
            registers(&c).unwrap();
            registers(&c).unwrap();
            assert_eq!(
                paths(&host),
                ["gettoken", "createtoken", "cashregisters", "cashregisters"]
            );
            assert_eq!(token_of(&host.requests()[2]), Some("t1"));
        }
    }

    #[test]
    fn takes_the_existing_token_when_createtoken_is_refused() {
        let (c, host, _) = client(Server {
            error_when_none: true,
            refuse_create: 1,
            ..Server::default()
        });
        registers(&c).unwrap();
        assert_eq!(
            paths(&host),
            ["gettoken", "createtoken", "gettoken", "cashregisters"]
        );
        assert_eq!(token_of(&host.requests()[3]), Some("theirs"));
    }

    #[test]
    fn an_expired_token_is_renewed_once_for_its_refusal() {
        let (c, host, server) = client(Server::default());
        registers(&c).unwrap();
        // t1 expires; the API still lists it, so it is deleted before a new one is made.
        server.lock().unwrap().valid.clear();
        registers(&c).unwrap();
        registers(&c).unwrap();
        assert_eq!(
            paths(&host)[3..],
            [
                "cashregisters",
                "gettoken",
                "deletetoken",
                "createtoken",
                "cashregisters",
                "cashregisters"
            ]
        );
        assert_eq!(server.lock().unwrap().created, 2);
        // Another client of the same state that still holds the refused t1 takes t2 as it is.
        let before = host.request_count();
        assert_eq!(
            c.tokens.renew(TokenKind::Account, "t1").unwrap(),
            "t2".to_string()
        );
        assert_eq!(host.request_count(), before, "no second renewal");
    }

    #[test]
    fn a_token_refused_again_after_renewal_is_an_auth_error() {
        let (c, host, server) = client(Server {
            refuse_all: true,
            ..Server::default()
        });
        let e: ConnectorError = registers(&c).unwrap_err().into();
        assert!(matches!(e, ConnectorError::Auth(_)), "{e:?}");
        assert_eq!(
            server.lock().unwrap().created,
            2,
            "renewed once: {:?}",
            paths(&host)
        );
        assert_eq!(
            paths(&host)
                .iter()
                .filter(|p| *p == "cashregisters")
                .count(),
            2
        );
    }
}
