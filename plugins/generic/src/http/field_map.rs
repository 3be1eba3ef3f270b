//! The field map: builds a canonical record from a vendor record with JSON pointers.
//!
//! Keys are canonical fields as dotted paths (`totals.gross` builds `{"totals": {"gross": …}}`);
//! values are a JSON pointer, a constant, or an array mapped element by element. A pointer that
//! finds nothing leaves the field out (the canonical defaults, or the host's validation, take
//! over). After mapping, a JSON number that lands where the canonical schema admits a string
//! (decimals, ids) is written as its exact decimal text, because canonical money is a string.

use std::collections::{BTreeMap, BTreeSet};

use posbridge_plugin_api::model::{decimal_from_json, stream_schema};
use serde_json::{Map, Value};

use super::config::{check_pointer, FieldRule};
use super::error::HttpError;

/// A validated field map for one canonical stream.
#[derive(Debug, Clone)]
pub struct FieldMap {
    rules: Vec<(Vec<String>, Rule)>,
    /// The stream's canonical JSON Schema, for turning numbers into decimal strings.
    schema: Value,
}

#[derive(Debug, Clone)]
enum Rule {
    Pointer(String),
    Const(Value),
    Each {
        pointer: String,
        rules: Vec<(Vec<String>, Rule)>,
    },
}

impl FieldMap {
    /// Validates the configured map (keys, pointers) for `stream`.
    pub fn new(stream: &str, map: &BTreeMap<String, FieldRule>) -> Result<FieldMap, HttpError> {
        Ok(FieldMap {
            rules: compile(map, "field_map")?,
            schema: stream_schema(stream).unwrap_or(Value::Null),
        })
    }

    /// The canonical record for `record`.
    pub fn apply(&self, record: &Value) -> Result<Value, String> {
        let mut out = apply_rules(&self.rules, record)?;
        coerce_numbers(&self.schema, &self.schema, &mut out, 0);
        Ok(out)
    }
}

fn compile(
    map: &BTreeMap<String, FieldRule>,
    at: &str,
) -> Result<Vec<(Vec<String>, Rule)>, HttpError> {
    let mut rules = Vec::with_capacity(map.len());
    for (key, rule) in map {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(HttpError::Config(format!(
                "http: {at}: {key:?} is not a field name or dotted path"
            )));
        }
        let where_ = format!("{at}.{key}");
        let rule = match rule {
            FieldRule::Pointer(p) => {
                check_pointer(&where_, p)?;
                Rule::Pointer(p.clone())
            }
            FieldRule::Const { value } => Rule::Const(value.clone()),
            FieldRule::Each { each, map } => {
                check_pointer(&format!("{where_}.each"), each)?;
                Rule::Each {
                    pointer: each.clone(),
                    rules: compile(map, &format!("{where_}.map"))?,
                }
            }
        };
        rules.push((path, rule));
    }
    Ok(rules)
}

fn apply_rules(rules: &[(Vec<String>, Rule)], record: &Value) -> Result<Value, String> {
    let mut out = Value::Object(Map::new());
    for (path, rule) in rules {
        let value = match rule {
            Rule::Pointer(p) => record.pointer(p).cloned(),
            Rule::Const(v) => Some(v.clone()),
            Rule::Each { pointer, rules } => match record.pointer(pointer) {
                None | Some(Value::Null) => None,
                Some(Value::Array(items)) => Some(Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            apply_rules(rules, item)
                                .map_err(|e| format!("{} [{i}]: {e}", path.join(".")))
                        })
                        .collect::<Result<_, _>>()?,
                )),
                Some(other) => {
                    return Err(format!(
                        "{}: {pointer:?} is not an array but {}",
                        path.join("."),
                        kind_of(other)
                    ))
                }
            },
        };
        if let Some(v) = value {
            set_path(&mut out, path, v)?;
        }
    }
    Ok(out)
}

