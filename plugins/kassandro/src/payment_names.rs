//! Which Kassandro payment method name a canonical method is written as. The names are the
//! register's own (`GET /paymentmethods`): a name configured for the method (`payment_methods`)
//! if the register offers it, else the register's name that the shared table normalises to the
//! method; the German names of this connector's first reading (`Bar`, `Karte`, `Gutschein`,
//! `Rechnung`) only when the register's list cannot be had. No name: the record is refused.

use std::collections::BTreeMap;

use posbridge_plugin_api::model::normalise_payment_method;
use serde_json::Value;

/// Canonical method → the name written when the register's list is unknown.
const FALLBACK: &[(&str, &str)] = &[
    ("cash", "Bar"),
    ("card", "Karte"),
    ("voucher", "Gutschein"),
    ("invoice", "Rechnung"),
];

/// The names one register takes, and the configured table.
#[derive(Debug, Clone, Default)]
pub struct PaymentNames {
    configured: BTreeMap<String, String>,
    /// The register's names; `None` when its list could not be read.
    offered: Option<Vec<String>>,
}

impl PaymentNames {
    pub fn new(configured: BTreeMap<String, String>, offered: Option<Vec<String>>) -> Self {
        Self {
            configured,
            offered,
        }
    }

    /// The Kassandro name to write for a canonical `method`, or why there is none.
    pub fn name_for(&self, method: &str) -> Result<String, String> {
        let canonical = normalise_payment_method(method).0;
        let key = canonical.as_str();
        let configured = self
            .configured
            .get(method.trim())
            .or_else(|| self.configured.get(key));
        let offered = match (&self.offered, configured) {
            (None, Some(name)) => return Ok(name.clone()),
            (None, None) => {
                return FALLBACK
                    .iter()
                    .find(|(m, _)| *m == key)
                    .map(|(_, n)| n.to_string())
                    .ok_or_else(|| {
                        format!(
                            "payment method {method:?} has no Kassandro name: the register's payment methods could not be read and payment_methods does not map it"
                        )
                    })
            }
            (Some(list), _) => list,
        };
        if let Some(name) = configured {
            return offered
                .iter()
                .find(|o| o.trim().eq_ignore_ascii_case(name.trim()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "payment method {method:?} is configured as {name:?}, which the register does not offer ({})",
                        offered.join(", ")
                    )
                });
        }
        offered
            .iter()
            .find(|o| normalise_payment_method(o).0 == canonical)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "payment method {method:?} has no Kassandro payment method on this register (it offers {}); map it in payment_methods",
                    offered.join(", ")
                )
            })
    }
}

/// The names of a `GET /paymentmethods` answer: objects with a `name` (or `code`), or strings.
pub fn offered_names(body: &Value) -> Vec<String> {
    let items = match body {
        Value::Array(items) => items.as_slice(),
        _ => return vec![],
    };
    items
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => ["name", "code"]
                .iter()
                .find_map(|k| o.get(*k)?.as_str().map(str::to_string)),
            _ => None,
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offered(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn takes_the_registers_name_of_the_method() {
        let english = PaymentNames::new(
            BTreeMap::new(),
            offered(&["Cash", "Credit card", "Gift voucher"]),
        );
        assert_eq!(english.name_for("cash").unwrap(), "Cash");
        assert_eq!(english.name_for("card").unwrap(), "Credit card");
        let e = english.name_for("invoice").unwrap_err();
        assert!(
            e.contains("\"invoice\"") && e.contains("Credit card"),
            "{e}"
        );
        let codes = PaymentNames::new(BTreeMap::new(), offered(&["CASH", "EC_CARD"]));
        assert_eq!(codes.name_for("card").unwrap(), "EC_CARD");
        assert!(codes.name_for("paypal").unwrap_err().contains("\"paypal\""));
    }

    #[test]
    fn a_configured_name_wins_if_the_register_offers_it() {
        let table = BTreeMap::from([
            ("card".to_string(), "bankomat".to_string()),
            ("paypal".to_string(), "PayPal".to_string()),
        ]);
        let names = PaymentNames::new(table.clone(), offered(&["Bar", "Karte", "Bankomat"]));
        assert_eq!(names.name_for("card").unwrap(), "Bankomat");
        let e = names.name_for("paypal").unwrap_err();
        assert!(e.contains("PayPal") && e.contains("does not offer"), "{e}");
        let unknown_list = PaymentNames::new(table, None);
        assert_eq!(unknown_list.name_for("paypal").unwrap(), "PayPal");
    }

    #[test]
    fn german_names_only_when_the_list_is_unknown() {
        let names = PaymentNames::new(BTreeMap::new(), None);
        assert_eq!(names.name_for("cash").unwrap(), "Bar");
        assert_eq!(names.name_for("voucher").unwrap(), "Gutschein");
        assert!(names.name_for("points").is_err());
    }

    #[test]
    fn reads_the_list_in_any_shape() {
        assert_eq!(
            offered_names(
                &json!([{"_id": "1", "name": "Bar"}, {"code": "EC_CARD"}, "Gutschein", {"x": 1}])
            ),
            ["Bar", "EC_CARD", "Gutschein"]
        );
        assert!(offered_names(&json!({"error": false})).is_empty());
    }
}
