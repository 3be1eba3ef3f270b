//! `GET /api/v1/connectors`: the loaded connector plugins with their streams, actions and
//! config JSON Schema (any valid key).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::app::AppState;
use super::auth::Caller;
use super::envelope::{ApiResult, Envelope, ErrorEnvelope};
use super::Routes;

/// A stream a connector reads or writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorStream {
    pub name: String,
    pub read: bool,
    pub write: bool,
}

/// A loaded connector.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connector {
    pub name: String,
    pub version: String,
    pub vendor: String,
    pub description: String,
    /// `source`, `sink`, `actions`.
    pub kinds: Vec<String>,
    pub streams: Vec<ConnectorStream>,
    /// Names of its actions.
    pub actions: Vec<String>,
    /// The JSON Schema its config (credentials) must satisfy.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
}

/// The loaded connectors, by name.
#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors", security(("bearer" = [])),
    responses(
        (status = 200, description = "Connectors", body = Envelope<Vec<Connector>>),
        (status = 401, description = "No or bad key", body = ErrorEnvelope)))]
async fn list_connectors(
    State(app): State<AppState>,
    _caller: Caller,
) -> ApiResult<Vec<Connector>> {
    let list = app
        .registry
        .entries()
        .map(|e| {
            let m = &e.manifest;
            Connector {
                name: m.name.clone(),
                version: m.version.clone(),
                vendor: m.vendor.clone(),
                description: m.description.clone(),
                kinds: m.kinds().into_iter().map(str::to_string).collect(),
                streams: m
                    .streams
                    .iter()
                    .map(|s| ConnectorStream {
                        name: s.name.clone(),
                        read: s.read,
                        write: s.write,
                    })
                    .collect(),
                actions: m.actions.iter().map(|a| a.name.clone()).collect(),
                config_schema: m.config_schema.clone(),
            }
        })
        .collect();
    Ok(Envelope::ok(list))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_connectors),
    components(schemas(Connector, ConnectorStream))
)]
struct Doc;

/// The connector routes and their OpenAPI paths.
pub fn routes() -> Routes {
    (
        Router::new().route("/api/v1/connectors", get(list_connectors)),
        Doc::openapi(),
    )
}
