//! The pipeline's `mapping:` section: tax rates → posting category ids, refund kinds → their
//! own category ids, payment methods → the labels written into the voucher, stores/registers →
//! contacts. A record that the mapping does not cover is rejected, naming the missing key.

use std::collections::BTreeMap;
use std::str::FromStr;

use posbridge_plugin_api::model::Decimal;
use serde_json::Value;

/// Whom a voucher is booked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    /// lexoffice's collective contact ("Sammelkunde"): `useCollectiveContact: true`.
    Collective,
    /// An existing contact: `useCollectiveContact: false` with this `contactId`.
    Id(String),
}

/// The written value that means the collective contact in `mapping.stores`.
pub const COLLECTIVE: &str = "collective";

/// The parsed mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    tax_rates: BTreeMap<Decimal, String>,
    refund_kinds: BTreeMap<String, BTreeMap<Decimal, String>>,
    payment_methods: BTreeMap<String, String>,
    stores: Option<BTreeMap<String, Contact>>,
}

/// The mapping's text form of a rate: `19`, `7`, `5.5`.
pub fn rate_key(rate: Decimal) -> String {
    rate.normalize().to_string()
}

fn parse_rate(key: &str, section: &str) -> Result<Decimal, String> {
    Decimal::from_str(key.trim().trim_end_matches('%').trim())
        .map(|d| d.normalize())
        .map_err(|_| format!("mapping.{section}: {key:?} is not a tax rate in percent"))
}

fn object<'a>(
    v: &'a Value,
    section: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        _ => Err(format!("mapping.{section} must be a map")),
    }
}

fn text<'a>(v: &'a Value, path: &str) -> Result<&'a str, String> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s.trim()),
        _ => Err(format!("mapping.{path} must be a non-empty string")),
    }
}

fn rate_map(v: &Value, section: &str) -> Result<BTreeMap<Decimal, String>, String> {
    let mut out = BTreeMap::new();
    if let Some(o) = object(v, section)? {
        for (k, id) in o {
            out.insert(
                parse_rate(k, section)?,
                text(id, &format!("{section}.{k:?}"))?.to_string(),
            );
        }
    }
    Ok(out)
}

impl Mapping {
    /// Parses the `mapping:` section (`null` is an empty mapping). Unknown sections are refused
    /// so that a typo does not silently book everything to the collective contact.
    pub fn parse(v: &Value) -> Result<Self, String> {
        let Some(root) = object(v, "(root)")? else {
            return Ok(Self::default());
        };
        let mut m = Self::default();
        for (section, value) in root {
            match section.as_str() {
                "tax_rates" => m.tax_rates = rate_map(value, "tax_rates")?,
                "refund_kinds" => {
                    if let Some(kinds) = object(value, "refund_kinds")? {
                        for (kind, rates) in kinds {
                            if kind != "refund" && kind != "cancellation" {
                                return Err(format!(
                                    "mapping.refund_kinds: unknown kind {kind:?} (refund, cancellation)"
                                ));
                            }
                            m.refund_kinds.insert(
                                kind.clone(),
                                rate_map(rates, &format!("refund_kinds.{kind}"))?,
                            );
                        }
                    }
                }
                "payment_methods" => {
                    if let Some(o) = object(value, "payment_methods")? {
                        for (method, label) in o {
                            let label = text(label, &format!("payment_methods.{method}"))?;
                            if label.contains([';', '=', '\n']) {
                                return Err(format!(
                                    "mapping.payment_methods.{method}: the label must not contain ';', '=' or a line break"
                                ));
                            }
                            m.payment_methods.insert(method.clone(), label.to_string());
                        }
                    }
                }
                "stores" => {
                    if let Some(o) = object(value, "stores")? {
                        let mut stores = BTreeMap::new();
                        for (k, c) in o {
                            let c = text(c, &format!("stores.{k:?}"))?;
                            let contact = if c.eq_ignore_ascii_case(COLLECTIVE) {
                                Contact::Collective
                            } else {
                                Contact::Id(c.to_string())
                            };
                            stores.insert(k.clone(), contact);
                        }
                        m.stores = Some(stores);
                    }
                }
                other => {
                    return Err(format!(
                        "mapping.{other} is not known (tax_rates, refund_kinds, payment_methods, stores)"
                    ))
                }
            }
        }
        Ok(m)
    }

