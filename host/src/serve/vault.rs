//! [`SecretVault`]: seals and opens JSON values (connector credentials, PSP configs) with
//! AES-256-GCM under the [`MasterKey`].
//!
//! Each value is bound to its owner: the associated data is the store id and the purpose (e.g.
//! `credentials:kassandro`, `psp:stripe`), so a sealed value copied to another store or purpose
//! does not open. A fresh random 96-bit nonce is drawn for every seal.
//!
//! ```
//! use posbridge::serve::master_key::MasterKey;
//! use posbridge::serve::vault::SecretVault;
//! let vault = SecretVault::new(&MasterKey::from_hex(&"11".repeat(32), "example").unwrap());
//! let sealed = vault.seal("store-1", "psp:stripe", &serde_json::json!({"api_key": "sk_test"})).unwrap();
//! let opened = vault.open("store-1", "psp:stripe", &sealed).unwrap();
//! assert_eq!(opened["api_key"], "sk_test");
//! assert!(vault.open("store-2", "psp:stripe", &sealed).is_err());
//! ```
//!
//! Persisting sealed values is [`crate::serve::db::ServeDb::put_secret`] /
//! [`crate::serve::db::ServeDb::secret`]; [`crate::serve::app::AppInner::put_secret`] and
//! [`crate::serve::app::AppInner::secret`] do both steps.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde_json::Value;

use super::master_key::MasterKey;

/// A sealed value: what is stored. Neither part reveals the plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 12 random bytes.
    pub nonce: Vec<u8>,
    /// The encrypted JSON text followed by the 16-byte authentication tag.
    pub ciphertext: Vec<u8>,
}

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Wrong master key, a value moved to another store or purpose, or tampered bytes: AES-GCM
    /// cannot tell these apart, and says nothing about the plaintext.
    #[error("cannot open the sealed {purpose} of store {store}: it was sealed under another master key, for another store or purpose, or it was altered")]
    CannotOpen { store: String, purpose: String },
    #[error("the sealed {purpose} of store {store} has a nonce of {len} bytes, not 12")]
    BadNonce {
        store: String,
        purpose: String,
        len: usize,
    },
    #[error("cannot seal the {purpose} of store {store}: {reason}")]
    CannotSeal {
        store: String,
        purpose: String,
        reason: String,
    },
}

/// Seals and opens JSON under one master key.
#[derive(Clone)]
pub struct SecretVault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretVault(..)")
    }
}

/// The associated data binding a value to its store and purpose (length-prefixed, so that
/// `("a:b", "c")` and `("a", "b:c")` differ).
fn associated_data(store: &str, purpose: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(16 + store.len() + purpose.len());
    aad.extend_from_slice(&(store.len() as u64).to_be_bytes());
    aad.extend_from_slice(store.as_bytes());
    aad.extend_from_slice(&(purpose.len() as u64).to_be_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad
}

impl SecretVault {
    /// A vault under `key`.
    pub fn new(key: &MasterKey) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.bytes().into()),
        }
    }

    /// Encrypts `value` for `store` and `purpose`.
    pub fn seal(&self, store: &str, purpose: &str, value: &Value) -> Result<Sealed, VaultError> {
        let cannot = |reason: String| VaultError::CannotSeal {
            store: store.to_string(),
            purpose: purpose.to_string(),
            reason,
        };
        let plaintext = serde_json::to_vec(value).map_err(|e| cannot(e.to_string()))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(store, purpose);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| cannot("encryption failed".into()))?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts a value sealed for `store` and `purpose`.
    pub fn open(&self, store: &str, purpose: &str, sealed: &Sealed) -> Result<Value, VaultError> {
        if sealed.nonce.len() != 12 {
            return Err(VaultError::BadNonce {
                store: store.to_string(),
                purpose: purpose.to_string(),
                len: sealed.nonce.len(),
            });
        }
        let cannot = || VaultError::CannotOpen {
            store: store.to_string(),
            purpose: purpose.to_string(),
        };
        let aad = associated_data(store, purpose);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| cannot())?;
        // Authenticated bytes are ours, so they are JSON; still no panic if not.
        serde_json::from_slice(&plaintext).map_err(|_| cannot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vault(byte: u8) -> SecretVault {
        SecretVault::new(&MasterKey::from_hex(&format!("{byte:02x}").repeat(32), "test").unwrap())
    }

    #[test]
    fn a_sealed_value_opens_to_itself_and_does_not_show_the_plaintext() {
        let v = vault(1);
        let value = json!({"api_key": "sk_live_secret", "amount": "12.30"});
        let sealed = v.seal("s1", "psp:stripe", &value).unwrap();
        assert_eq!(v.open("s1", "psp:stripe", &sealed).unwrap(), value);
        let needle = b"sk_live_secret";
        assert!(!sealed.ciphertext.windows(needle.len()).any(|w| w == needle));
        // A fresh nonce every time: sealing twice gives different bytes.
        let again = v.seal("s1", "psp:stripe", &value).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn another_master_key_cannot_open_it() {
        let sealed = vault(1).seal("s1", "p", &json!({"a": 1})).unwrap();
        let err = vault(2).open("s1", "p", &sealed).unwrap_err();
        assert!(matches!(err, VaultError::CannotOpen { .. }), "{err:?}");
        assert!(err.to_string().contains("another master key"), "{err}");
    }

    #[test]
    fn tampered_bytes_do_not_open() {
        let v = vault(1);
        let mut sealed = v.seal("s1", "p", &json!({"a": 1})).unwrap();
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            v.open("s1", "p", &sealed),
            Err(VaultError::CannotOpen { .. })
        ));
        let mut sealed = v.seal("s1", "p", &json!({"a": 1})).unwrap();
        sealed.nonce[3] ^= 0x80;
        assert!(v.open("s1", "p", &sealed).is_err());
        sealed.nonce.pop();
        assert!(matches!(
            v.open("s1", "p", &sealed),
            Err(VaultError::BadNonce { len: 11, .. })
        ));
    }

    #[test]
    fn a_value_is_bound_to_its_store_and_purpose() {
        let v = vault(1);
        let sealed = v.seal("a:b", "c", &json!({"a": 1})).unwrap();
        assert!(v.open("a:b", "c", &sealed).is_ok());
        assert!(v.open("a", "b:c", &sealed).is_err());
        assert!(v.open("other", "c", &sealed).is_err());
        assert!(v.open("a:b", "psp:stripe", &sealed).is_err());
    }
}
