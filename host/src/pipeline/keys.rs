//! Idempotency keys: deterministic, derived from the source record, the same on every run.
//!
//! Two kinds of stream (see `docs/pipelines.md`, "Keys"):
//! - **documents** (`sales`, `closures`, `balance_transactions`) never change once issued: the key
//!   is the record's id, and a record whose id comes back with other content is a conflict
//!   ([`content_fingerprint`] tells);
//! - **states** (products, categories, payment methods, registers, inventory, orders, suppliers,
//!   PSP payments, refunds and payouts, and any stream posbridge does not know) change over time:
//!   the key is the id *and a version* — the vendor's `updated_at` when the record has one, else
//!   a hash of its content — so an updated price reaches the sink as a new delivery.

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use super::canonical::Canonical;

/// The streams whose records are immutable documents, keyed by id alone.
pub const DOCUMENT_STREAMS: &[&str] = &["sales", "closures", "balance_transactions"];

/// Fields that carry a record's version, in order of preference.
const VERSION_FIELDS: &[&str] = &[
    "updated_at",
    "updatedAt",
    "updated",
    "modified_at",
    "version",
];

/// Whether records of `stream` are immutable documents (see the module docs).
pub fn is_document_stream(stream: &str) -> bool {
    DOCUMENT_STREAMS.contains(&stream)
}

/// The idempotency key of a record: a hash of the source connector, the stream and the
/// record's natural id (or, for a record without one, of its whole content) — plus, for
/// mutable streams, the record's version.
///
/// ```
/// use posbridge::pipeline::idempotency_key;
/// use serde_json::json;
/// // A sale is a document: the same id is the same sale.
/// let a = idempotency_key("kassandro", "sales", &json!({"id": "k:1:1:42"}));
/// let b = idempotency_key("kassandro", "sales", &json!({"id": "k:1:1:42", "note": "changed"}));
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 32);
/// // A product's new price is a new version, delivered again.
/// let p1 = idempotency_key("kassandro", "products", &json!({"id": "7", "price": "2.50"}));
/// let p2 = idempotency_key("kassandro", "products", &json!({"id": "7", "price": "2.70"}));
/// assert_ne!(p1, p2);
/// ```
pub fn idempotency_key(source: &str, stream: &str, record: &Value) -> String {
    key_of(source, stream, record)
}

/// What keys and fingerprints read of a record: its members, ids and versions as text, and its
/// JSON (serialized compact with sorted keys, as `Value::to_string` spells it). Implemented by
/// `Value` and by the runner's borrowed [`Canonical`] view of a line; both give the same keys.
pub(super) trait RecordJson {
    /// The member `name` of an object.
    fn member(&self, name: &str) -> Option<&Self>;
    fn as_text(&self) -> Option<&str>;
    fn as_number(&self) -> Option<&Number>;
    /// Appends the JSON, compact with sorted keys, to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

impl RecordJson for Value {
    fn member(&self, name: &str) -> Option<&Self> {
        self.get(name)
    }
    fn as_text(&self) -> Option<&str> {
        self.as_str()
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(out, self);
    }
}

impl RecordJson for Canonical<'_> {
    fn member(&self, name: &str) -> Option<&Self> {
        self.get(name)
    }
    fn as_text(&self) -> Option<&str> {
        match self {
            Canonical::String(s) | Canonical::EscapedString(s) => Some(s),
            _ => None,
        }
    }
    fn as_number(&self) -> Option<&Number> {
        match self {
            Canonical::Number(n) => Some(n),
            _ => None,
        }
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        Canonical::write_json(self, out)
    }
}

/// The record's natural id: its `id` member, a string or a number (as `model::record_id`).
fn natural_id<R: RecordJson>(record: &R) -> Option<String> {
    let id = record.member("id")?;
    id.as_text()
        .map(str::to_owned)
        .or_else(|| id.as_number().map(Number::to_string))
}

