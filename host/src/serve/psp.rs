//! The payment endpoints of the BEEP! sync API: `POST /api/v1/configurePSP`,
//! `POST /api/v1/processPayment` and `POST /api/v1/refundPayment`.
//!
//! The operations are [`crate::payments`]'s; here they get HTTP: store scoping, the
//! `Idempotency-Key` header (required for payments and refunds: the same key twice charges once
//! and answers the first result, marked `Idempotent-Replayed: true` as Stripe does), and the
//! PSP config sealed in the vault.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use super::auth::Caller;
use super::db::ServeDb;
use super::envelope::{ApiError, ApiJson, Envelope, ErrorEnvelope};
use super::vault::SecretVault;
use super::Routes;
use crate::payments::{PaymentError, SealedError, SealedStore};
use crate::serve::app::AppState;

/// The header a client names a payment or refund with.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// [`SealedStore`] over the serve tables: values sealed with AES-256-GCM under the master key,
/// bound to store and purpose.
pub struct VaultSealedStore {
    db: ServeDb,
    vault: SecretVault,
}

impl VaultSealedStore {
    /// Opens its own connection to the state database.
    pub fn open(state_spec: Option<&str>, vault: SecretVault) -> anyhow::Result<Self> {
        Ok(Self {
            db: ServeDb::open(state_spec)?,
            vault,
        })
    }
}

impl SealedStore for VaultSealedStore {
    fn put(&self, store_id: &str, purpose: &str, value: &Value) -> Result<(), SealedError> {
        let sealed = self
            .vault
            .seal(store_id, purpose, value)
            .map_err(|e| SealedError(e.to_string()))?;
        self.db
            .put_secret(store_id, purpose, &sealed)
            .map_err(|e| SealedError(e.to_string()))
    }

    fn get(&self, store_id: &str, purpose: &str) -> Result<Option<Value>, SealedError> {
        let Some(sealed) = self
            .db
            .secret(store_id, purpose)
            .map_err(|e| SealedError(e.to_string()))?
        else {
            return Ok(None);
        };
        self.vault
            .open(store_id, purpose, &sealed)
            .map(Some)
            .map_err(|e| SealedError(e.to_string()))
    }
}

fn payment_error(e: PaymentError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return ApiError::internal(e);
    }
    let mut err = ApiError::new(status, e.code(), e.to_string());
    if let PaymentError::Psp(posbridge_plugin_api::ConnectorError::RateLimited {
        retry_after: Some(wait),
        ..
    }) = &e
    {
        err.retry_after = Some(wait.as_secs().max(1));
    }
    err
}

/// The body of `configurePSP`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurePspRequest {
    /// `stripe`; the other providers of the BEEP! document answer `provider_not_supported`.
    pub provider: String,
    pub store_id: String,
    /// The provider connector's config (e.g. stripe's `secret_key`); checked against its JSON
    /// Schema and by the connector's check, then sealed. Never returned.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// What `configurePSP` answers (never the config).
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PspConfiguredDoc {
    pub store_id: String,
    pub provider: String,
    /// The connector's check message.
    pub check: String,
}

/// Configure the store's payment service provider (store key of that store, or admin).
#[utoipa::path(post, path = "/api/v1/configurePSP", tag = "psp",
    request_body = ConfigurePspRequest, security(("bearer" = [])),
    responses(
        (status = 200, description = "Configured", body = Envelope<PspConfiguredDoc>),
        (status = 400, description = "Missing field, unsupported or unknown provider, config against the schema", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key)", body = ErrorEnvelope),
        (status = 422, description = "The provider refused the credentials", body = ErrorEnvelope)))]
async fn configure_psp(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ConfigurePspRequest>,
) -> Result<Envelope<PspConfiguredDoc>, ApiError> {
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let configured = app
        .blocking(move |a| {
            a.payments
                .configure_psp(&store, &body.provider, &body.config)
                .map_err(payment_error)
        })
        .await?;
    Ok(Envelope::ok(PspConfiguredDoc {
        store_id: configured.store_id,
        provider: configured.provider,
        check: configured.check,
    }))
}

