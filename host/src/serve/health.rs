//! `GET /healthz` (the process answers), `GET /readyz` (the state database answers) and
//! `GET /metrics` (Prometheus text). No key needed: load balancers and scrapers call them.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::app::AppState;
use super::envelope::{ApiError, ApiResult, Envelope, ErrorEnvelope};
use super::Routes;

/// The answer of the health checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (healthz) or `ready` (readyz).
    pub status: String,
}

/// The process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Envelope<Health>)))]
async fn healthz() -> ApiResult<Health> {
    Ok(Envelope::ok(Health {
        status: "ok".into(),
    }))
}

/// The state database answers queries.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Envelope<Health>),
        (status = 503, description = "The state database does not answer", body = ErrorEnvelope)))]
async fn readyz(State(app): State<AppState>) -> ApiResult<Health> {
    app.blocking(|a| {
        a.db.ping().map_err(|e| {
            tracing::warn!("readiness check failed: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the state database does not answer",
            )
        })
    })
    .await?;
    Ok(Envelope::ok(Health {
        status: "ready".into(),
    }))
}

/// Counters and histograms in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(paths(healthz, readyz, metrics), components(schemas(Health)))]
struct Doc;

/// The health routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    (router, Doc::openapi())
}
