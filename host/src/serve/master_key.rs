//! The master key that seals connector credentials and PSP configs at rest: 32 bytes, given as
//! 64 hex characters in `POSBRIDGE_MASTER_KEY` or in a file (`--master-key-file`).

use std::path::Path;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "POSBRIDGE_MASTER_KEY";

/// How to make a key, appended to every refusal.
pub const HOW_TO_MAKE_ONE: &str = "make one with `openssl rand -hex 32` (64 hex characters) and \
pass it in POSBRIDGE_MASTER_KEY or in a file named by --master-key-file; keep it safe: what it \
sealed cannot be read without it";

/// 32 secret bytes. Never printed: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why no usable master key was found.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("no master key: POSBRIDGE_MASTER_KEY is not set and no --master-key-file was given; {HOW_TO_MAKE_ONE}")]
    Missing,
    #[error(
        "the master key from {source_name} is not 64 hex characters ({reason}); {HOW_TO_MAKE_ONE}"
    )]
    Malformed { source_name: String, reason: String },
    #[error("cannot read the master key file {path}: {error}; {HOW_TO_MAKE_ONE}")]
    File { path: String, error: std::io::Error },
}

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace ignored). `source_name` names where the
    /// text came from, for the error.
    pub fn from_hex(text: &str, source_name: &str) -> Result<Self, MasterKeyError> {
        let malformed = |reason: String| MasterKeyError::Malformed {
            source_name: source_name.to_string(),
            reason,
        };
        let text = text.trim();
        if text.len() != 64 {
            return Err(malformed(format!("found {} characters", text.len())));
        }
        let bytes = hex::decode(text).map_err(|_| malformed("not hexadecimal".into()))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// The key from `file` if given, else from `POSBRIDGE_MASTER_KEY`.
    pub fn load(file: Option<&Path>) -> Result<Self, MasterKeyError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|error| MasterKeyError::File {
                path: path.display().to_string(),
                error,
            })?;
            return Self::from_hex(&text, &path.display().to_string());
        }
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_hex(&text, MASTER_KEY_ENV),
            _ => Err(MasterKeyError::Missing),
        }
    }

    /// The raw bytes, for the cipher.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_64_hex_characters_and_refuses_others_with_a_how_to() {
        let key = MasterKey::from_hex(&format!("  {}\n", "ab".repeat(32)), "test").unwrap();
        assert_eq!(key.bytes(), &[0xab; 32]);
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
        for bad in ["abcd", &"zz".repeat(32), &"ab".repeat(33)] {
            let err = MasterKey::from_hex(bad, "test").unwrap_err().to_string();
            assert!(err.contains("openssl rand -hex 32"), "{err}");
        }
    }
}
