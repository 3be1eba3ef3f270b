//! Sending one request through the host and reading Kassandro's answer.

use posbridge_plugin_api::{ConnectorError, Host, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::error::{error_message, KassandroError};

/// The header the API reads its tokens from (document: Header-Key "kassandro-token").
pub const TOKEN_HEADER: &str = "kassandro-token";

/// Sends a request and returns the JSON body of a successful answer.
///
/// 401/403 become [`KassandroError::Unauthorized`]; the vendor's error body becomes
/// [`KassandroError::Refused`]; 429, 408 and 5xx get the host's usual typed errors.
pub fn call_json(host: &Host, req: HttpRequest, endpoint: &str) -> Result<Value, KassandroError> {
    let resp = host.http(req)?;
    read_answer(&resp, endpoint)
}

/// Reads an answer (see [`call_json`]).
pub fn read_answer(resp: &HttpResponse, endpoint: &str) -> Result<Value, KassandroError> {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let vendor_msg = body.as_ref().and_then(error_message);
    match resp.status {
        401 | 403 => Err(KassandroError::Unauthorized {
            endpoint: endpoint.into(),
            msg: vendor_msg.unwrap_or_else(|| format!("HTTP {}", resp.status)),
        }),
        429 | 408 | 500..=599 => {
            resp.error_for_status(&format!("kassandro: {endpoint}"))?;
            unreachable!("error_for_status fails on these statuses")
        }
        200..=299 => {
            let body = resp
                .json()
                .map_err(|e| ConnectorError::Transient(format!("kassandro: {endpoint}: {e}")))?;
            match error_message(&body) {
                Some(msg) => Err(KassandroError::Refused {
                    endpoint: endpoint.into(),
                    status: resp.status,
                    msg,
                }),
                None => Ok(body),
            }
        }
        status => Err(KassandroError::Refused {
            endpoint: endpoint.into(),
            status,
            msg: vendor_msg.unwrap_or_else(|| resp.snippet()),
        }),
    }
}

pub use posbridge_plugin_api::url::percent_encode as encode_query_value;

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".into(), "3".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn maps_statuses_and_bodies() {
        assert!(matches!(
            read_answer(&resp(401, r#"{"error":true,"msg":"Invalid token."}"#), "receipts"),
            Err(KassandroError::Unauthorized { msg, .. }) if msg == "Invalid token."
        ));
        assert!(matches!(
            read_answer(&resp(429, ""), "receipts"),
            Err(KassandroError::Host(ConnectorError::RateLimited { retry_after: Some(d), .. })) if d.as_secs() == 3
        ));
        assert!(matches!(
            read_answer(&resp(503, "busy"), "receipts"),
            Err(KassandroError::Host(ConnectorError::Transient(_)))
        ));
        assert!(matches!(
            read_answer(&resp(400, r#"{"error":true,"msg":"limit must be between 1 and 1000."}"#), "receipts"),
            Err(KassandroError::Refused { status: 400, msg, .. }) if msg.starts_with("limit")
        ));
        assert!(matches!(
            read_answer(&resp(200, "[{\"_id\":"), "receipts"),
            Err(KassandroError::Host(ConnectorError::Transient(m))) if m.contains("receipts")
        ));
        assert_eq!(
            read_answer(&resp(200, "[]"), "receipts").unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("a b+c/=&"), "a%20b%2Bc%2F%3D%26");
        assert_eq!(encode_query_value("Key-1_2.3~"), "Key-1_2.3~");
    }
}
