//! Stores (merchants): `POST /api/v1/stores` (admin), `GET /api/v1/stores` (admin: all, store
//! key: its own), `GET /api/v1/stores/{storeId}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::app::AppState;
use super::auth::Caller;
use super::db::StoreRecord;
use super::envelope::{with_status, ApiError, ApiJson, ApiResult, Envelope, ErrorEnvelope};
use super::Routes;

/// The longest store id.
pub const MAX_STORE_ID_LEN: usize = 64;

/// A new store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateStore {
    /// 1–64 characters: letters, digits, `-`, `_`, `.`; starts with a letter or digit.
    pub store_id: String,
    /// A name for people.
    pub name: String,
}

/// A store.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    pub store_id: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl From<StoreRecord> for Store {
    fn from(r: StoreRecord) -> Self {
        Self {
            store_id: r.store_id,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

/// Why a store id is refused, if it is.
pub fn store_id_problem(id: &str) -> Option<String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if id.is_empty() || id.len() > MAX_STORE_ID_LEN {
        return Some(format!(
            "$.storeId must be 1 to {MAX_STORE_ID_LEN} characters long"
        ));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) || !id.chars().all(ok_char) {
        return Some(
            "$.storeId may hold letters, digits, '-', '_' and '.', and starts with a letter or digit"
                .into(),
        );
    }
    None
}

/// Create a store (admin key).
#[utoipa::path(post, path = "/api/v1/stores", tag = "stores", request_body = CreateStore,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Envelope<Store>),
        (status = 400, description = "Invalid body", body = ErrorEnvelope),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Not an admin key", body = ErrorEnvelope),
        (status = 409, description = "The store exists", body = ErrorEnvelope)))]
async fn create_store(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateStore>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    if let Some(problem) = store_id_problem(&body.store_id) {
        return Err(ApiError::bad_request(problem));
    }
    let name = body.name.trim().to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("$.name must not be blank"));
    }
    let id = body.store_id;
    let record = app
        .blocking(move |a| Ok(a.db.create_store(&id, &name)?))
        .await?;
    tracing::info!(store = %record.store_id, key = %caller.key_id, "store created");
    Ok(with_status(StatusCode::CREATED, Store::from(record)))
}

/// The stores this key sees.
#[utoipa::path(get, path = "/api/v1/stores", tag = "stores", security(("bearer" = [])),
    responses(
        (status = 200, description = "Stores, by id", body = Envelope<Vec<Store>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope)))]
async fn list_stores(State(app): State<AppState>, caller: Caller) -> ApiResult<Vec<Store>> {
    let all = app.blocking(|a| Ok(a.db.stores()?)).await?;
    Ok(Envelope::ok(
        all.into_iter()
            .filter(|s| caller.may_see(&s.store_id))
            .map(Store::from)
            .collect(),
    ))
}

/// One store.
#[utoipa::path(get, path = "/api/v1/stores/{storeId}", tag = "stores", security(("bearer" = [])),
    params(("storeId" = String, Path, description = "The store id")),
    responses(
        (status = 200, description = "The store", body = Envelope<Store>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope),
        (status = 403, description = "Another store's key (whether the store exists or not)", body = ErrorEnvelope),
        (status = 404, description = "No such store (admin key)", body = ErrorEnvelope)))]
async fn get_store(
    State(app): State<AppState>,
    caller: Caller,
    Path(store_id): Path<String>,
) -> ApiResult<Store> {
    Ok(Envelope::ok(caller.store(&app, &store_id).await?.into()))
}

#[derive(OpenApi)]
#[openapi(
    paths(create_store, list_stores, get_store),
    components(schemas(CreateStore, Store))
)]
struct Doc;

/// The store routes and their OpenAPI paths.
pub fn routes() -> Routes {
    let router = Router::new()
        .route("/api/v1/stores", get(list_stores).post(create_store))
        .route("/api/v1/stores/{storeId}", get(get_store));
    (router, Doc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_checked() {
        assert!(store_id_problem("berlin-01").is_none());
        assert!(store_id_problem("A.b_c").is_none());
        for bad in ["", "-x", "a b", "ü", &"a".repeat(65), "../x"] {
            assert!(store_id_problem(bad).is_some(), "{bad:?}");
        }
    }
}
