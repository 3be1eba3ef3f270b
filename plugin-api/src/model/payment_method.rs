//! The one table that turns a POS's payment method name (`Bar`, `Karte`, `creditcard`,
//! `EC_CARD`, `Gutschein`, …) into the canonical method of [`Payment::method`](super::Payment).
//!
//! Every POS connector reads its vendor's names through [`normalise_payment_method`], so the
//! same name means the same method whichever register it came from. Names are compared without
//! case, spaces, `-`, `_` and `.`: `EC-Karte`, `ec_karte` and `EC Karte` are one name.

use std::fmt;

/// A canonical payment method, as written into `Payment::method` and `PaymentMethod::method`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CanonicalMethod {
    /// Cash.
    Cash,
    /// Any card: debit, credit, girocard, Bankomat, contactless.
    Card,
    /// Gift cards, vouchers and coupons.
    Voucher,
    /// Paid later against an invoice (on account).
    Invoice,
    /// Loyalty points.
    Points,
    /// A name the table does not know: trimmed and lower-cased, so it is still stable.
    Other(String),
}

impl CanonicalMethod {
    /// The text written into the canonical records: `cash`, `card`, … or the other name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Cash => "cash",
            Self::Card => "card",
            Self::Voucher => "voucher",
            Self::Invoice => "invoice",
            Self::Points => "points",
            Self::Other(name) => name,
        }
    }

    /// Whether the table knew the name.
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl fmt::Display for CanonicalMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// (folded name, method). Folded = lower case without spaces, `-`, `_` and `.`.
const NAMES: &[(&str, CanonicalMethod)] = &[
    // Cash.
    ("cash", CanonicalMethod::Cash),
    ("bar", CanonicalMethod::Cash),
    ("bargeld", CanonicalMethod::Cash),
    ("barzahlung", CanonicalMethod::Cash),
    ("cashpayment", CanonicalMethod::Cash),
    ("especes", CanonicalMethod::Cash),
    ("espèces", CanonicalMethod::Cash),
    ("efectivo", CanonicalMethod::Cash),
    ("contanti", CanonicalMethod::Cash),
    // Cards.
    ("card", CanonicalMethod::Card),
    ("karte", CanonicalMethod::Card),
    ("kartenzahlung", CanonicalMethod::Card),
    ("creditcard", CanonicalMethod::Card),
    ("credit", CanonicalMethod::Card),
    ("debitcard", CanonicalMethod::Card),
    ("debit", CanonicalMethod::Card),
    ("kreditkarte", CanonicalMethod::Card),
    ("ec", CanonicalMethod::Card),
    ("eccard", CanonicalMethod::Card),
    ("eckarte", CanonicalMethod::Card),
    ("girocard", CanonicalMethod::Card),
    ("bankomat", CanonicalMethod::Card),
    ("bankomatkarte", CanonicalMethod::Card),
    ("maestro", CanonicalMethod::Card),
    ("vpay", CanonicalMethod::Card),
    ("visa", CanonicalMethod::Card),
    ("mastercard", CanonicalMethod::Card),
    ("amex", CanonicalMethod::Card),
    ("americanexpress", CanonicalMethod::Card),
    ("carte", CanonicalMethod::Card),
    ("cartebancaire", CanonicalMethod::Card),
    ("cb", CanonicalMethod::Card),
    // Vouchers.
    ("voucher", CanonicalMethod::Voucher),
    ("giftvoucher", CanonicalMethod::Voucher),
    ("giftcard", CanonicalMethod::Voucher),
    ("coupon", CanonicalMethod::Voucher),
    ("gutschein", CanonicalMethod::Voucher),
    ("wertgutschein", CanonicalMethod::Voucher),
    ("gutscheinkarte", CanonicalMethod::Voucher),
    // Invoice.
    ("invoice", CanonicalMethod::Invoice),
    ("onaccount", CanonicalMethod::Invoice),
    ("rechnung", CanonicalMethod::Invoice),
    ("aufrechnung", CanonicalMethod::Invoice),
    ("facture", CanonicalMethod::Invoice),
    // Loyalty points.
    ("points", CanonicalMethod::Points),
    ("loyaltypoints", CanonicalMethod::Points),
    ("punkte", CanonicalMethod::Points),
];

