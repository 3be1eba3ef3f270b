//! The OpenAPI 3.1 document of the API, assembled from the parts' documents, and
//! `GET /api/v1/openapi.json` that serves it (as is, without the envelope, so that tools read it).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};

use super::app::AppState;
use super::envelope::{ErrorDetail, ErrorEnvelope};

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("An API key made with `posbridge apikey create`.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The API document (served at this path; kept here as documentation of the route).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object)))]
#[allow(dead_code)]
async fn openapi_json() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "posbridge API",
        description = "The HTTP API of `posbridge serve`. Every answer but /metrics and this \
document is the envelope `{\"success\": true, \"data\": …}` or \
`{\"success\": false, \"error\": {\"code\", \"message\"}}`."
    ),
    paths(openapi_json),
    components(schemas(ErrorEnvelope, ErrorDetail)),
    modifiers(&BearerScheme)
)]
struct BaseDoc;

/// The base document (info, security scheme, error schemas) merged with the parts' documents.
pub fn assemble(parts: impl IntoIterator<Item = OpenApiDoc>) -> OpenApiDoc {
    let mut doc = BaseDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    for part in parts {
        doc.merge(part);
    }
    doc
}

/// `GET /api/v1/openapi.json` serving `doc`.
pub fn route(doc: &OpenApiDoc) -> Router<AppState> {
    let json = Arc::new(serde_json::to_value(doc).expect("the OpenAPI document serializes"));
    Router::new().route(
        "/api/v1/openapi.json",
        get(move || {
            let json = json.clone();
            async move { Json((*json).clone()) }
        }),
    )
}
