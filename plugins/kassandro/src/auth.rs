//! Account and cash-register tokens: one of each per API key (document), so an existing token
//! is reused — cached in the host's plugin state, else looked up with `gettoken` — and only
//! created with `createtoken` when there is none.

use posbridge_plugin_api::{ConnectorError, Host, HttpRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{envelope, KassandroError};
use crate::http::{call_json, encode_query_value, TOKEN_HEADER};

/// Which token a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// For the account endpoints (registers, articles, receipts of all registers).
    Account,
    /// For the endpoints of one register, above all creating receipts.
    CashRegister(u64),
}

/// Acquires and caches tokens for one API key.
pub struct Tokens {
    host: Host,
    cfg: Config,
}

/// What `gettoken` reports for the key.
#[derive(Debug, Default, PartialEq)]
struct ExistingTokens {
    account: Option<String>,
    cash_register: Option<String>,
    cash_register_id: Option<u64>,
}

impl Tokens {
    pub fn new(host: Host, cfg: Config) -> Self {
        Self { host, cfg }
    }

    /// A token of this kind: the cached one, else an existing or new one from the API.
    pub fn get(&self, kind: TokenKind) -> Result<String, ConnectorError> {
        match self.host.state_get(&self.state_key(kind)) {
            Some(t) if !t.is_empty() => Ok(t),
            _ => self.acquire(kind),
        }
    }

    /// Forgets a token the API refused and acquires it again (at most once per refusal).
    pub fn renew(&self, kind: TokenKind) -> Result<String, ConnectorError> {
        self.host.state_put(&self.state_key(kind), "");
        self.acquire(kind)
    }

    fn state_key(&self, kind: TokenKind) -> String {
        // Keyed by a fingerprint of the API key so that a changed key never reuses a token.
        let fp = hex::encode(Sha256::digest(self.cfg.api_key.as_bytes()));
        match kind {
            TokenKind::Account => format!("token:account:{}", &fp[..16]),
            TokenKind::CashRegister(id) => format!("token:cashregister:{id}:{}", &fp[..16]),
        }
    }

    fn acquire(&self, kind: TokenKind) -> Result<String, ConnectorError> {
        let existing = self.existing()?;
        let token = match kind {
            TokenKind::Account => match existing.account {
                Some(t) => t,
                None => self.create("type=account")?,
            },
            TokenKind::CashRegister(id) => {
                match (existing.cash_register, existing.cash_register_id) {
                    (Some(t), Some(other)) if other == id => t,
                    (Some(t), _) => {
                        // Only one cash-register token per key: log the other register out first.
                        self.delete(&t)?;
                        self.create(&format!("type=cashregister&cashregisterid={id}"))?
                    }
                    (None, _) => self.create(&format!("type=cashregister&cashregisterid={id}"))?,
                }
            }
        };
        self.host.state_put(&self.state_key(kind), &token);
        Ok(token)
    }

    fn key_param(&self) -> String {
        encode_query_value(&self.cfg.api_key)
    }

    fn existing(&self) -> Result<ExistingTokens, ConnectorError> {
        let url = format!("{}?key={}", self.cfg.endpoint("gettoken"), self.key_param());
        let body = call_json(&self.host, HttpRequest::get(url), "gettoken").map_err(auth_error)?;
        parse_existing(&body).map_err(ConnectorError::from)
    }

    fn create(&self, params: &str) -> Result<String, ConnectorError> {
        let url = format!(
            "{}?{params}&key={}",
            self.cfg.endpoint("createtoken"),
            self.key_param()
        );
        let body =
            call_json(&self.host, HttpRequest::get(url), "createtoken").map_err(auth_error)?;
        envelope(&body)
            .and_then(|o| o.get("token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| KassandroError::bad_field("createtoken", "[0].token", "a string").into())
    }

    fn delete(&self, token: &str) -> Result<(), ConnectorError> {
        let req = HttpRequest::get(self.cfg.endpoint("deletetoken")).header(TOKEN_HEADER, token);
        call_json(&self.host, req, "deletetoken").map_err(auth_error)?;
        Ok(())
    }
}

/// A refusal by a token endpoint means the API key is not accepted: `Auth`, never retried.
fn auth_error(e: KassandroError) -> ConnectorError {
    match e {
        KassandroError::Unauthorized { endpoint, msg }
        | KassandroError::Refused { endpoint, msg, .. } => ConnectorError::Auth(format!(
            "kassandro: the API key was refused by {endpoint}: {msg}"
        )),
        other => other.into(),
    }
}

fn parse_existing(body: &Value) -> Result<ExistingTokens, KassandroError> {
    let obj = envelope(body)
        .ok_or_else(|| KassandroError::bad_field("gettoken", "[0].error", "a boolean"))?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(ExistingTokens {
        account: text("accountToken"),
        cash_register: text("cashRegisterToken"),
        cash_register_id: obj.get("cashRegisterId").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_gettoken_answers() {
        let got = parse_existing(
            &json!([{"error": false, "msg": "Tokens found.", "accountToken": "a1",
            "cashRegisterToken": null, "cashRegisterId": null}]),
        )
        .unwrap();
        assert_eq!(
            got,
            ExistingTokens {
                account: Some("a1".into()),
                ..Default::default()
            }
        );
        let got = parse_existing(&json!([{"error": false, "accountToken": null,
            "cashRegisterToken": "c2", "cashRegisterId": 2}]))
        .unwrap();
        assert_eq!(got.cash_register.as_deref(), Some("c2"));
        assert_eq!(got.cash_register_id, Some(2));
        assert!(parse_existing(&json!({"tokens": []})).is_err());
    }

    #[test]
    fn token_endpoint_refusals_are_auth_errors() {
        let e = auth_error(KassandroError::Refused {
            endpoint: "gettoken".into(),
            status: 400,
            msg: "Invalid API key.".into(),
        });
        assert!(
            matches!(&e, ConnectorError::Auth(m) if m.starts_with("kassandro:") && m.contains("Invalid API key."))
        );
        assert!(!e.is_retryable());
        let t = auth_error(KassandroError::Host(ConnectorError::Transient(
            "503".into(),
        )));
        assert!(t.is_retryable());
    }
}
