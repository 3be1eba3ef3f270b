//! The Stripe API simulator, as `docs/connectors/stripe.md` describes it.
//!
//! It keeps an account's PaymentIntents, Charges, Refunds, Payouts and BalanceTransactions as
//! Stripe JSON objects (amounts as integers in the currency's smallest unit, lower-case
//! currencies, Unix `created`), seeded from the generated German sales: every card payment of
//! a sale becomes a succeeded PaymentIntent with its Charge (every seventh is half refunded),
//! and every business day is paid out the next morning.
//!
//! Enforced to the letter: `Authorization: Bearer <secret key>`, form-encoded POST bodies,
//! list paging with `limit` (1–100) + `starting_after` + `has_more`, `created[gt|gte|lt|lte]`
//! filters, unknown parameters refused, Stripe's error body `{error: {type, code, message,
//! param}}`, and idempotency: a POST with an `Idempotency-Key` that was seen before with the
//! same path and parameters gets the stored first answer again (even a 500) with
//! `Idempotent-Replayed: true`; with other parameters it gets 400 `idempotency_error`.
//! Validation failures are not stored (Stripe: the endpoint never started executing).
//!
//! Test knobs (Rust API): [`StripeSimulator::drop_responses_after_processing`] (the request is
//! executed and stored, then the connection is closed without an answer — the "charged but
//! the client never heard" case), [`StripeSimulator::fail_next_posts_with_500`] (a stored 500),
//! and [`StripeSimulator::sign_webhook`] / `GET /__stripe/events` for signed webhook events.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use chrono::Utc;
use posbridge_plugin_api::model::{Decimal, Sale, SaleKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::faults::DropConnection;
use crate::generator::Country;
use crate::registry::SandboxOptions;
use crate::server::Simulator;

/// The registry name.
pub const VENDOR: &str = "stripe";
/// The secret key accepted when the options name none.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_posbridgeSandbox0000";
/// The webhook signing secret of the simulated endpoint.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_posbridgeSandbox0000";
/// The largest `limit` of a list (Stripe: 1 to 100, default 10).
pub const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 10;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

// ---------------------------------------------------------------------------------------------
// Money and small helpers.

/// Stripe's decimals per currency (its own table: ISK stays two-decimal, MGA is zero-decimal).
fn stripe_decimals(currency: &str) -> u32 {
    const ZERO: &[&str] = &[
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    const THREE: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];
    let c = currency.to_ascii_lowercase();
    if ZERO.contains(&c.as_str()) {
        0
    } else if THREE.contains(&c.as_str()) {
        3
    } else {
        2
    }
}

/// An amount in Stripe's smallest unit, for messages: `60.00 EUR`.
fn show(minor: i64, currency: &str) -> String {
    format!(
        "{} {}",
        Decimal::new(minor, stripe_decimals(currency)),
        currency.to_ascii_uppercase()
    )
}

/// A decimal (exact) in the currency's smallest unit; `None` if it does not fit exactly.
fn to_minor(d: Decimal, currency: &str) -> Option<i64> {
    let scaled = d * Decimal::from(10i64.pow(stripe_decimals(currency)));
    (scaled.fract().is_zero())
        .then(|| i64::try_from(scaled.trunc()).ok())
        .flatten()
}

/// The simulated processing fee: 1.4 % + 25 minor units, rounded half up (integer arithmetic).
fn fee_of(amount: i64) -> i64 {
    (amount * 14 + 500) / 1000 + 25
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104), built on `sha2`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `Stripe-Signature` header Stripe sends with `payload` at Unix time `t`.
pub fn signature_header(secret: &str, t: i64, payload: &str) -> String {
    let mac = hmac_sha256(secret.as_bytes(), format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex(&mac))
}

/// Decodes `application/x-www-form-urlencoded` text into its pairs, in order.
fn parse_form(text: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let pair = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(pair, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Errors in Stripe's shape.

/// A Stripe error answer.
#[derive(Clone, Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
    decline_code: Option<&'static str>,
    should_retry: Option<bool>,
    extra: Option<Box<(&'static str, Value)>>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: param.map(str::to_string),
            decline_code: None,
            should_retry: None,
            extra: None,
        }
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn missing(param: &str) -> Self {
        Self::invalid(format!("Missing required param: {param}."), Some(param))
            .code("parameter_missing")
    }

    fn unknown(param: &str) -> Self {
        Self::invalid(format!("Received unknown parameter: {param}"), Some(param))
            .code("parameter_unknown")
    }

    fn no_such(object: &str, id: &str, param: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(format!("No such {object}: '{id}'"), Some(param))
        }
        .code("resource_missing")
    }

    fn body(&self) -> Value {
        let mut e = json!({"type": self.kind, "message": self.message});
        if let Some(c) = self.code {
            e["code"] = json!(c);
        }
        if let Some(p) = &self.param {
            e["param"] = json!(p);
        }
        if let Some(d) = self.decline_code {
            e["decline_code"] = json!(d);
        }
        if let Some(extra) = &self.extra {
            e[extra.0] = extra.1.clone();
        }
        json!({ "error": e })
    }

    fn answer(&self) -> Answer {
        Answer {
            status: self.status,
            body: self.body(),
            should_retry: self.should_retry,
        }
    }
}

/// A status and JSON body, storable for idempotent replays.
#[derive(Clone, Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    body: Value,
    should_retry: Option<bool>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            should_retry: None,
        }
    }

    fn into_response(self, replayed: bool, request_no: u64) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("req_sbx{request_no:012}")) {
            h.insert("request-id", v);
        }
        if let Some(retry) = self.should_retry {
            h.insert(
                "stripe-should-retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        if replayed {
            h.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        r
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        e.answer()
    }
}

