//! `posbridge serve`: the HTTP API (see `docs/http-api.md`).
//!
//! # Adding routes
//!
//! Each area is one module with a function `routes() -> Routes`, i.e. its axum router (full
//! paths, e.g. `/api/v1/stores`) and its OpenAPI paths (`#[derive(utoipa::OpenApi)]` over the
//! `#[utoipa::path]`-annotated handlers). [`parts`] lists them; add one line there. Handlers:
//!
//! - take `State<AppState>` ([`app::AppState`]: state DB, vault, registry, shutdown flag) and a
//!   [`auth::Caller`] to require a key (`caller.require_admin()?`,
//!   `caller.store(&app, &id).await?` for store scoping: 403 for another store, identical
//!   whether it exists or not);
//! - take JSON bodies with [`envelope::ApiJson`] (400 naming the JSON path);
//! - answer `ApiResult<T>` = `Result<Envelope<T>, ApiError>`; in `#[utoipa::path]` declare
//!   `body = Envelope<T>` for success and `body = ErrorEnvelope` for errors, and
//!   `security(("bearer" = []))` when a key is needed;
//! - run blocking work (SQLite, plugin calls) with `app.blocking(|a| …)`;
//! - keep connector credentials and PSP configs sealed: `a.put_secret(store, purpose, &json)`
//!   and `a.secret(store, purpose)` (purpose e.g. `credentials:kassandro`, `psp:stripe`; see
//!   [`vault`]), never in an answer or a log line;
//! - stop long work when `app.shutdown` (a [`crate::runtime::CancelFlag`]) is set: SIGTERM;
//! - count things with [`metrics::global`] (`record_run` for finished runs).
//!
//! [`router`] wraps every route with the limits (body size, request timeout), the envelope for
//! the framework's own errors, and the request metrics.

pub mod api_key;
pub mod app;
pub mod auth;
pub mod connectors;
pub mod credentials;
pub mod db;
pub mod envelope;
pub mod exports;
pub mod health;
pub mod master_key;
pub mod metrics;
pub mod openapi;
pub mod pipeline_catalog;
pub mod pipelines;
pub mod psp;
pub mod rate_limit;
pub mod schedules;
pub mod server;
pub mod stores;
pub mod sync;
pub mod vault;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use app::AppState;
use envelope::ApiError;

/// One area's routes and their OpenAPI paths.
pub type Routes = (Router<AppState>, utoipa::openapi::OpenApi);

/// Every area of the API. Add a line per module.
pub fn parts() -> Vec<Routes> {
    vec![
        health::routes(),
        stores::routes(),
        credentials::routes(),
        connectors::routes(),
        exports::routes(),
        sync::routes(),
        psp::routes(),
        pipelines::routes(),
    ]
}

/// The OpenAPI document of [`parts`].
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::assemble(parts().into_iter().map(|(_, doc)| doc))
}

/// The whole application: every part, `/api/v1/openapi.json`, the 404 fallback and the layers.
pub fn router(app: AppState) -> Router {
    router_of(app, parts())
}

/// [`router`] over the given parts (tests add routes of their own).
pub(crate) fn router_of(app: AppState, parts: Vec<Routes>) -> Router {
    let mut router = Router::new();
    let mut docs = Vec::new();
    for (r, doc) in parts {
        router = router.merge(r);
        docs.push(doc);
    }
    let doc = openapi::assemble(docs);
    let max_body = app.settings.max_body_bytes;
    router
        .merge(openapi::route(&doc))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            refuse_big_bodies,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), time_limit))
        .layer(middleware::from_fn(envelope::plain_errors_to_envelope))
        .layer(middleware::from_fn(metrics::count_requests))
        .with_state(app)
}

/// 413 at once when `Content-Length` announces more than the limit (the body limit catches
/// chunked bodies while they are read).
async fn refuse_big_bodies(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.settings.max_body_bytes;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    next.run(req).await
}

/// 503 `timeout` when a request takes longer than the configured time.
async fn time_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.settings.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}
