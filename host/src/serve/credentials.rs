//! What the vault holds for a store: `GET /api/v1/stores/{storeId}/credentials` lists it
//! (purpose, kind, when sealed; never a value), `DELETE /api/v1/stores/{storeId}/credentials`
//! deletes all of it and `DELETE /api/v1/stores/{storeId}/credentials/{purpose}` one.
//!
//! Purposes: `pipeline:<name>` holds the source and sink configs of a held pipeline (a sync
//! call's credentials are those of its pipeline `syncPOS:<store>:<system>`, …), `psp` the
//! store's PSP config. A pipeline whose configs were deleted stays held but does not run: its
//! runs answer 409 `credentials_missing` (a scheduled tick records a failed run with the same
//! reason) until a `PUT /api/v1/pipelines/{name}` or its sync call seals new ones; payments
//! answer 409 `psp_not_configured` until `configurePSP` is called again.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::app::AppState;
use super::auth::Caller;
use super::db::SealedInfo;
use super::envelope::{ApiError, ApiResult, Envelope, ErrorEnvelope};
use super::pipeline_catalog::pipeline_of_purpose;
use super::Routes;
use crate::payments::PSP_PURPOSE;

/// One sealed value of a store, as listed: never the value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedCredential {
    /// What it is for, e.g. `pipeline:syncPOS:berlin-01:kassandro` or `psp`; the name to delete
    /// it by.
    pub purpose: String,
    /// `pipeline` (a held pipeline's connector configs), `psp` (the PSP config) or `other`.
    pub kind: String,
    /// The pipeline, for kind `pipeline`.
    pub pipeline: Option<String>,
    /// When it was first sealed (RFC 3339, UTC).
    pub created_at: String,
    /// When it was last replaced.
    pub updated_at: String,
}

impl From<SealedInfo> for SealedCredential {
    fn from(i: SealedInfo) -> Self {
        let pipeline = pipeline_of_purpose(&i.purpose).map(str::to_string);
        let kind = if pipeline.is_some() {
            "pipeline"
        } else if i.purpose == PSP_PURPOSE {
            "psp"
        } else {
            "other"
        };
        Self {
            kind: kind.into(),
            pipeline,
            purpose: i.purpose,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// What a delete removed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsDeleted {
    pub store_id: String,
    /// The purposes deleted.
    pub deleted: Vec<String>,
}

/// The store's sealed credentials and configs (store key of that store, or admin).
#[utoipa::path(get, path = "/api/v1/stores/{storeId}/credentials", tag = "stores",
    security(("bearer" = [])),
    params(("storeId" = String, Path, description = "The store id")),
    responses(
        (status = 200, description = "What is sealed, by purpose (never a value)", body = Envelope<Vec<SealedCredential>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key (whether the store exists or not)", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key)", body = ErrorEnvelope)))]
async fn list_credentials(
    State(app): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
) -> ApiResult<Vec<SealedCredential>> {
    let store = caller.store(&app, &store_id).await?.store_id;
    let listed = app.blocking(move |a| Ok(a.db.secrets_of(&store)?)).await?;
    Ok(Envelope::ok(listed.into_iter().map(Into::into).collect()))
}

/// Delete everything sealed for the store (store key of that store, or admin).
#[utoipa::path(delete, path = "/api/v1/stores/{storeId}/credentials", tag = "stores",
    security(("bearer" = [])),
    params(("storeId" = String, Path, description = "The store id")),
    responses(
        (status = 200, description = "Deleted (possibly nothing)", body = Envelope<CredentialsDeleted>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key (whether the store exists or not)", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key)", body = ErrorEnvelope)))]
async fn delete_all_credentials(
    State(app): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
) -> ApiResult<CredentialsDeleted> {
    let store = caller.store(&app, &store_id).await?.store_id;
    let key = caller.key_id;
    let deleted = app
        .blocking(move |a| {
            let mut deleted = Vec::new();
            for s in a.db.secrets_of(&store)? {
                if a.db.delete_secret(&store, &s.purpose)? {
                    deleted.push(s.purpose);
                }
            }
            tracing::info!(store = %store, key = %key, deleted = ?deleted, "sealed credentials deleted");
            Ok(CredentialsDeleted {
                store_id: store,
                deleted,
            })
        })
        .await?;
    Ok(Envelope::ok(deleted))
}

/// Delete one sealed value of the store by its purpose (store key of that store, or admin).
#[utoipa::path(delete, path = "/api/v1/stores/{storeId}/credentials/{purpose}", tag = "stores",
    security(("bearer" = [])),
    params(
        ("storeId" = String, Path, description = "The store id"),
        ("purpose" = String, Path, description = "As listed, e.g. `psp` or `pipeline:syncPOS:berlin-01:kassandro`")),
    responses(
        (status = 200, description = "Deleted", body = Envelope<CredentialsDeleted>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key (whether the store exists or not)", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key), or nothing sealed under that purpose", body = ErrorEnvelope)))]
async fn delete_credentials(
    State(app): State<AppState>,
    caller: Caller,
    Path((store_id, purpose)): Path<(String, String)>,
) -> ApiResult<CredentialsDeleted> {
    let store = caller.store(&app, &store_id).await?.store_id;
    let key = caller.key_id;
    let deleted = app
        .blocking(move |a| {
            if !a.db.delete_secret(&store, &purpose)? {
                return Err(ApiError::not_found(format!(
                    "nothing is sealed for store {store:?} under {purpose:?}; GET /api/v1/stores/{store}/credentials lists what is"
                )));
            }
            tracing::info!(store = %store, key = %key, purpose = %purpose, "sealed credentials deleted");
            Ok(CredentialsDeleted {
                store_id: store,
                deleted: vec![purpose],
            })
        })
        .await?;
    Ok(Envelope::ok(deleted))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_credentials, delete_all_credentials, delete_credentials),
    components(schemas(SealedCredential, CredentialsDeleted))
)]
struct Doc;

/// The credential routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route(
            "/api/v1/stores/{storeId}/credentials",
            get(list_credentials).delete(delete_all_credentials),
        )
        .route(
            "/api/v1/stores/{storeId}/credentials/{purpose}",
            delete(delete_credentials),
        );
    (router, Doc::openapi())
}
