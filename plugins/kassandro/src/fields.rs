//! Reading fields out of a vendor JSON object, with errors that name the page and the field.

use posbridge_plugin_api::model::{decimal_from_json, Decimal};
use serde_json::{Map, Value};

use crate::error::KassandroError;

/// One JSON object of an answer, with where it came from (`endpoint`) and its path (`at`).
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    endpoint: &'a str,
    at: String,
}

impl<'a> Fields<'a> {
    /// Wraps `v`, which must be an object.
    pub fn new(
        v: &'a Value,
        endpoint: &'a str,
        at: impl Into<String>,
    ) -> Result<Self, KassandroError> {
        let at = at.into();
        match v.as_object() {
            Some(obj) => Ok(Self { obj, endpoint, at }),
            None => Err(KassandroError::bad_field(endpoint, at, "an object")),
        }
    }

    fn err(&self, field: &str, expected: &'static str) -> KassandroError {
        KassandroError::bad_field(self.endpoint, self.path(field), expected)
    }

    /// The path of a field below this object, for messages.
    pub fn path(&self, field: &str) -> String {
        if self.at.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.at)
        }
    }

    /// The raw value of a field that is present and not null.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    /// A required decimal (a JSON number or numeric string, read exactly).
    pub fn decimal(&self, field: &str) -> Result<Decimal, KassandroError> {
        self.get(field)
            .and_then(decimal_from_json)
            .ok_or_else(|| self.err(field, "a number"))
    }

    /// A required amount of money in EUR, see [`cents_scale`].
    pub fn money(&self, field: &str) -> Result<Decimal, KassandroError> {
        self.decimal(field).map(cents_scale)
    }

    /// A required string.
    pub fn string(&self, field: &str) -> Result<String, KassandroError> {
        self.opt_string(field)?
            .ok_or_else(|| self.err(field, "a string"))
    }

    /// An optional string (a number is taken by its text, as ids sometimes are).
    pub fn opt_string(&self, field: &str) -> Result<Option<String>, KassandroError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.err(field, "a string")),
        }
    }

    /// A required non-negative integer.
    pub fn unsigned(&self, field: &str) -> Result<u64, KassandroError> {
        self.opt_unsigned(field)?
            .ok_or_else(|| self.err(field, "an integer"))
    }

    /// An optional non-negative integer.
    pub fn opt_unsigned(&self, field: &str) -> Result<Option<u64>, KassandroError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map(Some)
                .ok_or_else(|| self.err(field, "an integer")),
        }
    }

    /// An optional array, empty when absent or null.
    pub fn array(&self, field: &str) -> Result<&'a [Value], KassandroError> {
        match self.get(field) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a.as_slice()),
            Some(_) => Err(self.err(field, "an array")),
        }
    }
}

/// Writes an amount with at least two decimals (`8.4` → `8.40`): JSON numbers lose trailing
/// zeros, and the value is unchanged. More decimals are kept as they are, never rounded.
pub fn cents_scale(mut d: Decimal) -> Decimal {
    if d.scale() < 2 {
        d.rescale(2);
    }
    d
}

/// The elements of an answer that must be a JSON array.
pub fn array_answer<'a>(body: &'a Value, endpoint: &str) -> Result<&'a [Value], KassandroError> {
    body.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| KassandroError::bad_field(endpoint, "(body)", "an array"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_missing_field_with_its_path() {
        let v = json!({"price": 1.10, "n": "7"});
        let f = Fields::new(&v, "receipts?offset=0", "[4]").unwrap();
        assert_eq!(f.decimal("price").unwrap().to_string(), "1.1");
        assert_eq!(f.money("price").unwrap().to_string(), "1.10");
        assert_eq!(f.unsigned("n").unwrap(), 7);
        let e = f.decimal("given").unwrap_err().to_string();
        assert!(
            e.contains("receipts?offset=0") && e.contains("[4].given"),
            "{e}"
        );
    }
}
