//! API keys: `pbk_<id>_<secret>`. The id (16 hex characters) is public and finds the key's row;
//! the secret (64 hex characters, 256 random bits) is shown once and stored only as its
//! SHA-256, compared in constant time. A slow password hash is not needed: the secret is random,
//! not chosen by a person, so there is nothing to guess.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every key starts with.
pub const KEY_PREFIX: &str = "pbk_";

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages stores and pipelines and sees every store.
    Admin,
    /// Sees its own store only.
    Store,
}

impl Role {
    /// The name stored in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Store => "store",
        }
    }
}

/// A freshly made key: the full text (to show once) and what is stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The public id.
    pub id: String,
    /// `pbk_<id>_<secret>`: the only time the secret exists outside the caller's hands.
    pub full: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
}

impl NewKey {
    /// A key with a random id and secret.
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id);
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let id = hex::encode(id);
        let secret = hex::encode(secret);
        Self {
            full: format!("{KEY_PREFIX}{id}_{secret}"),
            secret_hash: hash_secret(&secret),
            id,
        }
    }

    /// The public part (`pbk_<id>`), safe to list and log.
    pub fn prefix(&self) -> String {
        public_prefix(&self.id)
    }
}

/// `pbk_<id>`.
pub fn public_prefix(id: &str) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// A key as presented by a client, split into id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

/// Splits `pbk_<id>_<secret>`; `None` for anything else.
pub fn parse_key(text: &str) -> Option<PresentedKey<'_>> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hexish = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, 16) && hexish(secret, 64)).then_some(PresentedKey { id, secret })
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, comparing every byte whatever the first
/// difference (no timing hint about how much of the hash matched).
pub fn secret_matches(secret: &str, stored_hash: &str) -> bool {
    let computed = hash_secret(secret);
    let (a, b) = (computed.as_bytes(), stored_hash.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_hash() {
        let key = NewKey::generate();
        let parsed = parse_key(&key.full).unwrap();
        assert_eq!(parsed.id, key.id);
        assert!(secret_matches(parsed.secret, &key.secret_hash));
        assert!(!key.secret_hash.contains(parsed.secret));
        let other = NewKey::generate();
        assert_ne!(other.id, key.id);
        assert!(!secret_matches(parsed.secret, &other.secret_hash));
        assert!(!secret_matches(parsed.secret, ""));
        assert_eq!(key.prefix(), format!("pbk_{}", key.id));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let key = NewKey::generate();
        assert!(parse_key(&key.full[1..]).is_none());
        assert!(parse_key(&format!("{}0", key.full)).is_none());
        assert!(parse_key("pbk_abc_def").is_none());
        assert!(parse_key("Bearer xyz").is_none());
        assert!(parse_key(&format!("pbk_{}_{}", "g".repeat(16), "0".repeat(64))).is_none());
    }
}
