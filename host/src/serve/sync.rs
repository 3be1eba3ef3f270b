//! The sync endpoints of the BEEP! API: `POST /api/v1/syncPOS`, `/syncERP`, `/pushToPOS`,
//! `/pushToERP`. Each call is a pipeline run between the named system and the hub
//! ([`crate::jobs`]): it answers the `synced` figures when the run ends within
//! `--job-wait-secs`, else `202` with the run id to poll at `GET /api/v1/runs/{id}`.
//!
//! Before the run starts, the credentials are checked against the system's JSON Schema (the
//! error names the JSON path) and by the connector's own check (a vendor refusing them answers
//! `422 credentials_refused`). The pipeline is then held with its credentials sealed
//! (`GET /api/v1/pipelines` lists it, never the credentials), so it can be run again and its
//! dead letters retried.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::app::{AppInner, AppState};
use super::auth::Caller;
use super::envelope::{ApiError, ApiJson, Envelope, ErrorEnvelope};
use super::pipeline_catalog::Origin;
use super::Routes;
use crate::jobs::{StartError, SyncError, SyncKind, SyncRequest, SyncedCounts};
use crate::pipeline::{RunReport, SinkMode};
use crate::plugins::OpenOptions;
use crate::state::{RunStatus, RunTrigger};

/// The body of the four sync calls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncCall {
    /// A loaded connector (`GET /api/v1/connectors`), e.g. `kassandro`, `sevdesk`.
    pub system: String,
    pub store_id: String,
    /// The system's config, as its JSON Schema says. Kept sealed with the sync's pipeline.
    #[schema(value_type = Object)]
    pub credentials: Value,
    /// Pushes to the books: `per_sale` (default) or `daily_summary` (one closure per business
    /// day and register).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub mode: Option<SinkMode>,
    /// The sink's mapping (payment methods, tax rates … to the system's ids), as in a pipeline
    /// file.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<Value>,
    /// Imports only: these of the job's streams (e.g. `["sales"]` for a `generic` file);
    /// default every one the system reads.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
}

/// The figures of a finished sync.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    pub system: String,
    pub store_id: String,
    pub run_id: Option<i64>,
    /// `succeeded`.
    pub status: String,
    pub synced: SyncedCountsDoc,
}

/// Records the run wrote, per kind.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncedCountsDoc {
    pub products: u64,
    pub categories: u64,
    /// Products the hub already had at another price.
    pub price_updates: u64,
    pub sales: u64,
    /// Daily closures booked (`pushToERP` in `daily_summary` mode).
    pub closures: u64,
    pub inventory: u64,
    pub orders: u64,
    pub suppliers: u64,
    pub dead_lettered: u64,
}

impl From<SyncedCounts> for SyncedCountsDoc {
    fn from(c: SyncedCounts) -> Self {
        Self {
            products: c.products,
            categories: c.categories,
            price_updates: c.price_updates,
            sales: c.sales,
            closures: c.closures,
            inventory: c.inventory,
            orders: c.orders,
            suppliers: c.suppliers,
            dead_lettered: c.dead_lettered,
        }
    }
}

/// A finished sync: the envelope, plus `system` and `synced` at the top as in the BEEP!
/// sample (`{"success": true, "system": "korona", "synced": {…}}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAnswer {
    pub success: bool,
    pub system: String,
    pub synced: SyncedCountsDoc,
    pub data: SyncResult,
}

/// A sync still running when the wait ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncAccepted {
    pub run_id: Option<i64>,
    /// `running`.
    pub status: String,
    /// Where to follow it.
    pub poll: String,
}

fn sync_error(e: SyncError) -> ApiError {
    let code = match &e {
        SyncError::UnknownSystem { .. } => "unknown_system",
        SyncError::NotSupported { .. } => "not_supported",
        SyncError::InvalidCredentials { .. } => "invalid_credentials",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
}

/// Product prices the hub holds for a store, to count price updates.
fn hub_prices(a: &AppInner, store: &str) -> Result<HashMap<String, Decimal>, ApiError> {
    let mut prices = HashMap::new();
    let mut after = 0;
    loop {
        let page = a
            .hub
            .read_page("products", store, after, 1000, None, None)
            .map_err(ApiError::internal)?;
        let Some(last) = page.last() else {
            return Ok(prices);
        };
        after = last.seq;
        for r in page {
            let id = r.record.get("id").and_then(Value::as_str);
            let price = r
                .record
                .get("price")
                .and_then(|p| serde_json::from_value::<Decimal>(p.clone()).ok());
            if let (Some(id), Some(price)) = (id, price) {
                prices.insert(id.to_string(), price);
            }
        }
    }
}

/// Opens the system with the credentials and asks its own check, so a refusal is answered
/// before any run starts.
fn check_credentials(a: &AppInner, system: &str, credentials: &Value) -> Result<(), ApiError> {
    let refused =
        |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "credentials_refused", m);
    let handle = a
        .registry
        .open(system, credentials, OpenOptions::default())
        .map_err(|e| refused(e.to_string()))?;
    match handle.check() {
        Ok(report) if report.ok => Ok(()),
        Ok(report) => Err(refused(format!(
            "{system} refused the credentials: {}",
            report.message
        ))),
        Err(e) => Err(refused(format!("{system} refused the credentials: {e}"))),
    }
}

