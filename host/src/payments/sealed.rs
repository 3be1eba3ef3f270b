//! Where a store's secrets (its PSP config) are kept: sealed (encrypted) at rest. `serve` backs
//! this with its AES-256-GCM vault; [`MemorySealedStore`] is for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

/// A failure of the sealed store (its message must not carry the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed store: {0}")]
pub struct SealedError(pub String);

/// Secrets per store and purpose (e.g. `psp`), encrypted where they are kept.
pub trait SealedStore: Send + Sync {
    /// Stores (or replaces) a value.
    fn put(&self, store_id: &str, purpose: &str, value: &Value) -> Result<(), SealedError>;
    /// The value, if one was stored.
    fn get(&self, store_id: &str, purpose: &str) -> Result<Option<Value>, SealedError>;
}

/// A [`SealedStore`] in memory, for tests: nothing is encrypted or kept.
#[derive(Debug, Default)]
pub struct MemorySealedStore {
    values: Mutex<HashMap<(String, String), Value>>,
}

impl SealedStore for MemorySealedStore {
    fn put(&self, store_id: &str, purpose: &str, value: &Value) -> Result<(), SealedError> {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((store_id.to_string(), purpose.to_string()), value.clone());
        Ok(())
    }

    fn get(&self, store_id: &str, purpose: &str) -> Result<Option<Value>, SealedError> {
        Ok(self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(store_id.to_string(), purpose.to_string()))
            .cloned())
    }
}