/// Lower case without the separators vendors vary on.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The canonical method of a vendor's payment method name, and the name as it came (trimmed).
///
/// ```
/// use posbridge_plugin_api::model::{normalise_payment_method, CanonicalMethod};
/// assert_eq!(normalise_payment_method("EC_CARD").0, CanonicalMethod::Card);
/// assert_eq!(normalise_payment_method(" Bar ").1, "Bar");
/// assert_eq!(normalise_payment_method("Apple Pay").0.as_str(), "apple pay");
/// ```
pub fn normalise_payment_method(raw: &str) -> (CanonicalMethod, String) {
    let raw = raw.trim();
    let folded = fold(raw);
    let method = NAMES
        .iter()
        .find(|(name, _)| *name == folded)
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| CanonicalMethod::Other(raw.to_lowercase()));
    (method, raw.to_string())
}

/// The canonical method of a vendor's payment method name as [`Payment::method`] and
/// [`Payment::method_raw`](super::Payment::method_raw) carry it: the method's text, and the
/// vendor's name only when it differs from that text.
///
/// ```
/// use posbridge_plugin_api::model::payment_method_fields;
/// assert_eq!(payment_method_fields("EC_CARD"), ("card".into(), Some("EC_CARD".into())));
/// assert_eq!(payment_method_fields("cash"), ("cash".into(), None));
/// ```
pub fn payment_method_fields(raw: &str) -> (String, Option<String>) {
    let (method, raw) = normalise_payment_method(raw);
    let method = method.as_str().to_string();
    let raw = (raw != method).then_some(raw);
    (method, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(raw: &str) -> String {
        normalise_payment_method(raw).0.to_string()
    }

    #[test]
    fn names_of_several_vendors_meet_in_one_method() {
        for raw in ["Bar", "cash", "CASH", "Bargeld", "Espèces"] {
            assert_eq!(method(raw), "cash", "{raw}");
        }
        for raw in [
            "creditcard",
            "Credit Card",
            "Karte",
            "EC_CARD",
            "EC-Karte",
            "ec karte",
            "GIROCARD",
            "Bankomat",
            "Kreditkarte",
            "DEBIT_CARD",
            "MASTERCARD",
        ] {
            assert_eq!(method(raw), "card", "{raw}");
        }
        for raw in [
            "Gutschein",
            "voucher",
            "GIFT_CARD",
            "Gift voucher",
            "COUPON",
        ] {
            assert_eq!(method(raw), "voucher", "{raw}");
        }
        for raw in ["Rechnung", "INVOICE", "on account"] {
            assert_eq!(method(raw), "invoice", "{raw}");
        }
        assert_eq!(method("Punkte"), "points");
    }

    #[test]
    fn unknown_names_pass_lower_cased_and_the_raw_name_is_kept() {
        let (m, raw) = normalise_payment_method("  PayPal Express ");
        assert_eq!(m, CanonicalMethod::Other("paypal express".into()));
        assert!(!m.is_known());
        assert_eq!(raw, "PayPal Express");
        let (m, raw) = normalise_payment_method("EC_CARD");
        assert_eq!((m, raw.as_str()), (CanonicalMethod::Card, "EC_CARD"));
        assert!(CanonicalMethod::Card.is_known());
    }

    #[test]
    fn payment_fields_keep_the_vendor_name_only_when_it_differs() {
        assert_eq!(
            payment_method_fields(" Karte "),
            ("card".to_string(), Some("Karte".to_string()))
        );
        assert_eq!(
            payment_method_fields("Apple Pay"),
            ("apple pay".to_string(), Some("Apple Pay".to_string()))
        );
        assert_eq!(
            payment_method_fields("voucher"),
            ("voucher".to_string(), None)
        );
        assert_eq!(payment_method_fields("twint"), ("twint".to_string(), None));
    }

    #[test]
    fn every_table_entry_is_folded() {
        for (name, _) in NAMES {
            assert_eq!(fold(name), *name);
        }
    }
}