/// The body of `processPayment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessPaymentRequest {
    pub store_id: String,
    /// In the currency's main unit, as a decimal string (`"12.34"`) or a number.
    #[schema(value_type = String)]
    pub amount: Value,
    /// ISO 4217.
    pub currency: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The canonical sale this pays.
    #[serde(default)]
    pub sale_id: Option<String>,
    /// A PSP payment method id; else the PSP config's default.
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// The body of `refundPayment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundPaymentRequest {
    pub store_id: String,
    /// The PSP's payment id (as `processPayment` answered it).
    pub payment_id: String,
    /// Omitted: whatever remains of the payment.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub amount: Option<Value>,
    #[serde(default)]
    pub currency: Option<String>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Tells refunds of the same amount apart (e.g. the refund receipt's id).
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "send an Idempotency-Key header naming this payment; the same key again answers the first result and charges nothing",
        )
    })?;
    value.to_str().map(str::to_string).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "the Idempotency-Key header must be visible ASCII",
        )
    })
}

/// Drops absent optional fields, so the connector sees only what the client gave.
fn without_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, x| !x.is_null() && x != &json!({}));
    }
    v
}

fn answered(answer: crate::payments::IdempotentAnswer) -> Response {
    let mut response = Json(Envelope::ok(answer.answer)).into_response();
    if answer.replayed {
        response
            .headers_mut()
            .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Take a payment through the store's PSP, once per `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/processPayment", tag = "psp",
    request_body = ProcessPaymentRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Names this payment: the same key again answers the first result and charges nothing")),
    responses(
        (status = 200, description = "The PSP's payment (header `Idempotent-Replayed: true` on a repeat)", body = Envelope<Object>),
        (status = 400, description = "Missing field or key", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key", body = ErrorEnvelope),
        (status = 409, description = "No PSP configured, or the key was used for another request", body = ErrorEnvelope),
        (status = 422, description = "The PSP refused the payment", body = ErrorEnvelope)))]
async fn process_payment(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ProcessPaymentRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let input = without_nulls(json!({
        "amount": body.amount,
        "currency": body.currency,
        "description": body.description,
        "sale_id": body.sale_id,
        "payment_method": body.payment_method,
        "metadata": body.metadata,
    }));
    let answer = app
        .blocking(move |a| {
            a.payments
                .process_payment(&store, &key, &input)
                .map_err(payment_error)
        })
        .await?;
    Ok(answered(answer))
}

/// Refund a payment through the store's PSP, once per `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/refundPayment", tag = "psp",
    request_body = RefundPaymentRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Names this refund: the same key again answers the first result and refunds nothing")),
    responses(
        (status = 200, description = "The PSP's refund (header `Idempotent-Replayed: true` on a repeat)", body = Envelope<Object>),
        (status = 400, description = "Missing field or key", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key", body = ErrorEnvelope),
        (status = 409, description = "No PSP configured, or the key was used for another request", body = ErrorEnvelope),
        (status = 422, description = "The PSP refused the refund", body = ErrorEnvelope)))]
async fn refund_payment(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefundPaymentRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let input = without_nulls(json!({
        "payment_id": body.payment_id,
        "amount": body.amount,
        "currency": body.currency,
        "reason": body.reason,
        "reference": body.reference,
        "metadata": body.metadata,
    }));
    let answer = app
        .blocking(move |a| {
            a.payments
                .refund_payment(&store, &key, &input)
                .map_err(payment_error)
        })
        .await?;
    Ok(answered(answer))
}

#[derive(OpenApi)]
#[openapi(
    paths(configure_psp, process_payment, refund_payment),
    components(schemas(
        ConfigurePspRequest,
        PspConfiguredDoc,
        ProcessPaymentRequest,
        RefundPaymentRequest
    ))
)]
struct Doc;

/// The PSP routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route("/api/v1/configurePSP", post(configure_psp))
        .route("/api/v1/processPayment", post(process_payment))
        .route("/api/v1/refundPayment", post(refund_payment));
    (router, Doc::openapi())
}