// ---------------------------------------------------------------------------------------------
// The account.

/// What happened to one POST, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostRecord {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub outcome: PostOutcome,
    pub status: u16,
}

/// How the simulator treated a POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// Executed (and stored under its key, if any).
    Executed,
    /// The stored answer of an earlier request with the same key and parameters.
    Replayed,
    /// Refused before executing (validation, idempotency conflict); nothing stored.
    Refused,
}

/// A webhook delivery as Stripe would send it: the raw body and its `Stripe-Signature`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignedWebhook {
    pub payload: String,
    pub signature_header: String,
}

#[derive(Clone, Debug)]
struct Stored {
    path: String,
    params: Vec<(String, String)>,
    answer: Answer,
}

#[derive(Default)]
struct Account {
    /// Each list in creation order; `seq` breaks ties of `created`.
    payment_intents: Vec<Value>,
    charges: Vec<Value>,
    refunds: Vec<Value>,
    payouts: Vec<Value>,
    balance_transactions: Vec<Value>,
    events: Vec<Value>,
    idempotency: HashMap<String, Stored>,
    posts: Vec<PostRecord>,
    next_id: u64,
    drop_after_processing: u32,
    fail_with_500: u32,
}

impl Account {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_sbx{:012}", self.next_id)
    }

    fn list(&self, kind: ObjectKind) -> &Vec<Value> {
        match kind {
            ObjectKind::PaymentIntent => &self.payment_intents,
            ObjectKind::Charge => &self.charges,
            ObjectKind::Refund => &self.refunds,
            ObjectKind::Payout => &self.payouts,
            ObjectKind::BalanceTransaction => &self.balance_transactions,
        }
    }

    fn find(&self, kind: ObjectKind, id: &str) -> Option<usize> {
        self.list(kind).iter().position(|o| o["id"] == id)
    }

    fn event(&mut self, kind: &str, object: Value, created: i64) {
        let id = self.id("evt");
        self.events.push(json!({
            "id": id, "object": "event", "api_version": "2024-06-20", "created": created,
            "type": kind, "livemode": false, "pending_webhooks": 1,
            "data": {"object": object},
        }));
    }

    fn balance_tx(
        &mut self,
        kind: &str,
        amount: i64,
        fee: i64,
        currency: &str,
        source: &str,
        created: i64,
    ) -> String {
        let id = self.id("txn");
        self.balance_transactions.push(json!({
            "id": id, "object": "balance_transaction", "type": kind, "amount": amount,
            "fee": fee, "net": amount - fee, "currency": currency, "created": created,
            "available_on": created + 2 * 86_400, "source": source, "status": "available",
            "reporting_category": kind,
        }));
        id
    }

    /// A succeeded PaymentIntent with its Charge and balance transaction.
    fn succeed(
        &mut self,
        amount: i64,
        currency: &str,
        pm: &str,
        description: Option<String>,
        metadata: Value,
        created: i64,
    ) -> usize {
        let pi_id = self.id("pi");
        let ch_id = self.id("ch");
        let fee = fee_of(amount);
        let txn = self.balance_tx("charge", amount, fee, currency, &ch_id, created);
        self.charges.push(json!({
            "id": ch_id, "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": 0, "refunded": false, "captured": true, "paid": true,
            "status": "succeeded", "currency": currency, "created": created,
            "payment_intent": pi_id, "payment_method": pm, "balance_transaction": txn,
            "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
            "description": description, "metadata": metadata,
        }));
        self.payment_intents.push(json!({
            "id": pi_id, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "currency": currency, "status": "succeeded", "created": created,
            "payment_method": pm, "payment_method_types": ["card"], "latest_charge": ch_id,
            "capture_method": "automatic", "confirmation_method": "automatic",
            "description": description, "metadata": metadata, "livemode": false,
        }));
        let pi = self.payment_intents.last().cloned().unwrap_or_default();
        self.event("payment_intent.succeeded", pi, created);
        self.payment_intents.len() - 1
    }

    /// Refunds `amount` of the charge at `charge_idx`.
    fn refund(
        &mut self,
        charge_idx: usize,
        amount: i64,
        reason: Option<String>,
        metadata: Value,
        created: i64,
    ) -> Value {
        let re_id = self.id("re");
        let (ch_id, pi_id, currency) = {
            let ch = &self.charges[charge_idx];
            (
                ch["id"].clone(),
                ch["payment_intent"].clone(),
                ch["currency"].as_str().unwrap_or("eur").to_string(),
            )
        };
        let txn = self.balance_tx("refund", -amount, 0, &currency, &re_id, created);
        let ch = &mut self.charges[charge_idx];
        let refunded = ch["amount_refunded"].as_i64().unwrap_or(0) + amount;
        ch["amount_refunded"] = json!(refunded);
        ch["refunded"] = json!(refunded == ch["amount"].as_i64().unwrap_or(0));
        let charge = ch.clone();
        let refund = json!({
            "id": re_id, "object": "refund", "amount": amount, "currency": currency,
            "charge": ch_id, "payment_intent": pi_id, "status": "succeeded", "reason": reason,
            "created": created, "balance_transaction": txn, "metadata": metadata,
        });
        self.refunds.push(refund.clone());
        self.event("charge.refunded", charge, created);
        refund
    }

    /// Pays out the net of every balance transaction of each UTC day (before `until`) that
    /// is not paid out yet, the next morning at 06:00 UTC.
    fn pay_out_days(&mut self, until: i64) {
        let paid_through = self
            .payouts
            .iter()
            .filter_map(|p| p["metadata"]["through"].as_i64())
            .max()
            .unwrap_or(i64::MIN);
        let mut per_day: BTreeMap<(i64, String), i64> = BTreeMap::new();
        for t in &self.balance_transactions {
            let created = t["created"].as_i64().unwrap_or(0);
            let day = created.div_euclid(86_400) * 86_400;
            if t["type"] != "payout" && day > paid_through && day + 86_400 <= until {
                *per_day
                    .entry((day, t["currency"].as_str().unwrap_or("eur").to_string()))
                    .or_default() += t["net"].as_i64().unwrap_or(0);
            }
        }
        for ((day, currency), net) in per_day {
            if net <= 0 {
                continue;
            }
            let created = day + 86_400 + 6 * 3600;
            let id = self.id("po");
            self.balance_tx("payout", -net, 0, &currency, &id, created);
            self.payouts.push(json!({
                "id": id, "object": "payout", "amount": net, "currency": currency,
                "status": "paid", "created": created, "arrival_date": day + 3 * 86_400,
                "method": "standard", "type": "bank_account", "metadata": {"through": day},
            }));
        }
    }

    fn add_sales(&mut self, sales: &[Sale]) {
        let mut last = i64::MIN;
        for s in sales {
            if s.kind != SaleKind::Sale {
                continue;
            }
            for p in s.payments.iter().filter(|p| p.method == "card") {
                let currency = p.currency.to_ascii_lowercase();
                let Some(amount) = to_minor(p.amount, &currency).filter(|a| *a > 0) else {
                    continue;
                };
                let created = s.timestamp.timestamp();
                last = last.max(created);
                let idx = self.succeed(
                    amount,
                    &currency,
                    "pm_card_visa",
                    Some(format!("{} {}", s.register_id, s.receipt_number)),
                    json!({"sale_id": s.id}),
                    created,
                );
                if idx % 7 == 6 {
                    let ch = self.charges.len() - 1;
                    self.refund(
                        ch,
                        amount / 2,
                        Some("requested_by_customer".into()),
                        json!({}),
                        created + 1800,
                    );
                }
            }
        }
        if last > i64::MIN {
            self.pay_out_days(last.div_euclid(86_400) * 86_400 + 86_400);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjectKind {
    PaymentIntent,
    Charge,
    Refund,
    Payout,
    BalanceTransaction,
}

impl ObjectKind {
    fn from_path(p: &str) -> Option<Self> {
        Some(match p {
            "payment_intents" => Self::PaymentIntent,
            "charges" => Self::Charge,
            "refunds" => Self::Refund,
            "payouts" => Self::Payout,
            "balance_transactions" => Self::BalanceTransaction,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::PaymentIntent => "payment_intent",
            Self::Charge => "charge",
            Self::Refund => "refund",
            Self::Payout => "payout",
            Self::BalanceTransaction => "balance_transaction",
        }
    }

    /// The list filters Stripe documents for this list, besides paging, `created` and `expand[]`.
    fn filters(self) -> &'static [&'static str] {
        match self {
            Self::PaymentIntent => &["customer"],
            Self::Charge => &["customer", "payment_intent", "transfer_group"],
            Self::Refund => &["charge", "payment_intent"],
            Self::Payout => &["status", "arrival_date", "destination"],
            Self::BalanceTransaction => &["type", "payout", "source", "currency"],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator.

/// The Stripe simulator.
pub struct StripeSimulator {
    /// Lists carry no `has_more` (variant): the connector must page on until a short page.
    without_has_more: bool,
    secret_key: String,
    webhook_secret: String,
    account: Mutex<Account>,
}

/// Builds the Stripe simulator from German generated data.
pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    Ok(Arc::new(StripeSimulator::from_options(opts)))
}

impl StripeSimulator {
    /// A simulator with this key and webhook secret, holding the card payments of `sales`.
    pub fn new(secret_key: &str, webhook_secret: &str, sales: &[Sale]) -> Self {
        let mut account = Account::default();
        account.add_sales(sales);
        Self {
            without_has_more: false,
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            account: Mutex::new(account),
        }
    }

    /// This simulator answering lists without `has_more`.
    pub fn without_has_more(mut self) -> Self {
        self.without_has_more = true;
        self
    }

    /// The simulator the registry builds for these options.
    pub fn from_options(opts: &SandboxOptions) -> Self {
        Self::new(
            opts.api_key.as_deref().unwrap_or(DEFAULT_SECRET_KEY),
            DEFAULT_WEBHOOK_SECRET,
            &opts.dataset(Country::De).sales,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// The stored PaymentIntents, oldest first (Stripe JSON).
    pub fn payment_intents(&self) -> Vec<Value> {
        self.lock().payment_intents.clone()
    }

    /// The stored Charges, oldest first: one per money movement from a card.
    pub fn charges(&self) -> Vec<Value> {
        self.lock().charges.clone()
    }

    pub fn refunds(&self) -> Vec<Value> {
        self.lock().refunds.clone()
    }

    pub fn payouts(&self) -> Vec<Value> {
        self.lock().payouts.clone()
    }

    pub fn balance_transactions(&self) -> Vec<Value> {
        self.lock().balance_transactions.clone()
    }

    /// The events so far (`payment_intent.succeeded`, `charge.refunded`), oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// Every POST so far and how it was treated.
    pub fn posts(&self) -> Vec<PostRecord> {
        self.lock().posts.clone()
    }

    /// The next `n` POSTs are executed and stored, then their connection is closed unanswered.
    pub fn drop_responses_after_processing(&self, n: u32) {
        self.lock().drop_after_processing = n;
    }

    /// The next `n` POSTs that pass validation fail with a 500 `api_error` that is stored under
    /// their `Idempotency-Key` (so a retry with the key gets the same 500 replayed).
    pub fn fail_next_posts_with_500(&self, n: u32) {
        self.lock().fail_with_500 = n;
    }

    /// Signs `payload` as Stripe would at Unix time `t`, with the endpoint's signing secret.
    pub fn sign_webhook(&self, payload: &str, t: i64) -> SignedWebhook {
        SignedWebhook {
            payload: payload.into(),
            signature_header: signature_header(&self.webhook_secret, t, payload),
        }
    }

    /// Every event, signed at time `t`.
    pub fn signed_events(&self, t: i64) -> Vec<SignedWebhook> {
        self.events()
            .iter()
            .map(|e| self.sign_webhook(&e.to_string(), t))
            .collect()
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let unauthorized = |m: String| ApiError {
            status: StatusCode::UNAUTHORIZED,
            ..ApiError::invalid(m, None)
        };
        let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized("You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".into()));
        };
        let key = auth.strip_prefix("Bearer ").unwrap_or("").trim();
        if key == self.secret_key {
            return Ok(());
        }
        let tail: String = key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(unauthorized(format!(
            "Invalid API Key provided: {}****{tail}",
            key.chars().take(8).collect::<String>()
        )))
    }

    fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        request_no: u64,
    ) -> Response {
        if let Err(e) = self.authorize(headers) {
            return e.answer().into_response(false, request_no);
        }
        let path = uri.path().trim_start_matches("/v1/").trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        let query = parse_form(uri.query().unwrap_or(""));
        let answer = match (method.as_str(), segments.as_slice()) {
            ("GET", ["balance"]) => self.balance(&query),
            ("GET", [list]) => match ObjectKind::from_path(list) {
                Some(kind) => self.list(kind, &query),
                None => Err(not_found(uri.path())),
            },
            ("GET", [list, id]) => match ObjectKind::from_path(list) {
                Some(kind) => self.retrieve(kind, id, &query),
                None => Err(not_found(uri.path())),
            },
            ("POST", ["payment_intents" | "refunds"]) => {
                return self.post(path, headers, body, request_no);
            }
            _ => Err(not_found(uri.path())),
        };
        answer
            .unwrap_or_else(Answer::from)
            .into_response(false, request_no)
    }

    fn balance(&self, query: &[(String, String)]) -> Result<Answer, ApiError> {
        if let Some((k, _)) = query.iter().find(|(k, _)| k != "expand[]") {
            return Err(ApiError::unknown(k));
        }
        let acc = self.lock();
        let mut per: BTreeMap<String, i64> = BTreeMap::new();
        for t in &acc.balance_transactions {
            *per.entry(t["currency"].as_str().unwrap_or("eur").into())
                .or_default() += t["net"].as_i64().unwrap_or(0);
        }
        if per.is_empty() {
            per.insert("eur".into(), 0);
        }
        let available: Vec<Value> = per
            .iter()
            .map(|(c, a)| json!({"amount": a, "currency": c, "source_types": {"card": a}}))
            .collect();
        let pending: Vec<Value> = per
            .keys()
            .map(|c| json!({"amount": 0, "currency": c}))
            .collect();
        Ok(Answer::ok(json!({
            "object": "balance", "livemode": false, "available": available, "pending": pending,
        })))
    }

    fn expand(
        acc: &Account,
        kind: ObjectKind,
        mut obj: Value,
        expand: &[&str],
        prefix: &str,
    ) -> Value {
        if kind == ObjectKind::PaymentIntent
            && expand.contains(&format!("{prefix}latest_charge").as_str())
        {
            if let Some(id) = obj["latest_charge"].as_str() {
                if let Some(i) = acc.find(ObjectKind::Charge, id) {
                    obj["latest_charge"] = acc.charges[i].clone();
                }
            }
        }
        obj
    }

    fn retrieve(
        &self,
        kind: ObjectKind,
        id: &str,
        query: &[(String, String)],
    ) -> Result<Answer, ApiError> {
        let mut expand = Vec::new();
        for (k, v) in query {
            match k.as_str() {
                "expand[]" => expand.push(v.as_str()),
                other => return Err(ApiError::unknown(other)),
            }
        }
        let acc = self.lock();
        let i = acc
            .find(kind, id)
            .ok_or_else(|| ApiError::no_such(kind.name(), id, "id"))?;
        Ok(Answer::ok(Self::expand(
            &acc,
            kind,
            acc.list(kind)[i].clone(),
            &expand,
            "",
        )))
    }

    fn list(&self, kind: ObjectKind, query: &[(String, String)]) -> Result<Answer, ApiError> {
        let mut limit = DEFAULT_LIMIT;
        let mut starting_after = None;
        let mut ending_before = None;
        let mut bounds: Vec<(&str, i64)> = Vec::new();
        let mut expand = Vec::new();
        let mut filters: Vec<(&str, &str)> = Vec::new();
        for (k, v) in query {
            let int = || {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(format!("Invalid integer: {v}"), Some(k)))
            };
            match k.as_str() {
                "limit" => {
                    let n = int()?;
                    if !(1..=MAX_LIMIT as i64).contains(&n) {
                        return Err(ApiError::invalid(
                            format!("This value must be greater than or equal to 1 and less than or equal to {MAX_LIMIT}."),
                            Some("limit"),
                        ));
                    }
                    limit = n as usize;
                }
                "starting_after" => starting_after = Some(v.as_str()),
                "ending_before" => ending_before = Some(v.as_str()),
                "created" => bounds.push(("eq", int()?)),
                "created[gt]" => bounds.push(("gt", int()?)),
                "created[gte]" => bounds.push(("gte", int()?)),
                "created[lt]" => bounds.push(("lt", int()?)),
                "created[lte]" => bounds.push(("lte", int()?)),
                "expand[]" => expand.push(v.as_str()),
                f if kind.filters().contains(&f) => filters.push((f, v.as_str())),
                other => return Err(ApiError::unknown(other)),
            }
        }
        if starting_after.is_some() && ending_before.is_some() {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                Some("starting_after"),
            ));
        }
        let acc = self.lock();
        let mut rows: Vec<(usize, &Value)> = acc
            .list(kind)
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                let c = o["created"].as_i64().unwrap_or(0);
                bounds.iter().all(|(op, b)| match *op {
                    "eq" => c == *b,
                    "gt" => c > *b,
                    "gte" => c >= *b,
                    "lt" => c < *b,
                    _ => c <= *b,
                })
            })
            .filter(|(_, o)| filters.iter().all(|(f, v)| o[*f].as_str() == Some(*v)))
            .collect();
        // Newest first; creation order breaks ties of `created`.
        rows.sort_by(|a, b| (b.1["created"].as_i64(), b.0).cmp(&(a.1["created"].as_i64(), a.0)));
        let position = |id: &str, param: &str| {
            acc.find(kind, id)
                .and_then(|i| rows.iter().position(|(j, _)| *j == i))
                .ok_or_else(|| ApiError::no_such(kind.name(), id, param))
        };
        let (page, has_more): (Vec<_>, bool) = if let Some(id) = starting_after {
            let p = position(id, "starting_after")?;
            let rest = &rows[p + 1..];
            (rest.iter().take(limit).collect(), rest.len() > limit)
        } else if let Some(id) = ending_before {
            let p = position(id, "ending_before")?;
            let before = &rows[..p];
            let start = before.len().saturating_sub(limit);
            (before[start..].iter().collect(), start > 0)
        } else {
            (rows.iter().take(limit).collect(), rows.len() > limit)
        };
        let data: Vec<Value> = page
            .into_iter()
            .map(|(_, o)| Self::expand(&acc, kind, (*o).clone(), &expand, "data."))
            .collect();
        let mut body = json!({
            "object": "list", "url": format!("/v1/{}s", kind.name()), "has_more": has_more, "data": data,
        });
        if self.without_has_more {
            if let Some(o) = body.as_object_mut() {
                o.remove("has_more");
            }
        }
        Ok(Answer::ok(body))
    }

    /// A POST with Stripe's idempotency semantics around [`Self::execute`].
    fn post(&self, path: &str, headers: &HeaderMap, body: &Bytes, request_no: u64) -> Response {
        let mut acc = self.lock();
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut record = PostRecord {
            path: path.to_string(),
            idempotency_key: key.clone(),
            outcome: PostOutcome::Refused,
            status: 400,
        };
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let refused = if !content_type.starts_with("application/x-www-form-urlencoded") {
            Some(ApiError::invalid(
                format!("Invalid request: the body must be form-encoded (application/x-www-form-urlencoded), not {content_type:?}."),
                None,
            ))
        } else if key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN)
        {
            Some(ApiError::invalid(
                format!(
                    "Idempotency-Key must be between 1 and {MAX_IDEMPOTENCY_KEY_LEN} characters."
                ),
                None,
            ))
        } else {
            None
        };
        if let Some(e) = refused {
            acc.posts.push(record);
            return e.answer().into_response(false, request_no);
        }
        let mut params = parse_form(&String::from_utf8_lossy(body));
        params.sort();
        if let Some(k) = &key {
            if let Some(stored) = acc.idempotency.get(k).cloned() {
                if stored.path == path && stored.params == params {
                    record.outcome = PostOutcome::Replayed;
                    record.status = stored.answer.status.as_u16();
                    acc.posts.push(record);
                    return stored.answer.into_response(true, request_no);
                }
                acc.posts.push(record);
                let e = ApiError {
                    kind: "idempotency_error",
                    should_retry: Some(false),
                    ..ApiError::invalid(format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                    ), None)
                };
                return e.answer().into_response(false, request_no);
            }
        }
        let answer = match self.validate(&acc, path, &params) {
            Err(e) => {
                acc.posts.push(record);
                return e.answer().into_response(false, request_no);
            }
            Ok(()) if acc.fail_with_500 > 0 => {
                acc.fail_with_500 -= 1;
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    kind: "api_error",
                    should_retry: Some(false),
                    ..ApiError::invalid("An unknown error occurred", None)
                }
                .answer()
            }
            Ok(()) => Self::execute(&mut acc, path, &params).unwrap_or_else(Answer::from),
        };
        if let Some(k) = key {
            acc.idempotency.insert(
                k,
                Stored {
                    path: path.to_string(),
                    params,
                    answer: answer.clone(),
                },
            );
        }
        record.outcome = PostOutcome::Executed;
        record.status = answer.status.as_u16();
        let drop = acc.drop_after_processing > 0;
        if drop {
            acc.drop_after_processing -= 1;
            record.status = 0;
        }
        acc.posts.push(record);
        let mut r = answer.into_response(false, request_no);
        if drop {
            r.extensions_mut().insert(DropConnection);
        }
        r
    }

    /// Parameter checks; a failure here is answered and not stored.
    fn validate(
        &self,
        acc: &Account,
        path: &str,
        params: &[(String, String)],
    ) -> Result<(), ApiError> {
        let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
        let allowed: &[&str] = if path == "payment_intents" {
            &[
                "amount",
                "currency",
                "payment_method",
                "confirm",
                "description",
                "expand[]",
                "automatic_payment_methods[enabled]",
                "automatic_payment_methods[allow_redirects]",
                "payment_method_types[]",
                "return_url",
                "capture_method",
                "customer",
                "receipt_email",
                "statement_descriptor",
            ]
        } else {
            &[
                "payment_intent",
                "charge",
                "amount",
                "reason",
                "expand[]",
                "instructions_email",
            ]
        };
        for (k, _) in params {
            if !(allowed.contains(&k.as_str()) || (k.starts_with("metadata[") && k.ends_with(']')))
            {
                return Err(ApiError::unknown(k));
            }
        }
        if let Some(a) = get("amount") {
            match a.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                _ => {
                    return Err(ApiError::invalid(
                        format!("Invalid positive integer: {a}"),
                        Some("amount"),
                    )
                    .code("parameter_invalid_integer"))
                }
            }
        }
        if path == "payment_intents" {
            get("amount").ok_or_else(|| ApiError::missing("amount"))?;
            let currency = get("currency").ok_or_else(|| ApiError::missing("currency"))?;
            // Stripe's documents: three-letter ISO codes in lower case.
            if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
                return Err(ApiError::invalid(
                    format!("Invalid currency: {currency}. Stripe currently supports these currencies in lower case ISO codes."),
                    Some("currency"),
                ));
            }
            let confirm = get("confirm") == Some("true");
            if confirm && get("payment_method").is_none() {
                return Err(ApiError::invalid(
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    Some("payment_method"),
                )
                .code("payment_intent_unexpected_state"));
            }
            if let Some(pm) = get("payment_method") {
                if !pm.starts_with("pm_") {
                    return Err(ApiError::no_such("PaymentMethod", pm, "payment_method"));
                }
            }
            if confirm
                && get("automatic_payment_methods[enabled]") == Some("true")
                && get("automatic_payment_methods[allow_redirects]") != Some("never")
                && get("return_url").is_none()
            {
                return Err(ApiError::invalid(
                    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and `automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents.",
                    Some("return_url"),
                ));
            }
        } else {
            match (get("payment_intent"), get("charge")) {
                (None, None) => return Err(ApiError::missing("charge")),
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid(
                        "You may only specify one of these parameters: charge, payment_intent.",
                        Some("payment_intent"),
                    ))
                }
                (Some(pi), None) if acc.find(ObjectKind::PaymentIntent, pi).is_none() => {
                    return Err(ApiError::no_such("payment_intent", pi, "payment_intent"))
                }
                (None, Some(ch)) if acc.find(ObjectKind::Charge, ch).is_none() => {
                    return Err(ApiError::no_such("charge", ch, "charge"))
                }
                _ => {}
            }
            if let Some(r) = get("reason") {
                if !["duplicate", "fraudulent", "requested_by_customer"].contains(&r) {
                    return Err(ApiError::invalid(
                        "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                        Some("reason"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Executes a validated POST; business failures (declines, over-refunds) are answers too.
    fn execute(
        acc: &mut Account,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Answer, ApiError> {
        let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
        let metadata: serde_json::Map<String, Value> = params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("metadata[")
                    .and_then(|k| k.strip_suffix(']'))
                    .map(|k| (k.to_string(), json!(v)))
            })
            .collect();
        let expand: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == "expand[]")
            .map(|(_, v)| v.as_str())
            .collect();
        let now = Utc::now().timestamp();
        let amount = get("amount").and_then(|a| a.parse::<i64>().ok());
        if path == "payment_intents" {
            let amount = amount.unwrap_or(0);
            let currency = get("currency").unwrap_or_default();
            let pm = get("payment_method");
            if get("confirm").as_deref() != Some("true") {
                let id = acc.id("pi");
                let pi = json!({
                    "id": id, "object": "payment_intent", "amount": amount, "amount_received": 0,
                    "currency": currency, "created": now, "payment_method": pm,
                    "status": if pm.is_some() { "requires_confirmation" } else { "requires_payment_method" },
                    "payment_method_types": ["card"], "latest_charge": null,
                    "description": get("description"), "metadata": metadata, "livemode": false,
                });
                acc.payment_intents.push(pi.clone());
                return Ok(Answer::ok(pi));
            }
            let pm = pm.unwrap_or_default();
            if pm == "pm_card_chargeDeclined" || pm == "pm_card_visa_chargeDeclined" {
                let id = acc.id("pi");
                let pi = json!({
                    "id": id, "object": "payment_intent", "amount": amount, "amount_received": 0,
                    "currency": currency, "created": now, "payment_method": null,
                    "status": "requires_payment_method", "payment_method_types": ["card"],
                    "latest_charge": null, "description": get("description"), "metadata": metadata,
                    "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"},
                });
                acc.payment_intents.push(pi.clone());
                return Err(ApiError {
                    status: StatusCode::PAYMENT_REQUIRED,
                    kind: "card_error",
                    decline_code: Some("generic_decline"),
                    extra: Some(Box::new(("payment_intent", pi))),
                    ..ApiError::invalid("Your card was declined.", None).code("card_declined")
                });
            }
            let idx = acc.succeed(
                amount,
                &currency,
                &pm,
                get("description"),
                Value::Object(metadata),
                now,
            );
            let pi = acc.payment_intents[idx].clone();
            return Ok(Answer::ok(Self::expand(
                acc,
                ObjectKind::PaymentIntent,
                pi,
                &expand,
                "",
            )));
        }
        // Refund: find the charge behind the payment.
        let charge_idx = match (get("payment_intent"), get("charge")) {
            (Some(pi), _) => {
                let i = acc
                    .find(ObjectKind::PaymentIntent, &pi)
                    .ok_or_else(|| ApiError::no_such("payment_intent", &pi, "payment_intent"))?;
                acc.payment_intents[i]["latest_charge"]
                    .as_str()
                    .and_then(|c| acc.find(ObjectKind::Charge, c))
                    .ok_or_else(|| {
                        ApiError::invalid(format!("This PaymentIntent ({pi}) does not have a successful charge to refund."), Some("payment_intent"))
                            .code("charge_not_refundable")
                    })?
            }
            (None, Some(ch)) => acc
                .find(ObjectKind::Charge, &ch)
                .ok_or_else(|| ApiError::no_such("charge", &ch, "charge"))?,
            (None, None) => return Err(ApiError::missing("charge")),
        };
        let ch = &acc.charges[charge_idx];
        let (total, refunded) = (
            ch["amount"].as_i64().unwrap_or(0),
            ch["amount_refunded"].as_i64().unwrap_or(0),
        );
        let currency = ch["currency"].as_str().unwrap_or("eur").to_string();
        if refunded >= total {
            return Err(ApiError::invalid(
                format!(
                    "Charge {} has already been refunded.",
                    ch["id"].as_str().unwrap_or("")
                ),
                None,
            )
            .code("charge_already_refunded"));
        }
        let remaining = total - refunded;
        let amount = amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(ApiError::invalid(
                format!(
                    "Refund amount ({}) is greater than unrefunded amount on charge ({})",
                    show(amount, &currency),
                    show(remaining, &currency)
                ),
                Some("amount"),
            )
            .code("amount_too_large"));
        }
        let refund = acc.refund(
            charge_idx,
            amount,
            get("reason"),
            Value::Object(metadata),
            now,
        );
        Ok(Answer::ok(refund))
    }
}

fn not_found(path: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        ..ApiError::invalid(format!("Unrecognized request URL ({path})."), None)
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    /// Unix time to sign at; default now.
    timestamp: Option<i64>,
}

impl Simulator for StripeSimulator {
    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn router(self: Arc<Self>) -> Router {
        let events = self.clone();
        Router::new()
            .route(
                "/v1/{*rest}",
                any(
                    move |ctx: crate::faults::RequestContext,
                          method: Method,
                          uri: Uri,
                          headers: HeaderMap,
                          body: Bytes| async move {
                        self.handle(&method, &uri, &headers, &body, ctx.request_no)
                    },
                ),
            )
            .route(
                "/__stripe/events",
                get(move |Query(q): Query<EventsQuery>| async move {
                    let t = q.timestamp.unwrap_or_else(|| Utc::now().timestamp());
                    Json(events.signed_events(t))
                }),
            )
    }

    fn credentials(&self) -> Vec<(String, String)> {
        vec![
            ("secret_key".to_string(), self.secret_key.clone()),
            ("webhook_secret".to_string(), self.webhook_secret.clone()),
        ]
    }

    /// Stripe holds payments, not receipts: no canonical sales.
    fn canonical_sales(&self) -> Vec<Sale> {
        Vec::new()
    }

    /// The card payments of the new sales become PaymentIntents (and days are paid out).
    fn add_sales(&self, sales: Vec<Sale>) {
        self.lock().add_sales(&sales);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn form_decoding_and_amounts() {
        assert_eq!(
            parse_form("metadata%5Bsale_id%5D=a%3Ab&description=x+y&e="),
            vec![
                ("metadata[sale_id]".to_string(), "a:b".to_string()),
                ("description".to_string(), "x y".to_string()),
                ("e".to_string(), String::new())
            ]
        );
        assert_eq!(show(6000, "eur"), "60.00 EUR");
        assert_eq!(show(500, "jpy"), "500 JPY");
        assert_eq!(to_minor(Decimal::new(1999, 2), "eur"), Some(1999));
        assert_eq!(to_minor(Decimal::new(1999, 2), "jpy"), None);
        assert_eq!(fee_of(1000), 39);
    }

    #[test]
    fn seeded_account_balances() {
        let sim = StripeSimulator::from_options(&SandboxOptions {
            days: 2,
            sales_per_day: 10,
            ..SandboxOptions::default()
        });
        let pis = sim.payment_intents();
        assert!(!pis.is_empty());
        assert_eq!(pis.len(), sim.charges().len());
        assert!(!sim.refunds().is_empty());
        assert!(!sim.payouts().is_empty());
        // Every charge, refund and payout has its balance transaction; net = amount - fee.
        let txs = sim.balance_transactions();
        assert_eq!(
            txs.len(),
            pis.len() + sim.refunds().len() + sim.payouts().len()
        );
        assert!(txs.iter().all(|t| t["net"].as_i64().unwrap()
            == t["amount"].as_i64().unwrap() - t["fee"].as_i64().unwrap()));
    }
}
