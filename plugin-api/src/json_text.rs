//! A small JSON tree whose numbers are decimals written from their text, so that no amount
//! passes through a float on its way to a vendor (serde_json's `Number` would hold an `f64`).
//! Use it for request bodies of APIs that want JSON numbers for money.
//!
//! ```
//! use posbridge_plugin_api::json_text::Json;
//! use std::str::FromStr;
//! let body = Json::obj([("amount", Json::Num(rust_decimal::Decimal::from_str("12.30").unwrap())), ("paid", Json::Bool(true))]);
//! assert_eq!(body.to_text(), r#"{"amount":12.30,"paid":true}"#);
//! ```

use crate::model::Decimal;

/// A JSON value for request bodies.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// A number written exactly as the decimal's text.
    Num(Decimal),
    /// A non-negative integer.
    Int(u64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A string (escaped when written).
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, fields in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from its fields, in order.
    pub fn obj<const N: usize>(fields: [(&str, Json); N]) -> Self {
        Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Json::Str(s.into())
    }

    /// The JSON text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Num(d) => out.push_str(&d.to_string()),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Null => out.push_str("null"),
            Json::Str(s) => out.push_str(&quote(s)),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quote(k));
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn writes_decimals_exactly_and_escapes_strings() {
        let j = Json::obj([
            ("price", Json::Num(dec!(12.30))),
            ("neg", Json::Num(dec!(-0.10))),
            ("name", Json::str("Melange \"groß\"")),
            ("items", Json::Arr(vec![Json::Int(1), Json::Int(2)])),
        ]);
        let text = j.to_text();
        assert_eq!(
            text,
            r#"{"price":12.30,"neg":-0.10,"name":"Melange \"groß\"","items":[1,2]}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], "Melange \"groß\"");
    }
}