async fn sync(
    app: AppState,
    caller: Caller,
    kind: SyncKind,
    body: SyncCall,
) -> Result<Response, ApiError> {
    let store = caller.store(&app, &body.store_id).await?.store_id;
    let request = SyncRequest {
        kind,
        store_id: store.clone(),
        system: body.system.clone(),
        credentials: body.credentials,
        mode: body.mode.unwrap_or_default(),
        mapping: body.mapping.unwrap_or(Value::Null),
        streams: body.streams,
    };
    let def = request.pipeline(&app.registry).map_err(sync_error)?;
    let counts_prices = matches!(kind, SyncKind::SyncPos | SyncKind::SyncErp);
    let (system, creds, store2) = (
        request.system.clone(),
        request.credentials.clone(),
        store.clone(),
    );
    let held = def.clone();
    let prices_before = app
        .blocking(move |a| {
            check_credentials(a, &system, &creds)?;
            // Held (configs sealed) so the sync can be run again, and its dead letters retried.
            a.catalog
                .put(&store2, &held, Origin::Sync, true)
                .map_err(ApiError::internal)?;
            if counts_prices {
                hub_prices(a, &store2)
            } else {
                Ok(HashMap::new())
            }
        })
        .await?;
    let mut ticket = app
        .jobs
        .start(def, RunTrigger::Api)
        .await
        .map_err(|e| match e {
            StartError::AlreadyRunning { .. } => ApiError::conflict(e.to_string()),
            StartError::ShuttingDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                e.to_string(),
            ),
        })?;
    let Some(report) = ticket.wait(app.settings.job_wait).await else {
        let accepted = SyncAccepted {
            run_id: ticket.run_id,
            status: "running".into(),
            poll: ticket
                .run_id
                .map(|id| format!("/api/v1/runs/{id}"))
                .unwrap_or_else(|| "/api/v1/runs".into()),
        };
        return Ok((StatusCode::ACCEPTED, Json(Envelope::ok(accepted))).into_response());
    };
    finished(&app, kind, &request, report, prices_before).await
}

async fn finished(
    app: &AppState,
    kind: SyncKind,
    request: &SyncRequest,
    report: RunReport,
    prices_before: HashMap<String, Decimal>,
) -> Result<Response, ApiError> {
    if report.status != RunStatus::Succeeded {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "sync_failed",
            format!(
                "{} with {} failed (run {}): {}",
                kind.endpoint(),
                request.system,
                report.run_id.map_or("-".into(), |i| i.to_string()),
                report.error.as_deref().unwrap_or(report.status.as_str())
            ),
        ));
    }
    let store = request.store_id.clone();
    let prices_after = if matches!(kind, SyncKind::SyncPos | SyncKind::SyncErp) {
        app.blocking(move |a| hub_prices(a, &store)).await?
    } else {
        HashMap::new()
    };
    // Imports always write record by record; only pushes take the call's mode.
    let mode = match kind {
        SyncKind::PushPos | SyncKind::PushErp => request.mode,
        SyncKind::SyncPos | SyncKind::SyncErp => SinkMode::PerSale,
    };
    let counts = SyncedCounts::from_run(&report.counters, mode, &prices_before, &prices_after);
    let answer = SyncAnswer {
        success: true,
        system: request.system.clone(),
        synced: counts.clone().into(),
        data: SyncResult {
            system: request.system.clone(),
            store_id: request.store_id.clone(),
            run_id: report.run_id,
            status: report.status.as_str().into(),
            synced: counts.into(),
        },
    };
    Ok(Json(answer).into_response())
}

macro_rules! sync_endpoint {
    ($fn:ident, $kind:expr, $path:literal, $what:literal) => {
        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "sync", request_body = SyncCall,
            security(("bearer" = [])),
            responses(
                (status = 200, description = "The run finished: what it synced", body = SyncAnswer),
                (status = 202, description = "Still running: poll the run", body = Envelope<SyncAccepted>),
                (status = 400, description = "Missing field, unknown system, system that cannot do this, credentials against its schema", body = ErrorEnvelope),
                (status = 401, description = "No or bad key", body = ErrorEnvelope),
                (status = 403, description = "Another store's key", body = ErrorEnvelope),
                (status = 404, description = "No such store (admin key)", body = ErrorEnvelope),
                (status = 409, description = "The same sync is already running", body = ErrorEnvelope),
                (status = 422, description = "The system refused the credentials", body = ErrorEnvelope),
                (status = 502, description = "The run failed", body = ErrorEnvelope),
                (status = 503, description = "`timeout`: the call (e.g. the vendor's check of the credentials) took longer than --request-timeout-secs; `shutting_down`", body = ErrorEnvelope)))]
        async fn $fn(
            State(app): State<AppState>,
            caller: Caller,
            ApiJson(body): ApiJson<SyncCall>,
        ) -> Result<Response, ApiError> {
            sync(app, caller, $kind, body).await
        }
    };
}

sync_endpoint!(
    sync_pos,
    SyncKind::SyncPos,
    "/api/v1/syncPOS",
    "Import products, categories (with prices) and sales from a POS into the hub."
);
sync_endpoint!(
    sync_erp,
    SyncKind::SyncErp,
    "/api/v1/syncERP",
    "Import inventory, orders, suppliers and products from the books into the hub."
);
sync_endpoint!(
    push_pos,
    SyncKind::PushPos,
    "/api/v1/pushToPOS",
    "Write the store's hub sales to a POS that takes them."
);
sync_endpoint!(
    push_erp,
    SyncKind::PushErp,
    "/api/v1/pushToERP",
    "Book the store's hub sales (or their daily closures) in the books."
);

#[derive(OpenApi)]
#[openapi(
    paths(sync_pos, sync_erp, push_pos, push_erp),
    components(schemas(SyncCall, SyncAnswer, SyncResult, SyncedCountsDoc, SyncAccepted))
)]
struct Doc;

/// The sync routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route("/api/v1/syncPOS", post(sync_pos))
        .route("/api/v1/syncERP", post(sync_erp))
        .route("/api/v1/pushToPOS", post(push_pos))
        .route("/api/v1/pushToERP", post(push_erp));
    (router, Doc::openapi())
}
