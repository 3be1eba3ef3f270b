//! Verifying a webhook's `Stripe-Signature` header: `t=<unix seconds>,v1=<hex>[,v1=…][,v0=…]`,
//! where each `v1` is HMAC-SHA256 (key: the endpoint's signing secret) over `"{t}.{payload}"`.
//! Signatures are compared in constant time; a timestamp more than the tolerance away from
//! the host's clock is refused (a replayed old event).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Stripe's default tolerance, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("Stripe-Signature has no timestamp t=")]
    NoTimestamp,
    #[error("Stripe-Signature has no v1 signature")]
    NoV1,
    #[error("timestamp {t} is {age} s away from now, outside the {TOLERANCE_SECS} s tolerance")]
    Stale { t: i64, age: i64 },
    #[error("no v1 signature matches the payload (wrong secret or altered payload)")]
    Mismatch,
    #[error("no webhook signing secret: set webhook_secret or pass secret")]
    NoSecret,
    #[error("the payload is not a JSON event: {0}")]
    NotJson(String),
}

/// The parts of a `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Every `v1` value, hex-decoded (values that are not hex are dropped: they cannot match).
    pub v1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Parses the header; other schemes (`v0`, unknown keys) are ignored as Stripe's libraries do.
    pub fn parse(header: &str) -> Result<Self, WebhookError> {
        if header.trim().is_empty() {
            return Err(WebhookError::MissingHeader);
        }
        let mut timestamp = None;
        let mut v1 = Vec::new();
        let mut saw_v1 = false;
        for item in header.split(',') {
            let Some((k, v)) = item.trim().split_once('=') else {
                continue;
            };
            match k.trim() {
                "t" => timestamp = v.trim().parse::<i64>().ok(),
                "v1" => {
                    saw_v1 = true;
                    if let Ok(bytes) = hex::decode(v.trim()) {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::NoTimestamp)?;
        if !saw_v1 {
            return Err(WebhookError::NoV1);
        }
        Ok(Self { timestamp, v1 })
    }
}

/// Verifies `payload` against its header at `now` (Unix seconds) and returns the event JSON.
pub fn verify(
    payload: &str,
    header: &str,
    secret: &str,
    now: i64,
) -> Result<serde_json::Value, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NoSecret);
    }
    let sig = SignatureHeader::parse(header)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| WebhookError::NoSecret)?;
    mac.update(sig.timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    // `verify_slice` compares in constant time.
    if !sig.v1.iter().any(|v| mac.clone().verify_slice(v).is_ok()) {
        return Err(WebhookError::Mismatch);
    }
    // Checked after the signature, so that a forged header learns nothing about the clock.
    let age = now - sig.timestamp;
    if age.abs() > TOLERANCE_SECS {
        return Err(WebhookError::Stale {
            t: sig.timestamp,
            age,
        });
    }
    serde_json::from_str(payload).map_err(|e| WebhookError::NotJson(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{payload}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    const PAYLOAD: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn accepts_a_fresh_signature_among_others() {
        let t = 1_767_225_600;
        let header = format!(
            "t={t},v1={},v1={},v0=abc",
            "00".repeat(32),
            sign("whsec_x", t, PAYLOAD)
        );
        let event = verify(PAYLOAD, &header, "whsec_x", t + 299).unwrap();
        assert_eq!(event["type"], "payment_intent.succeeded");
    }

    #[test]
    fn refuses_what_stripe_refuses() {
        let t = 1_767_225_600;
        let good = format!("t={t},v1={}", sign("whsec_x", t, PAYLOAD));
        assert_eq!(
            verify(PAYLOAD, "", "whsec_x", t),
            Err(WebhookError::MissingHeader)
        );
        assert_eq!(
            verify(PAYLOAD, "v1=00", "whsec_x", t),
            Err(WebhookError::NoTimestamp)
        );
        assert_eq!(
            verify(PAYLOAD, &format!("t={t},v0=00"), "whsec_x", t),
            Err(WebhookError::NoV1)
        );
        assert_eq!(
            verify(PAYLOAD, &good, "whsec_other", t),
            Err(WebhookError::Mismatch)
        );
        assert_eq!(
            verify(&PAYLOAD.replace("evt_1", "evt_2"), &good, "whsec_x", t),
            Err(WebhookError::Mismatch)
        );
        assert!(matches!(
            verify(PAYLOAD, &good, "whsec_x", t + 301),
            Err(WebhookError::Stale { age: 301, .. })
        ));
        assert!(matches!(
            verify(PAYLOAD, &good, "whsec_x", t - 301),
            Err(WebhookError::Stale { .. })
        ));
        assert_eq!(verify(PAYLOAD, &good, "", t), Err(WebhookError::NoSecret));
    }
}