/// [`idempotency_key`] of any view of the record.
pub(super) fn key_of<R: RecordJson>(source: &str, stream: &str, record: &R) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update(b"\0");
    h.update(stream.as_bytes());
    h.update(b"\0");
    match natural_id(record) {
        Some(id) => {
            h.update(b"id\0");
            h.update(id.as_bytes());
            if !is_document_stream(stream) {
                h.update(b"\0version\0");
                match record_version(record) {
                    Some(v) => h.update(v.as_bytes()),
                    None => {
                        h.update(b"content\0");
                        hash_json(&mut h, record);
                    }
                }
            }
        }
        None => {
            h.update(b"content\0");
            hash_json(&mut h, record);
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// The vendor's version of a record (`updated_at` and the like), when it carries one.
fn record_version<R: RecordJson>(record: &R) -> Option<String> {
    VERSION_FIELDS.iter().find_map(|f| {
        let v = record.member(f)?;
        match (v.as_text(), v.as_number()) {
            (Some(s), _) if !s.is_empty() => Some(s.to_owned()),
            (_, Some(n)) => Some(n.to_string()),
            _ => None,
        }
    })
}

/// A fingerprint of what a document says, to tell a harmless re-read of a record from the same
/// id coming back with other content. For sales it covers the money (kind, currency, lines,
/// payments, taxes, totals) and nothing a source may add later (fiscal data, attachments,
/// loyalty); for other documents, the whole record. `None` for mutable streams, whose key already
/// changes with the content.
///
/// ```
/// use posbridge::pipeline::content_fingerprint;
/// use serde_json::json;
/// let a = content_fingerprint("sales", &json!({"id": "1", "totals": {"gross": "4.50"}})).unwrap();
/// let b = content_fingerprint("sales", &json!({"id": "1", "totals": {"gross": "4.50"}, "attachments": [1]})).unwrap();
/// let c = content_fingerprint("sales", &json!({"id": "1", "totals": {"gross": "5.40"}})).unwrap();
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// ```
pub fn content_fingerprint(stream: &str, record: &Value) -> Option<String> {
    fingerprint_of(stream, record)
}

/// The members of a sale its fingerprint covers, in the order they are hashed.
pub(super) const SALE_FINGERPRINT_FIELDS: [&str; 6] =
    ["kind", "currency", "lines", "payments", "taxes", "totals"];

/// [`content_fingerprint`] of any view of the record.
pub(super) fn fingerprint_of<R: RecordJson>(stream: &str, record: &R) -> Option<String> {
    if !is_document_stream(stream) {
        return None;
    }
    // Written out whole and hashed once: the same digest as hashing it piece by piece. Into a
    // buffer each thread keeps, so a record costs no allocation for it.
    FINGERPRINT_TEXT.with_borrow_mut(|text| {
        text.clear();
        if stream == "sales" {
            for field in SALE_FINGERPRINT_FIELDS {
                text.extend_from_slice(field.as_bytes());
                text.push(0);
                if let Some(v) = record.member(field) {
                    v.write_json(text);
                }
                text.push(0);
            }
        } else {
            record.write_json(text);
        }
        let fingerprint = hex::encode(&Sha256::digest(&text[..])[..8]);
        // A very large document's text is not kept for the next one.
        if text.capacity() > FINGERPRINT_TEXT_KEPT {
            *text = Vec::new();
        }
        Some(fingerprint)
    })
}

/// The largest fingerprint text a thread keeps for the next record (a sale's is ≈ 1.5 KB).
const FINGERPRINT_TEXT_KEPT: usize = 64 * 1024;

thread_local! {
    static FINGERPRINT_TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Feeds the record's JSON to the hash as `Value::to_string` spells it (compact, keys sorted):
/// stored keys and fingerprints stay what they were.
fn hash_json<R: RecordJson>(h: &mut Sha256, record: &R) {
    let mut text = Vec::new();
    record.write_json(&mut text);
    h.update(&text);
}

/// The ledger key under which a conflicting version of a record is parked, so that re-reading
/// the same conflicting version does not park it again (and `dlq retry` of it books that
/// version as a record of its own).
pub fn conflict_key(key: &str, fingerprint: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"conflict\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(fingerprint.as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mutable_streams_are_keyed_by_version() {
        let v1 = json!({"id": "i1", "product_id": "p", "quantity": "3", "updated_at": "2024-05-01T10:00:00Z"});
        let v1_again = json!({"id": "i1", "product_id": "p", "quantity": "3", "updated_at": "2024-05-01T10:00:00Z"});
        let v2 = json!({"id": "i1", "product_id": "p", "quantity": "2", "updated_at": "2024-05-01T11:00:00Z"});
        let k = |r: &Value| idempotency_key("erp", "inventory", r);
        assert_eq!(k(&v1), k(&v1_again));
        assert_ne!(k(&v1), k(&v2));
        // Without a version field the content decides.
        let s1 = json!({"id": "s", "name": "ACME"});
        let s2 = json!({"id": "s", "name": "ACME GmbH"});
        assert_ne!(
            idempotency_key("erp", "suppliers", &s1),
            idempotency_key("erp", "suppliers", &s2)
        );
        // An unknown stream is treated as mutable.
        assert_ne!(
            idempotency_key("x", "widgets", &s1),
            idempotency_key("x", "widgets", &s2)
        );
    }

    #[test]
    fn documents_ignore_content_for_the_key_but_not_for_the_fingerprint() {
        let a = json!({"id": "c1", "totals": {"gross": "10.00"}});
        let b = json!({"id": "c1", "totals": {"gross": "11.00"}});
        assert_eq!(
            idempotency_key("k", "closures", &a),
            idempotency_key("k", "closures", &b)
        );
        assert_ne!(
            content_fingerprint("closures", &a),
            content_fingerprint("closures", &b)
        );
        assert_eq!(content_fingerprint("products", &a), None);
    }

    #[test]
    fn fingerprints_hash_the_compact_json_of_the_money_fields() {
        // Fingerprints are stored in ledgers: the way they are computed must not move them.
        let sale = json!({"id": "s1", "kind": "sale", "currency": "EUR",
            "lines": [{"qty": "1", "name": "Brötchen \"hell\""}], "payments": [], "taxes": [],
            "totals": {"net": "1.00", "gross": "1.07"}, "fiscal": {"sig": "x"}});
        let mut h = Sha256::new();
        for field in ["kind", "currency", "lines", "payments", "taxes", "totals"] {
            h.update(field.as_bytes());
            h.update(b"\0");
            h.update(sale[field].to_string().as_bytes());
            h.update(b"\0");
        }
        let expected = hex::encode(&h.finalize()[..8]);
        assert_eq!(content_fingerprint("sales", &sale), Some(expected));
    }
}
