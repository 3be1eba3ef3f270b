//! The receipt's `signature`: an object (`cashRegisterId`, `receiptNumber`, `signature`,
//! `qrCode`) or a string. A string starting `_R1-` is the RKSV machine-readable code
//! (`_R1-AT1_<Kassen-ID>_<Belegnummer>_<Datum>_<5 Beträge>_<Umsatzzähler>_<Zertifikat>_<Sig-Voriger>_<Signaturwert>`),
//! kept whole as the QR code with its fields read out; any other string is the signature value.

use posbridge_plugin_api::model::RksvSignature;

use crate::receipt_in::{Scalar, Signature};

/// Fields of the machine-readable code before the signature value, which is the rest.
const CODE_FIELDS: usize = 13;

/// The RKSV signature of a receipt's `signature`; `register` and `receipt_number` fill in what
/// it does not say. `None` for `null`, a blank text or a value of another type.
pub fn rksv_signature(
    value: &Signature<'_>,
    register: &str,
    receipt_number: &str,
) -> Option<RksvSignature> {
    match value {
        Signature::Text(s) if !s.trim().is_empty() => {
            Some(from_text(s.trim(), register, receipt_number))
        }
        Signature::Object(o) => {
            let text = |v: &Scalar<'_>| match v {
                Scalar::Str(s) if !s.is_empty() => Some(s.to_string()),
                Scalar::Num(n) => Some(n.to_string()),
                _ => None,
            };
            let code = text(&o.qr_code).map(|c| from_text(&c, register, receipt_number));
            Some(RksvSignature {
                cash_register_id: text(&o.cash_register_id)
                    .or_else(|| code.as_ref().map(|c| c.cash_register_id.clone()))
                    .unwrap_or_else(|| register.to_string()),
                receipt_number: text(&o.receipt_number)
                    .or_else(|| code.as_ref().map(|c| c.receipt_number.clone()))
                    .unwrap_or_else(|| receipt_number.to_string()),
                signature: text(&o.signature).or_else(|| code.as_ref()?.signature.clone()),
                qr_code: text(&o.qr_code),
            })
        }
        _ => None,
    }
}

fn from_text(s: &str, register: &str, receipt_number: &str) -> RksvSignature {
    let fields: Vec<&str> = s.splitn(CODE_FIELDS + 1, '_').collect();
    // A code has at least its marker, register, number and one more field (the signature).
    if s.starts_with("_R1-") && fields.len() >= 5 {
        let nonempty = |f: &str| (!f.is_empty()).then(|| f.to_string());
        return RksvSignature {
            cash_register_id: nonempty(fields[2]).unwrap_or_else(|| register.to_string()),
            receipt_number: nonempty(fields[3]).unwrap_or_else(|| receipt_number.to_string()),
            signature: fields.last().and_then(|f| nonempty(f)),
            qr_code: Some(s.to_string()),
        };
    }
    RksvSignature {
        cash_register_id: register.to_string(),
        receipt_number: receipt_number.to_string(),
        signature: Some(s.to_string()),
        qr_code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt_in::FromValue;
    use serde_json::{json, Value};

    fn rksv_signature(v: &Value, register: &str, number: &str) -> Option<RksvSignature> {
        super::rksv_signature(&Signature::from_value(Some(v)), register, number)
    }

    const CODE: &str = "_R1-AT1_R01_000017_2026-02-01T10:00:00_8,40_0,00_0,00_0,00_0,00_Q2xv_7a1f2e_prevSig_c2lnbmF0dXJl+/==";

    #[test]
    fn reads_the_machine_readable_code_and_keeps_it() {
        let s = rksv_signature(&json!(CODE), "2", "2-000017").unwrap();
        assert_eq!(s.cash_register_id, "R01");
        assert_eq!(s.receipt_number, "000017");
        assert_eq!(s.signature.as_deref(), Some("c2lnbmF0dXJl+/=="));
        assert_eq!(s.qr_code.as_deref(), Some(CODE));
        // A short code (as some registers print it) still gives its signature at the end.
        let s =
            rksv_signature(&json!("_R1-AT1_K9_9-1_2026-02-01T10:00:00_sig"), "9", "9-1").unwrap();
        assert_eq!(
            (s.cash_register_id.as_str(), s.signature.as_deref()),
            ("K9", Some("sig"))
        );
    }

    #[test]
    fn reads_the_object_and_a_bare_signature_value() {
        let s = rksv_signature(
            &json!({"cashRegisterId": "AT-K-2", "receiptNumber": "2-000017", "signature": "sig", "qrCode": CODE}),
            "2",
            "2-000017",
        )
        .unwrap();
        assert_eq!(
            (s.cash_register_id.as_str(), s.qr_code.as_deref()),
            ("AT-K-2", Some(CODE))
        );
        let s = rksv_signature(&json!({"qrCode": CODE}), "2", "2-000017").unwrap();
        assert_eq!(
            (s.cash_register_id.as_str(), s.signature.as_deref()),
            ("R01", Some("c2lnbmF0dXJl+/=="))
        );
        let s = rksv_signature(&json!("eyJhbGciOiJFUzI1NiJ9.x.y"), "2", "2-000017").unwrap();
        assert_eq!(
            (
                s.cash_register_id.as_str(),
                s.receipt_number.as_str(),
                s.qr_code
            ),
            ("2", "2-000017", None)
        );
        assert!(rksv_signature(&Value::Null, "2", "x").is_none());
        assert!(rksv_signature(&json!(""), "2", "x").is_none());
    }
}