/// Sets `path` in `target`, creating the objects on the way.
fn set_path(target: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = target;
    for (i, part) in path.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!(
                "{} is mapped, but {} is not an object",
                path.join("."),
                path[..i].join(".")
            ));
        };
        if i + 1 == path.len() {
            map.insert(part.clone(), value);
            return Ok(());
        }
        node = map
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replaces numbers by their exact decimal text wherever the schema admits a string.
fn coerce_numbers(root: &Value, node: &Value, value: &mut Value, depth: usize) {
    if depth > 16 {
        return;
    }
    let branches = branches(root, node, 0);
    match value {
        Value::Number(_) => {
            let types: BTreeSet<&str> = branches.iter().flat_map(|b| types_of(b)).collect();
            if types.contains("string") {
                if let Some(d) = decimal_from_json(value) {
                    *value = Value::String(d.to_string());
                }
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if let Some(sub) = branches
                    .iter()
                    .find_map(|b| b.get("properties").and_then(|p| p.get(k)))
                {
                    coerce_numbers(root, sub, v, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = branches.iter().find_map(|b| b.get("items")) {
                for v in items {
                    coerce_numbers(root, sub, v, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// The schema nodes `node` stands for: `$ref`s followed, `anyOf`/`oneOf`/`allOf` flattened.
fn branches<'a>(root: &'a Value, node: &'a Value, depth: usize) -> Vec<&'a Value> {
    if depth > 8 {
        return Vec::new();
    }
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
            Some(t) => t,
            None => return Vec::new(),
        },
        _ => node,
    };
    let mut out = vec![node];
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(items) = node.get(key).and_then(Value::as_array) {
            for i in items {
                out.extend(branches(root, i, depth + 1));
            }
        }
    }
    out
}

fn types_of(node: &Value) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(stream: &str, m: Value) -> FieldMap {
        let m: BTreeMap<String, FieldRule> = serde_json::from_value(m).unwrap();
        FieldMap::new(stream, &m).unwrap()
    }

    #[test]
    fn pointers_consts_dotted_paths_and_arrays() {
        let m = map(
            "sales",
            json!({
                "id": "/uuid",
                "currency": { "const": "EUR" },
                "totals.gross": "/sum/gross",
                "totals.net": "/sum/net",
                "lines": { "each": "/items", "map": { "name": "/title", "gross": "/price" } },
                "cashier": "/nobody"
            }),
        );
        let out = m
            .apply(&json!({
                "uuid": "A-1",
                "sum": { "gross": 17.23, "net": "14.48" },
                "items": [{ "title": "Milch", "price": 1.1 }]
            }))
            .unwrap();
        assert_eq!(
            out,
            json!({
                "id": "A-1",
                "currency": "EUR",
                "totals": { "gross": "17.23", "net": "14.48" },
                "lines": [{ "name": "Milch", "gross": "1.1" }]
            })
        );
    }

    #[test]
    fn numbers_become_text_only_where_the_schema_admits_a_string() {
        let m = map(
            "sales",
            json!({
                "receipt_number": "/no",
                "fiscal.tse.signature_counter": "/counter",
                "loyalty.pending_approval": "/pending"
            }),
        );
        let out = m
            .apply(&json!({ "no": 42, "counter": 7, "pending": true }))
            .unwrap();
        assert_eq!(out["receipt_number"], json!("42"));
        assert_eq!(out["fiscal"]["tse"]["signature_counter"], json!(7));
        assert_eq!(out["loyalty"]["pending_approval"], json!(true));
    }

    #[test]
    fn exact_decimals_without_float_arithmetic() {
        let m = map("sales", json!({ "totals.gross": "/g" }));
        let out = m.apply(&json!({ "g": 0.1 })).unwrap();
        assert_eq!(out["totals"]["gross"], json!("0.1"));
        let out = m
            .apply(&serde_json::from_str::<Value>(r#"{"g": 1234567.895}"#).unwrap())
            .unwrap();
        assert_eq!(out["totals"]["gross"], json!("1234567.895"));
    }

    #[test]
    fn shape_conflicts_and_bad_keys_are_errors() {
        let m = map("sales", json!({ "lines": { "each": "/items", "map": {} } }));
        assert!(m.apply(&json!({ "items": "x" })).is_err());
        let m = map("sales", json!({ "totals": "/t", "totals.gross": "/g" }));
        assert!(m.apply(&json!({ "t": 5, "g": 1 })).is_err());
        let bad: BTreeMap<String, FieldRule> =
            serde_json::from_value(json!({ "a..b": "/x" })).unwrap();
        assert!(FieldMap::new("sales", &bad).is_err());
        let bad: BTreeMap<String, FieldRule> = serde_json::from_value(json!({ "a": "x" })).unwrap();
        assert!(FieldMap::new("sales", &bad).is_err());
    }
}
