//! Account and cash-register tokens: one of each per API key (document), so an existing token
//! is reused — cached in the host's plugin state, else looked up with `gettoken` — and only
//! created with `createtoken` when there is none. When two clients of the same key both find
//! none and both create, the loser's `createtoken` is refused; it then takes the winner's token
//! from `gettoken`. A token the API refuses is renewed once per refusal: a call that finds a
//! token in the state other than the one refused takes that one (another call renewed it), and
//! a token `gettoken` still lists after the API refused it is deleted before a new one is made.

use posbridge_plugin_api::rest::RestClient;
use posbridge_plugin_api::{ConnectorError, Host};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{Config, UntypedToken};
use crate::error::KassandroError;
use crate::http::{send, TOKEN_HEADER};

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
    /// The API without credentials: the token endpoints take the key in the query.
    api: RestClient,
    cfg: Config,
}

/// What `gettoken` reports for the key.
#[derive(Debug, Default, PartialEq)]
struct ExistingTokens {
    account: Option<String>,
    cash_register: Option<String>,
    cash_register_id: Option<u64>,
    /// A `token` without a type (the document's token answer shape).
    untyped: Option<String>,
}

impl Tokens {
    pub fn new(api: RestClient, cfg: Config) -> Self {
        Self { api, cfg }
    }

    fn host(&self) -> &Host {
        self.api.host()
    }

    /// A token of this kind: the cached one, else an existing or new one from the API.
    pub fn get(&self, kind: TokenKind) -> Result<String, ConnectorError> {
        match self.host().state_get(&self.state_key(kind)) {
            Some(t) if !t.is_empty() => Ok(t),
            _ => self.acquire(kind, None),
        }
    }

    /// A token to use instead of `refused`, which the API just refused (expired or deleted).
    /// When the state already holds another one, an earlier call renewed it: that one is used
    /// and nothing is asked, so one refusal costs one renewal.
    pub fn renew(&self, kind: TokenKind, refused: &str) -> Result<String, ConnectorError> {
        let key = self.state_key(kind);
        if let Some(t) = self
            .host()
            .state_get(&key)
            .filter(|t| !t.is_empty() && t != refused)
        {
            return Ok(t);
        }
        self.host().state_put(&key, "");
        self.acquire(kind, Some(refused))
    }

    fn state_key(&self, kind: TokenKind) -> String {
        // Keyed by a fingerprint of the API key so that a changed key never reuses a token.
        let fp = hex::encode(Sha256::digest(self.cfg.api_key.as_bytes()));
        match kind {
            TokenKind::Account => format!("token:account:{}", &fp[..16]),
            TokenKind::CashRegister(id) => format!("token:cashregister:{id}:{}", &fp[..16]),
        }
    }

    fn acquire(&self, kind: TokenKind, refused: Option<&str>) -> Result<String, ConnectorError> {
        let existing = self.existing()?;
        let listed = existing.token_for(kind, self.cfg.untyped_token);
        let token = match listed.clone().filter(|t| Some(t.as_str()) != refused) {
            Some(t) => t,
            None => {
                if let Some(stale) = listed {
                    // Refused but still listed: only one token per kind, so it must go first.
                    self.delete(&stale)?;
                }
                let params = match kind {
                    TokenKind::Account => vec![("type", "account".to_string())],
                    TokenKind::CashRegister(id) => {
                        if let Some(other) = existing.other_register_token(id) {
                            // Only one cash-register token per key: log the other register out.
                            self.delete(&other)?;
                        }
                        vec![
                            ("type", "cashregister".to_string()),
                            ("cashregisterid", id.to_string()),
                        ]
                    }
                };
                self.create_or_take(kind, &params, refused)?
            }
        };
        self.host().state_put(&self.state_key(kind), &token);
        Ok(token)
    }

