//! Idempotency keys: deterministic, derived from the source record, the same on every run.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The idempotency key of a record: a hash of the source connector, the stream and the
/// record's natural id (or, for a record without one, of its whole content).
///
/// ```
/// use posbridge::pipeline::idempotency_key;
/// let a = idempotency_key("kassandro", "sales", &serde_json::json!({"id": "k:1:1:42"}));
/// let b = idempotency_key("kassandro", "sales", &serde_json::json!({"id": "k:1:1:42", "note": "changed"}));
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 32);
/// ```
pub fn idempotency_key(source: &str, stream: &str, record: &Value) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update(b"\0");
    h.update(stream.as_bytes());
    h.update(b"\0");
    match posbridge_plugin_api::model::record_id(record) {
        Some(id) => {
            h.update(b"id\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"content\0");
            h.update(record.to_string().as_bytes());
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// The key of a daily closure: its id plus the keys of the sales it sums, so a supplementary
/// closure for late sales of an already booked day gets a key of its own.
pub fn closure_key(closure_id: &str, sale_keys: &[String]) -> String {
    let mut sorted: Vec<&String> = sale_keys.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(b"closure\0");
    h.update(closure_id.as_bytes());
    for k in sorted {
        h.update(b"\0");
        h.update(k.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}
