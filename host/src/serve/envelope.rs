//! The answer envelope every API response uses, and the errors that fill it:
//! `{"success": true, "data": …}` or `{"success": false, "error": {"code", "message"}}`.
//!
//! Handlers return `Result<Envelope<T>, ApiError>` (see [`ApiResult`]) and take JSON bodies with
//! [`ApiJson`], which names the JSON path of what is wrong. [`plain_errors_to_envelope`] turns
//! the framework's own plain answers (405, 413 from the body limit, …) into the envelope too.
//! Messages never carry stack traces or SQL: unexpected failures are logged and answered as
//! `internal` with a fixed text.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// A successful answer: `{"success": true, "data": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    pub success: bool,
    /// The answer.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps `data`.
    pub fn ok(data: T) -> Self {
        Self {
            success: true,
            data,
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// A successful answer with another status than 200 (e.g. 201 Created).
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> Response {
    (status, Json(Envelope::ok(data))).into_response()
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `rate_limited`, `timeout`, `internal`.
    pub code: String,
    /// What happened and, where possible, what to do.
    pub message: String,
}

/// A failed answer: `{"success": false, "error": {…}}`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDetail,
}

/// An error answer: status, code and message (plus `Retry-After` for 429).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

/// What handlers return.
pub type ApiResult<T> = Result<Envelope<T>, ApiError>;

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }
    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests for this API key; retry after {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }
    /// 500 `internal`: logs `detail` (which may name tables or files) and answers a fixed text.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            success: false,
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body of type `T`. Refusals are enveloped: 415 without a JSON content type,
/// 413 above the body limit, 400 naming the JSON path and the problem (`$.lines[0].qty: invalid
/// type: string "x", expected u32`, `$: missing field `storeId``).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the server's limit",
                )
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserializes a body, naming the JSON path of the first problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        ApiError::bad_request(format!("invalid request body at {at}: {}", err.inner()))
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    Ok(value)
}

/// Middleware: answers that are errors without a JSON body (the router's 405, the body
/// limit's 413, …) get the envelope, with a code from the status. Headers such as `Allow` stay.
pub async fn plain_errors_to_envelope(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _plain_body) = response.into_parts();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not accept that method (see the Allow header)".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the server's limit".to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json".to_string(),
        ),
        s if s.is_server_error() => (
            "internal",
            "internal error; the server log has the details".to_string(),
        ),
        s => (
            "invalid_request",
            s.canonical_reason().unwrap_or("bad request").to_string(),
        ),
    };
    let body = serde_json::to_vec(&ErrorEnvelope {
        success: false,
        error: ErrorDetail {
            code: code.to_string(),
            message,
        },
    })
    .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        store_id: String,
        lines: Vec<Line>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        qty: u32,
    }

    #[test]
    fn body_errors_name_the_json_path() {
        let e = parse_json::<Body>(br#"{"lines": []}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("$: missing field `storeId`"), "{e}");
        let e = parse_json::<Body>(br#"{"storeId": "a", "lines": [{"qty": "x"}]}"#).unwrap_err();
        assert!(e.message.contains("$.lines[0].qty"), "{e}");
        let e = parse_json::<Body>(br#"{"storeId": "a", "lines": []} x"#).unwrap_err();
        assert!(e.message.contains("trailing"), "{e}");
        assert!(parse_json::<Body>(br#"{"storeId": "a", "lines": [{"qty": 1}]}"#).is_ok());
    }
}
