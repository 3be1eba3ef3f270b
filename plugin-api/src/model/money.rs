//! Money helpers: exact decimal parsing, minor units, rounding.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An amount with its ISO 4217 currency.
///
/// ```
/// use posbridge_plugin_api::model::Money;
/// use rust_decimal::Decimal;
/// let m = Money::new(Decimal::new(1234, 2), "EUR");
/// assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"amount":"12.34","currency":"EUR"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    /// The amount.
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl Money {
    /// An amount in a currency.
    pub fn new(amount: Decimal, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.to_string(),
        }
    }
}

/// How many decimals a currency has (ISO 4217): 0 for JPY, KRW, …; 3 for BHD, KWD, …; else 2.
pub fn currency_minor_units(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// Converts an amount in minor units (e.g. Stripe's cents) exactly to a decimal.
///
/// ```
/// use posbridge_plugin_api::model::decimal_from_minor_units;
/// assert_eq!(decimal_from_minor_units(1999, "EUR").to_string(), "19.99");
/// assert_eq!(decimal_from_minor_units(500, "JPY").to_string(), "500");
/// ```
pub fn decimal_from_minor_units(minor: i64, currency: &str) -> Decimal {
    Decimal::new(minor, currency_minor_units(currency))
}

/// Rounds half away from zero to the currency's minor unit (commercial rounding).
pub fn round_money(d: Decimal, currency: &str) -> Decimal {
    d.round_dp_with_strategy(
        currency_minor_units(currency),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// Reads a decimal from a vendor's JSON value (a string, or a number taken by its shortest
/// decimal representation — never through float arithmetic).
///
/// ```
/// use posbridge_plugin_api::model::decimal_from_json;
/// assert_eq!(decimal_from_json(&serde_json::json!(17.23)).unwrap().to_string(), "17.23");
/// assert_eq!(decimal_from_json(&serde_json::json!("0.10")).unwrap().to_string(), "0.10");
/// assert!(decimal_from_json(&serde_json::json!(null)).is_none());
/// ```
pub fn decimal_from_json(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => decimal_from_text(s),
        Value::Number(n) => decimal_from_number(n),
        _ => None,
    }
}

/// [`decimal_from_json`] of a JSON string, for a connector that reads its answers into its own
/// types: surrounding blanks ignored, a decimal comma taken for a point, scientific notation.
///
/// ```
/// use posbridge_plugin_api::model::decimal_from_text;
/// assert_eq!(decimal_from_text(" 4,20 ").unwrap().to_string(), "4.20");
/// assert!(decimal_from_text("four").is_none());
/// ```
pub fn decimal_from_text(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.contains(',') {
        parse_decimal(&s.replace(',', "."))
    } else {
        parse_decimal(s)
    }
}

/// [`decimal_from_json`] of a JSON number: its shortest decimal text, read exactly (written
/// on the stack: this runs for every amount of every record).
pub fn decimal_from_number(n: &serde_json::Number) -> Option<Decimal> {
    use std::fmt::Write;
    let mut text = StackText::default();
    match write!(text, "{n}") {
        Ok(()) => parse_decimal(text.as_str()),
        Err(_) => parse_decimal(&n.to_string()),
    }
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
}

/// A short text on the stack; writing more than it holds fails.
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