    /// The posting category of a rate; for a credit note of `credit_kind` (`refund` or
    /// `cancellation`) `refund_kinds.<kind>` comes first.
    pub fn category(&self, rate: Decimal, credit_kind: Option<&str>) -> Result<&str, String> {
        let rate = rate.normalize();
        if let Some(id) = credit_kind
            .and_then(|k| self.refund_kinds.get(k))
            .and_then(|m| m.get(&rate))
        {
            return Ok(id);
        }
        self.tax_rates
            .get(&rate)
            .map(String::as_str)
            .ok_or_else(|| {
                let key = rate_key(rate);
                format!("no mapping for tax rate {key} % (mapping.tax_rates.\"{key}\")")
            })
    }

    /// The label a payment method is written with.
    pub fn payment_label(&self, method: &str) -> Result<&str, String> {
        self.payment_methods
            .get(method)
            .map(String::as_str)
            .ok_or_else(|| {
                format!(
                    "no mapping for payment method {method:?} (mapping.payment_methods.{method})"
                )
            })
    }

    /// The contact of a store's register: `stores."<store>/<register>"`, else `stores."<store>"`;
    /// the collective contact when the mapping has no `stores` section at all.
    pub fn contact(&self, store: &str, register: &str) -> Result<Contact, String> {
        let Some(stores) = &self.stores else {
            return Ok(Contact::Collective);
        };
        stores
            .get(&format!("{store}/{register}"))
            .or_else(|| stores.get(store))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no mapping for store {store} register {register} (mapping.stores.\"{store}\" or mapping.stores.\"{store}/{register}\")"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn parses_and_looks_up() {
        let m = Mapping::parse(&json!({
            "tax_rates": {"19": "cat-19", "7.0": "cat-7", "0 %": "cat-0"},
            "refund_kinds": {"refund": {"19": "cat-19-refund"}},
            "payment_methods": {"cash": "Bar", "card": "EC-Karte"},
            "stores": {"S1": "collective", "S1/R2": "contact-2", "S2": "contact-s2"}
        }))
        .unwrap();
        assert_eq!(m.category(dec!(19.00), None).unwrap(), "cat-19");
        assert_eq!(m.category(dec!(7), Some("refund")).unwrap(), "cat-7");
        assert_eq!(
            m.category(dec!(19), Some("refund")).unwrap(),
            "cat-19-refund"
        );
        assert_eq!(m.category(dec!(0), None).unwrap(), "cat-0");
        assert_eq!(
            m.category(dec!(13), None).unwrap_err(),
            "no mapping for tax rate 13 % (mapping.tax_rates.\"13\")"
        );
        assert_eq!(m.payment_label("card").unwrap(), "EC-Karte");
        assert!(m
            .payment_label("voucher")
            .unwrap_err()
            .contains("mapping.payment_methods.voucher"));
        assert_eq!(m.contact("S1", "R1").unwrap(), Contact::Collective);
        assert_eq!(
            m.contact("S1", "R2").unwrap(),
            Contact::Id("contact-2".into())
        );
        assert!(m
            .contact("S9", "R1")
            .unwrap_err()
            .contains("mapping.stores.\"S9\""));
    }

    #[test]
    fn no_stores_section_means_collective_and_typos_are_refused() {
        let m = Mapping::parse(&Value::Null).unwrap();
        assert_eq!(m.contact("S1", "R1").unwrap(), Contact::Collective);
        assert!(Mapping::parse(&json!({"tax_rate": {}}))
            .unwrap_err()
            .contains("tax_rate"));
        assert!(Mapping::parse(&json!({"tax_rates": {"abc": "x"}})).is_err());
        assert!(Mapping::parse(&json!({"payment_methods": {"cash": "a;b"}})).is_err());
    }
}
