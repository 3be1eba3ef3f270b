//! Authenticated calls: the right token in the `kassandro-token` header, renewed once when the
//! API refuses it.

use posbridge_plugin_api::{Host, HttpRequest};
use serde_json::Value;

use crate::auth::{TokenKind, Tokens};
use crate::config::Config;
use crate::error::KassandroError;
use crate::http::{call_json, TOKEN_HEADER};

/// A Kassandro API client for one configuration.
pub struct Client {
    host: Host,
    cfg: Config,
    tokens: Tokens,
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        let tokens = Tokens::new(host.clone(), cfg.clone());
        Self { host, cfg, tokens }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// `GET {base}/v1.0/{path_and_query}` with a token of `kind`; `endpoint` names it in errors.
    pub fn get(
        &self,
        kind: TokenKind,
        path_and_query: &str,
        endpoint: &str,
    ) -> Result<Value, KassandroError> {
        let url = self.cfg.endpoint(path_and_query);
        self.send(kind, endpoint, || HttpRequest::get(url.clone()))
    }

    /// Sends the request `build` makes, with a token of `kind`. A refused token is renewed once
    /// (the cached one may have been deleted); a second refusal is returned.
    pub fn send(
        &self,
        kind: TokenKind,
        endpoint: &str,
        build: impl Fn() -> HttpRequest,
    ) -> Result<Value, KassandroError> {
        let token = self.tokens.get(kind)?;
        match call_json(&self.host, build().header(TOKEN_HEADER, token), endpoint) {
            Err(KassandroError::Unauthorized { .. }) => {
                let token = self.tokens.renew(kind)?;
                call_json(&self.host, build().header(TOKEN_HEADER, token), endpoint)
            }
            other => other,
        }
    }
}