    /// Creates the token; when the API refuses because another client (e.g. a second pipeline
    /// with the same key, started at the same time) created it since our `gettoken`, takes that
    /// one. Any refusal is checked this way, whatever its wording or status (other than 401/403,
    /// a refused key), so the vendor's message text does not matter; a refusal with no token
    /// behind it stays an `Auth` error.
    fn create_or_take(
        &self,
        kind: TokenKind,
        params: &[(&str, String)],
        refused: Option<&str>,
    ) -> Result<String, ConnectorError> {
        match self.create(params) {
            Ok(token) => Ok(token),
            Err(refusal @ KassandroError::Refused { .. }) => {
                match self
                    .existing()?
                    .token_for(kind, self.cfg.untyped_token)
                    .filter(|t| Some(t.as_str()) != refused)
                {
                    Some(token) => Ok(token),
                    None => Err(auth_error(refusal)),
                }
            }
            Err(e) => Err(auth_error(e)),
        }
    }

    /// The key's tokens. An error answer other than 401/403 (a refused key) means the key has
    /// none yet: the document leaves `gettoken`'s answer without a token open.
    fn existing(&self) -> Result<ExistingTokens, ConnectorError> {
        let req = self.api.get("gettoken").query("key", &self.cfg.api_key);
        match send(req, "gettoken") {
            Ok(body) => Ok(parse_existing(&body)),
            Err(KassandroError::Refused { msg, .. }) => {
                self.host()
                    .debug(&format!("kassandro: gettoken lists no token ({msg})"));
                Ok(ExistingTokens::default())
            }
            Err(e) => Err(auth_error(e)),
        }
    }

    fn create(&self, params: &[(&str, String)]) -> Result<String, KassandroError> {
        let req = self
            .api
            .get("createtoken")
            .query_pairs(params)
            .query("key", &self.cfg.api_key);
        let body = send(req, "createtoken")?;
        token_objects(&body)
            .into_iter()
            .find_map(|o| text(o, "token"))
            .ok_or_else(|| KassandroError::bad_field("createtoken", "[0].token", "a string"))
    }

    fn delete(&self, token: &str) -> Result<(), ConnectorError> {
        let req = self.api.get("deletetoken").header(TOKEN_HEADER, token);
        match send(req, "deletetoken") {
            Ok(_) => Ok(()),
            // Another client deleted it first, or the API no longer knows it: gone either way.
            Err(KassandroError::Unauthorized { .. } | KassandroError::Refused { .. }) => Ok(()),
            Err(e) => Err(auth_error(e)),
        }
    }
}

impl ExistingTokens {
    /// The existing token of this kind; a cash-register token only if it is for that register
    /// (or names no register). An untyped token counts as the configured kind.
    fn token_for(&self, kind: TokenKind, untyped: UntypedToken) -> Option<String> {
        match kind {
            TokenKind::Account => self.account.clone().or_else(|| {
                self.untyped
                    .clone()
                    .filter(|_| untyped == UntypedToken::Account)
            }),
            TokenKind::CashRegister(id) => self
                .cash_register
                .clone()
                .filter(|_| self.cash_register_id.is_none_or(|r| r == id))
                .or_else(|| {
                    self.untyped
                        .clone()
                        .filter(|_| untyped == UntypedToken::CashRegister)
                }),
        }
    }

