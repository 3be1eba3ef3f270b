//! Account and cash-register tokens: one of each per API key (document), so an existing token
//! is reused — cached in the host's plugin state, else looked up with `gettoken` — and only
//! created with `createtoken` when there is none. When two clients of the same key both find
//! none and both create, the loser's `createtoken` is refused; it then takes the winner's token
//! from `gettoken`.

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
        let token = match (kind, existing.token_for(kind)) {
            (_, Some(t)) => t,
            (TokenKind::Account, None) => self.create_or_take(kind, "type=account")?,
            (TokenKind::CashRegister(id), None) => {
                if let Some(other) = existing.cash_register {
                    // Only one cash-register token per key: log the other register out first.
                    self.delete(&other)?;
                }
                self.create_or_take(kind, &format!("type=cashregister&cashregisterid={id}"))?
            }
        };
        self.host.state_put(&self.state_key(kind), &token);
        Ok(token)
    }

    /// Creates the token; when the API refuses because another client (e.g. a second pipeline
    /// with the same key, started at the same time) created it since our `gettoken`, takes that
    /// one. Any refusal is checked this way, whatever its wording, so the vendor's message text
    /// does not matter; a refusal with no token behind it stays an `Auth` error.
    fn create_or_take(&self, kind: TokenKind, params: &str) -> Result<String, ConnectorError> {
        match self.create(params) {
            Ok(token) => Ok(token),
            Err(refusal @ KassandroError::Refused { .. }) => {
                match self.existing()?.token_for(kind) {
                    Some(token) => Ok(token),
                    None => Err(auth_error(refusal)),
                }
            }
            Err(e) => Err(auth_error(e)),
        }
    }

    fn key_param(&self) -> String {
        encode_query_value(&self.cfg.api_key)
    }

    fn existing(&self) -> Result<ExistingTokens, ConnectorError> {
        let url = format!("{}?key={}", self.cfg.endpoint("gettoken"), self.key_param());
        let body = call_json(&self.host, HttpRequest::get(url), "gettoken").map_err(auth_error)?;
        parse_existing(&body).map_err(ConnectorError::from)
    }

    fn create(&self, params: &str) -> Result<String, KassandroError> {
        let url = format!(
            "{}?{params}&key={}",
            self.cfg.endpoint("createtoken"),
            self.key_param()
        );
        let body = call_json(&self.host, HttpRequest::get(url), "createtoken")?;
        envelope(&body)
            .and_then(|o| o.get("token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| KassandroError::bad_field("createtoken", "[0].token", "a string"))
    }

    fn delete(&self, token: &str) -> Result<(), ConnectorError> {
        let req = HttpRequest::get(self.cfg.endpoint("deletetoken")).header(TOKEN_HEADER, token);
        match call_json(&self.host, req, "deletetoken") {
            Ok(_) => Ok(()),
            // Another client deleted it first: it is gone either way.
            Err(KassandroError::Unauthorized { .. }) => Ok(()),
            Err(e) => Err(auth_error(e)),
        }
    }
}

impl ExistingTokens {
    /// The existing token of this kind; a cash-register token only if it is for that register.
    fn token_for(&self, kind: TokenKind) -> Option<String> {
        match kind {
            TokenKind::Account => self.account.clone(),
            TokenKind::CashRegister(id) => self
                .cash_register
                .clone()
                .filter(|_| self.cash_register_id == Some(id)),
        }
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
    fn a_cash_register_token_counts_only_for_its_register() {
        let existing = ExistingTokens {
            account: Some("a1".into()),
            cash_register: Some("c2".into()),
            cash_register_id: Some(2),
        };
        assert_eq!(
            existing.token_for(TokenKind::Account).as_deref(),
            Some("a1")
        );
        assert_eq!(
            existing.token_for(TokenKind::CashRegister(2)).as_deref(),
            Some("c2")
        );
        assert_eq!(existing.token_for(TokenKind::CashRegister(3)), None);
        assert_eq!(
            ExistingTokens::default().token_for(TokenKind::Account),
            None
        );
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
