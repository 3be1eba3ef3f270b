//! The `X-SIGNATURE` header: the request's fields signed with the client's RSA key
//! (RSASSA-PKCS1-v1_5 over SHA-256), as Kenz'up's security page describes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::Sha256;

/// Kenz'up's minimum key length.
pub const MIN_KEY_BITS: usize = 2048;

/// Why a private key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("private_key_pem is neither a PKCS#8 nor a PKCS#1 RSA private key in PEM")]
    NotPem,
    #[error("private_key_pem is {0} bits; Kenz'up requires at least {MIN_KEY_BITS}")]
    TooShort(usize),
}

/// The fields of one request that the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields<'a> {
    pub client_id: &'a str,
    /// `host[:port]` as in the HTTP `Host` header.
    pub host: &'a str,
    pub method: &'a str,
    /// RFC 3339 with offset.
    pub timestamp: &'a str,
    /// The request path without the query string.
    pub uri: &'a str,
    /// The request body (empty for GET).
    pub payload: &'a [u8],
}

impl SignedFields<'_> {
    /// The signed content: `client_id=…,host=…,method=…,timestamp=…,uri=…,payload=<base64>`.
    pub fn content(&self) -> String {
        format!(
            "client_id={},host={},method={},timestamp={},uri={},payload={}",
            self.client_id,
            self.host,
            self.method,
            self.timestamp,
            self.uri,
            BASE64.encode(self.payload)
        )
    }
}

/// Signs requests with the client's private key.
#[derive(Clone)]
pub struct RequestSigner {
    key: SigningKey<Sha256>,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("RequestSigner(..)")
    }
}

impl RequestSigner {
    /// Loads a PEM private key (PKCS#8 or PKCS#1) of at least 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pem = pem.trim();
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| KeyError::NotPem)?;
        let bits = key.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooShort(bits));
        }
        Ok(Self {
            key: SigningKey::<Sha256>::new(key),
        })
    }

    /// The `X-SIGNATURE` header value: the content followed by `,signature=<base64>`.
    pub fn header_value(&self, fields: &SignedFields<'_>) -> String {
        let content = fields.content();
        let signature = self.key.sign(content.as_bytes());
        format!(
            "{content},signature={}",
            BASE64.encode(signature.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use rsa::RsaPublicKey;

    const PRIVATE: &str = include_str!("../tests/fixtures/test-private.pem");
    const PUBLIC: &str = include_str!("../tests/fixtures/test-public.pem");

    fn fields() -> SignedFields<'static> {
        SignedFields {
            client_id: "POS_234",
            host: "kenzup.com",
            method: "GET",
            timestamp: "2020-02-12T19:20:30+01:00",
            uri: "/api/v1/ledger/export-sales/b5f6e9e3/json",
            payload: b"",
        }
    }

    #[test]
    fn content_joins_fields_in_documented_order() {
        assert_eq!(
            fields().content(),
            "client_id=POS_234,host=kenzup.com,method=GET,timestamp=2020-02-12T19:20:30+01:00,\
             uri=/api/v1/ledger/export-sales/b5f6e9e3/json,payload="
        );
        let body = SignedFields {
            payload: br#"{"a":1}"#,
            ..fields()
        };
        assert!(body.content().ends_with(",payload=eyJhIjoxfQ=="));
    }

    #[test]
    fn header_verifies_with_the_public_key() {
        let signer = RequestSigner::from_pem(PRIVATE).unwrap();
        let header = signer.header_value(&fields());
        let (content, sig) = header.rsplit_once(",signature=").unwrap();
        assert_eq!(content, fields().content());
        let public = RsaPublicKey::from_public_key_pem(PUBLIC).unwrap();
        let verifier = VerifyingKey::<Sha256>::new(public);
        let sig = Signature::try_from(BASE64.decode(sig).unwrap().as_slice()).unwrap();
        assert!(verifier.verify(content.as_bytes(), &sig).is_ok());
        // A changed field no longer verifies.
        let other = SignedFields {
            method: "POST",
            ..fields()
        }
        .content();
        assert!(verifier.verify(other.as_bytes(), &sig).is_err());
    }

    #[test]
    fn rejects_garbage_keys() {
        assert!(matches!(
            RequestSigner::from_pem("not a key"),
            Err(KeyError::NotPem)
        ));
    }
}