    /// The cash-register token of another register than `id`, which must be deleted first.
    fn other_register_token(&self, id: u64) -> Option<String> {
        self.cash_register
            .clone()
            .filter(|_| self.cash_register_id.is_some_and(|r| r != id))
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

/// The objects of a token answer: the document draws an array of one; a bare object (or an
/// array of several, one per token) is read the same way.
fn token_objects(body: &Value) -> Vec<&Map<String, Value>> {
    match body {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => vec![],
    }
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn register_id(obj: &Map<String, Value>) -> Option<u64> {
    ["cashRegisterId", "cashregisterid"]
        .iter()
        .filter_map(|k| obj.get(*k))
        .find_map(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
}

/// Reads `gettoken`'s answer in either shape: named tokens (`accountToken`,
/// `cashRegisterToken`, `cashRegisterId`), or the document's token answer (`token`, with a
/// `type` of `account` / `cashregister` when it says which).
fn parse_existing(body: &Value) -> ExistingTokens {
    let mut got = ExistingTokens::default();
    for o in token_objects(body) {
        if o.get("error").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = text(o, "accountToken") {
            got.account = Some(t);
        }
        if let Some(t) = text(o, "cashRegisterToken") {
            got.cash_register = Some(t);
            got.cash_register_id = register_id(o);
        }
        let Some(t) = text(o, "token") else { continue };
        let kind = text(o, "type").map(|k| k.to_ascii_lowercase().replace(['_', '-'], ""));
        match kind.as_deref() {
            Some("account") => got.account = Some(t),
            Some("cashregister") => {
                got.cash_register = Some(t);
                got.cash_register_id = register_id(o);
            }
            _ => got.untyped = Some(t),
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_gettoken_answers_in_every_shape() {
        let got = parse_existing(
            &json!([{"error": false, "msg": "Tokens found.", "accountToken": "a1",
            "cashRegisterToken": null, "cashRegisterId": null}]),
        );
        assert_eq!(
            got,
            ExistingTokens {
                account: Some("a1".into()),
                ..Default::default()
            }
        );
        let got = parse_existing(&json!({"error": false, "accountToken": null,
            "cashRegisterToken": "c2", "cashRegisterId": 2}));
        assert_eq!(got.cash_register.as_deref(), Some("c2"));
        assert_eq!(got.cash_register_id, Some(2));
        // The document's token answer: array of one, or a bare object.
        for body in [
            json!([{"error": false, "msg": "Your token.", "token": "t1"}]),
            json!({"error": false, "msg": "Your token.", "token": "t1"}),
        ] {
            assert_eq!(parse_existing(&body).untyped.as_deref(), Some("t1"));
        }
        let typed = parse_existing(&json!([
            {"error": false, "token": "a", "type": "account"},
            {"error": false, "token": "c", "type": "cashRegister", "cashregisterid": "3"}]));
        assert_eq!(
            (
                typed.account.as_deref(),
                typed.cash_register.as_deref(),
                typed.cash_register_id
            ),
            (Some("a"), Some("c"), Some(3))
        );
        assert_eq!(
            parse_existing(&json!([{"error": true, "msg": "No token."}])),
            ExistingTokens::default()
        );
        assert_eq!(
            parse_existing(&json!({"tokens": []})),
            ExistingTokens::default()
        );
    }

    #[test]
    fn a_cash_register_token_counts_only_for_its_register() {
        let existing = ExistingTokens {
            account: Some("a1".into()),
            cash_register: Some("c2".into()),
            cash_register_id: Some(2),
            untyped: None,
        };
        let acc = UntypedToken::Account;
        assert_eq!(
            existing.token_for(TokenKind::Account, acc).as_deref(),
            Some("a1")
        );
        assert_eq!(
            existing
                .token_for(TokenKind::CashRegister(2), acc)
                .as_deref(),
            Some("c2")
        );
        assert_eq!(existing.token_for(TokenKind::CashRegister(3), acc), None);
        assert_eq!(existing.other_register_token(3).as_deref(), Some("c2"));
        assert_eq!(existing.other_register_token(2), None);
        assert_eq!(
            ExistingTokens::default().token_for(TokenKind::Account, acc),
            None
        );
    }

    #[test]
    fn an_untyped_token_counts_as_the_configured_kind() {
        let existing = ExistingTokens {
            untyped: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            existing
                .token_for(TokenKind::Account, UntypedToken::Account)
                .as_deref(),
            Some("t")
        );
        assert_eq!(
            existing.token_for(TokenKind::CashRegister(1), UntypedToken::Account),
            None
        );
        assert_eq!(
            existing
                .token_for(TokenKind::CashRegister(1), UntypedToken::CashRegister)
                .as_deref(),
            Some("t")
        );
        assert_eq!(
            existing.token_for(TokenKind::Account, UntypedToken::CashRegister),
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
