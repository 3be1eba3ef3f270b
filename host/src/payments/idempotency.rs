//! Client idempotency keys: the first request with a key is done and its answer kept; the same
//! key with the same request answers that again; with another request it is refused; while the
//! first is in flight, a second one is told to wait (never done twice).

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{PaymentError, MAX_IDEMPOTENCY_KEY_CHARS};
use crate::state::{IdempotencyClaim, StateStore};

/// An operation's answer, and whether it is the stored answer of an earlier request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IdempotentAnswer {
    /// The PSP's answer (the connector action's JSON).
    pub answer: Value,
    /// `true` when the key was used before and this is the first request's answer.
    pub replayed: bool,
}

/// Refuses keys that are empty, too long or hold control characters.
pub fn check_key(key: &str) -> Result<(), PaymentError> {
    if key.trim().is_empty() {
        return Err(PaymentError::InvalidKey(
            "an idempotency key is required and must not be blank".into(),
        ));
    }
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(PaymentError::InvalidKey(format!(
            "longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(PaymentError::InvalidKey(
            "it contains control characters".into(),
        ));
    }
    Ok(())
}

/// The fingerprint of a request: the operation and its input, with object keys sorted, so the
/// same request written in another key order has the same fingerprint.
pub fn fingerprint(operation: &str, input: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(canonical(input).as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON text with the keys of every object sorted.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The key sent to the PSP for a client's key in a store: the two joined, or a digest of them
/// when that would be longer than Stripe's 255 characters.
pub fn psp_key(store_id: &str, key: &str) -> String {
    let joined = format!("{store_id}:{key}");
    if joined.chars().count() <= 255 {
        joined
    } else {
        let digest = Sha256::digest(joined.as_bytes());
        format!("posbridge-{}", hex::encode(digest))
    }
}

/// Does `work` once per (scope, key): the first time, and again only if it failed (a failure is
/// not kept, so the client may retry with the same key).
pub fn once(
    state: &dyn StateStore,
    scope: &str,
    key: &str,
    fingerprint: &str,
    work: impl FnOnce() -> Result<Value, PaymentError>,
) -> Result<IdempotentAnswer, PaymentError> {
    match state.claim_idempotency_key(scope, key, fingerprint)? {
        IdempotencyClaim::Completed {
            fingerprint: first,
            answer,
        } => {
            if first == fingerprint {
                Ok(IdempotentAnswer {
                    answer,
                    replayed: true,
                })
            } else {
                Err(PaymentError::KeyReused { key: key.into() })
            }
        }
        IdempotencyClaim::InFlight { fingerprint: first } => Err(if first == fingerprint {
            PaymentError::InProgress { key: key.into() }
        } else {
            PaymentError::KeyReused { key: key.into() }
        }),
        IdempotencyClaim::Claimed => match work() {
            Ok(answer) => {
                state.complete_idempotency_key(scope, key, &answer)?;
                Ok(IdempotentAnswer {
                    answer,
                    replayed: false,
                })
            }
            Err(e) => {
                if let Err(release) = state.release_idempotency_key(scope, key) {
                    tracing::error!(error = %release, "cannot release an idempotency key");
                }
                Err(e)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use serde_json::json;

    use super::*;
    use crate::state::SqliteStore;

    #[test]
    fn the_same_key_twice_does_the_work_once_and_answers_the_first_result() {
        let state = SqliteStore::open_in_memory().unwrap();
        let calls = AtomicUsize::new(0);
        let work = || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Ok(json!({"id": format!("pi_{n}")}))
        };
        let f = fingerprint(
            "process_payment",
            &json!({"amount": "4.50", "currency": "EUR"}),
        );
        let first = once(&state, "s1", "k1", &f, work).unwrap();
        let second = once(&state, "s1", "k1", &f, work).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            (first.replayed, second.replayed, &second.answer),
            (false, true, &first.answer)
        );
        // The same key in another store is another request.
        let other = once(&state, "s2", "k1", &f, work).unwrap();
        assert!(!other.replayed);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_same_key_with_another_request_is_refused() {
        let state = SqliteStore::open_in_memory().unwrap();
        let a = fingerprint("process_payment", &json!({"amount": "4.50"}));
        let b = fingerprint("process_payment", &json!({"amount": "5.50"}));
        once(&state, "s", "k", &a, || Ok(json!(1))).unwrap();
        let e = once(&state, "s", "k", &b, || panic!("must not run")).unwrap_err();
        assert!(matches!(e, PaymentError::KeyReused { .. }), "{e:?}");
        assert_eq!(e.http_status(), 409);
        let refund = fingerprint("refund_payment", &json!({"amount": "4.50"}));
        assert_ne!(refund, a, "the operation is part of the fingerprint");
    }

    #[test]
    fn a_failure_is_not_kept_so_the_key_can_be_retried() {
        let state = SqliteStore::open_in_memory().unwrap();
        let e = once(&state, "s", "k", "f", || {
            Err(PaymentError::Psp(
                posbridge_plugin_api::ConnectorError::Transient("timeout".into()),
            ))
        })
        .unwrap_err();
        assert_eq!(e.code(), "psp_unavailable");
        let ok = once(&state, "s", "k", "f", || Ok(json!("paid"))).unwrap();
        assert_eq!((ok.answer, ok.replayed), (json!("paid"), false));
    }

    #[test]
    fn two_concurrent_requests_with_one_key_do_the_work_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
        let in_work = Arc::new(Barrier::new(2));
        let second_done = Arc::new(Barrier::new(2));
        let calls = Arc::new(AtomicUsize::new(0));
        let first = {
            let (state, in_work, second_done, calls) = (
                state.clone(),
                in_work.clone(),
                second_done.clone(),
                calls.clone(),
            );
            std::thread::spawn(move || {
                once(&*state, "s", "k", "f", || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    in_work.wait();
                    // Hold the key until the other request has been answered.
                    second_done.wait();
                    Ok(json!("charged"))
                })
            })
        };
        in_work.wait();
        let e = once(&*state, "s", "k", "f", || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(json!("charged again"))
        })
        .unwrap_err();
        second_done.wait();
        assert!(matches!(e, PaymentError::InProgress { .. }), "{e:?}");
        assert_eq!(first.join().unwrap().unwrap().answer, json!("charged"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let again = once(&*state, "s", "k", "f", || panic!("must not run")).unwrap();
        assert_eq!((again.answer, again.replayed), (json!("charged"), true));
    }

    #[test]
    fn keys_and_fingerprints() {
        assert!(check_key("").is_err());
        assert!(check_key("  ").is_err());
        assert!(check_key(&"x".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)).is_err());
        assert!(check_key("a\nb").is_err());
        check_key("till-1:0001").unwrap();
        assert_eq!(
            fingerprint("p", &json!({"a": 1, "b": {"c": 2, "d": [1, 2]}})),
            fingerprint("p", &json!({"b": {"d": [1, 2], "c": 2}, "a": 1}))
        );
        assert_ne!(
            fingerprint("p", &json!({"a": [1, 2]})),
            fingerprint("p", &json!({"a": [2, 1]}))
        );
        assert_eq!(psp_key("store-1", "k"), "store-1:k");
        let long = psp_key(&"s".repeat(200), &"k".repeat(200));
        assert!(long.starts_with("posbridge-") && long.len() <= 255);
    }
}
