//! Calls to Stripe through the SDK's REST toolkit: Bearer secret key, form-encoded bodies, the
//! `Idempotency-Key` header on writes; Stripe's error bodies are read by [`StripeErrors`].

use posbridge_plugin_api::rest::{Auth, RestClient};
use posbridge_plugin_api::Host;
use serde_json::Value;

use crate::config::Config;
use crate::error::{StripeError, StripeErrors};

/// Form fields in the order they are sent (`key[sub]=value`, as Stripe spells nested fields).
pub type Form = Vec<(String, String)>;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub body: Value,
    /// Stripe's `Idempotent-Replayed: true`: the stored answer of an earlier request.
    pub replayed: bool,
}

/// A Stripe API client for one configuration.
pub struct Client {
    api: RestClient,
    cfg: Config,
}

impl Client {
    pub fn new(host: Host, cfg: Config) -> Self {
        let api = RestClient::new(host, "stripe", &cfg.endpoint(""))
            .auth(Auth::Bearer(cfg.secret_key.clone()))
            .vendor_errors(StripeErrors);
        Self { api, cfg }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The REST client, for list pages read through the toolkit's pager.
    pub fn api(&self) -> &RestClient {
        &self.api
    }

    pub fn host(&self) -> &Host {
        self.api.host()
    }

    /// `GET /v1/{path}?{query}`; `endpoint` names the call in errors.
    pub fn get(&self, path: &str, query: &Form, endpoint: &str) -> Result<Value, StripeError> {
        Ok(self
            .api
            .get(path)
            .query_pairs(query)
            .endpoint(endpoint)
            .send_json()?)
    }

    /// `POST /v1/{path}` with a form body and an `Idempotency-Key`. Sent once: a dropped
    /// connection, a timeout or an answer Stripe marks retryable comes back as a typed error
    /// (`Transient`, `RateLimited` with `Retry-After`), and whoever retries — the host — sends
    /// the same key again, so Stripe replays or completes the first attempt instead of acting
    /// twice.
    pub fn post_idempotent(
        &self,
        path: &str,
        form: &Form,
        idempotency_key: &str,
        endpoint: &str,
    ) -> Result<Reply, StripeError> {
        let answer = self
            .api
            .post(path)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .endpoint(endpoint)
            .send()?;
        let replayed = answer
            .header("idempotent-replayed")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(Reply {
            body: answer.body,
            replayed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::rest::RestError;
    use posbridge_plugin_api::testing::{response, FakeHost};
    use posbridge_plugin_api::ConnectorError;

    fn answering(status: u16, headers: &[(&str, &str)], body: &str) -> (FakeHost, Client) {
        let resp = response(status, headers, body);
        let host = FakeHost::with_vendor(move |_| Ok(resp.clone()));
        let cfg: Config = serde_json::from_value(
            serde_json::json!({"base_url": "http://127.0.0.1:9", "secret_key": "sk_test_1"}),
        )
        .unwrap();
        let client = Client::new(host.host(), cfg);
        (host, client)
    }

    #[test]
    fn encodes_nested_fields_and_sends_the_key() {
        let (host, c) = answering(200, &[], r#"{"id":"pi_1"}"#);
        let form: Form = vec![
            ("metadata[sale_id]".into(), "demo:S1:R1:7".into()),
            ("description".into(), "Bon 7 & mehr".into()),
        ];
        c.post_idempotent("payment_intents", &form, "k1", "payment_intents")
            .unwrap();
        let sent = &host.requests()[0];
        assert_eq!(sent.url, "http://127.0.0.1:9/v1/payment_intents");
        assert_eq!(
            String::from_utf8_lossy(&sent.body),
            "metadata%5Bsale_id%5D=demo%3AS1%3AR1%3A7&description=Bon%207%20%26%20mehr"
        );
        for h in [
            ("Authorization", "Bearer sk_test_1"),
            ("Idempotency-Key", "k1"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ] {
            assert!(sent.headers.contains(&(h.0.into(), h.1.into())), "{h:?}");
        }
        c.get("charges", &vec![("limit".into(), "2".into())], "charges")
            .unwrap();
        assert_eq!(
            host.requests()[1].url,
            "http://127.0.0.1:9/v1/charges?limit=2"
        );
    }

    #[test]
    fn reads_successes_replays_and_errors() {
        let (_, c) = answering(200, &[("Idempotent-Replayed", "true")], r#"{"id":"pi_1"}"#);
        let ok = c
            .post_idempotent("payment_intents", &vec![], "k", "payment_intents")
            .unwrap();
        assert!(ok.replayed);
        assert_eq!(ok.body["id"], "pi_1");
        let (_, c) = answering(
            400,
            &[("Stripe-Should-Retry", "false")],
            r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}"#,
        );
        let e = c
            .post_idempotent("payment_intents", &vec![], "k", "payment_intents")
            .unwrap_err();
        assert!(
            matches!(&e, StripeError::Rest(RestError::Permanent { status: 400, message, .. }) if message.starts_with("idempotency_error"))
        );
        let (_, c) = answering(
            401,
            &[],
            r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}"#,
        );
        assert!(matches!(
            c.get("balance", &vec![], "balance"),
            Err(StripeError::Rest(RestError::Auth { message, .. })) if message.contains("Invalid API Key")
        ));
        let (_, c) = answering(502, &[], r#"{"error":"injected"}"#);
        let gateway = c.get("refunds", &vec![], "refunds").unwrap_err();
        assert!(matches!(
            ConnectorError::from(gateway),
            ConnectorError::Transient(_)
        ));
        let (_, c) = answering(200, &[], "{\"id\":");
        assert!(matches!(
            c.get("refunds", &vec![], "refunds"),
            Err(StripeError::Rest(RestError::Transient { context, .. })) if context.contains("refunds")
        ));
    }
}
