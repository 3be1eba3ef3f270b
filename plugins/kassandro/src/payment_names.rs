//! Kassandro's payment method names and the canonical methods they stand for.

/// (Kassandro name, canonical method); any other name passes as it is.
const NAMES: &[(&str, &str)] = &[
    ("Bar", "cash"),
    ("Karte", "card"),
    ("Gutschein", "voucher"),
    ("Rechnung", "invoice"),
    // Read-only synonyms: card names Austrian registers also use.
    ("Bankomat", "card"),
    ("EC-Karte", "card"),
    ("Kreditkarte", "card"),
];

/// The canonical method of a Kassandro `paymentMethod` (unknown names lower-cased).
pub fn canonical_method(name: &str) -> String {
    NAMES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.trim()))
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| name.trim().to_lowercase())
}

/// The Kassandro name of a canonical method (unknown methods pass as they are).
pub fn kassandro_name(method: &str) -> String {
    NAMES
        .iter()
        .find(|(_, c)| c.eq_ignore_ascii_case(method.trim()))
        .map(|(k, _)| k.to_string())
        .unwrap_or_else(|| method.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        assert_eq!(canonical_method("Bar"), "cash");
        assert_eq!(canonical_method("karte"), "card");
        assert_eq!(canonical_method("Bankomat"), "card");
        assert_eq!(canonical_method("Apple Pay"), "apple pay");
        assert_eq!(kassandro_name("voucher"), "Gutschein");
        assert_eq!(kassandro_name("points"), "points");
        for (k, c) in &NAMES[..4] {
            assert_eq!(kassandro_name(&canonical_method(k)), *k);
            assert_eq!(canonical_method(&kassandro_name(c)), *c);
        }
    }
}
