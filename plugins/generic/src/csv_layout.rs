//! The CSV flattening: one row per record, one column per top-level field.
//!
//! Which columns hold plain text is decided by the stream's canonical JSON Schema:
//! - **text columns** (the field is a string, a decimal, a date, an enum, optionally nullable):
//!   the string as is. The string is JSON-quoted only when it would otherwise be ambiguous —
//!   when it is empty, is `null`, or starts with `"`. A JSON `null` is written `null`.
//!   A JSON number in a text column (a decimal sent as a number) is written as its text and
//!   reads back as the decimal string.
//! - **JSON columns** (everything else: arrays, objects, integers, booleans): the value's
//!   compact JSON text.
//! - **free columns** (fields the schema does not know): written like JSON columns; read as
//!   JSON when the cell parses as JSON, else as the plain string (so foreign CSV files with
//!   extra text columns read too, and what this connector wrote reads back exactly).
//! - In both, an **empty cell** means the field is absent from the record.
//!
//! So `12.50` stays `"12.50"`, `lines` is a JSON array in one cell, and every record written
//! reads back as the same JSON value (up to decimals sent as numbers, which come back as strings).

use std::collections::{BTreeMap, BTreeSet};

use posbridge_plugin_api::model::stream_schema;
use serde_json::{Map, Value};

/// How one column's cells are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Text,
    Json,
    Free,
}

/// The columns of a stream and how each is encoded.
#[derive(Debug, Clone, Default)]
pub struct CsvLayout {
    kinds: BTreeMap<String, CellKind>,
}

impl CsvLayout {
    /// The layout of a canonical stream, from its JSON Schema.
    pub fn for_stream(stream: &str) -> CsvLayout {
        let mut kinds = BTreeMap::new();
        if let Some(schema) = stream_schema(stream) {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    kinds.insert(name.clone(), classify(&schema, prop));
                }
            }
        }
        CsvLayout { kinds }
    }

    /// How `column` is encoded; columns the schema does not know are free.
    pub fn kind(&self, column: &str) -> CellKind {
        self.kinds.get(column).copied().unwrap_or(CellKind::Free)
    }

    /// The header for a new file: `id` first, then the other canonical fields, then any other
    /// field found in `records`, sorted.
    pub fn header_for<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Map<String, Value>>,
    ) -> Vec<String> {
        let mut header: Vec<String> = Vec::new();
        if self.kinds.contains_key("id") {
            header.push("id".into());
        }
        header.extend(self.kinds.keys().filter(|k| *k != "id").cloned());
        let extra: BTreeSet<&String> = records
            .into_iter()
            .flat_map(|r| r.keys())
            .filter(|k| !self.kinds.contains_key(*k))
            .collect();
        header.extend(extra.into_iter().cloned());
        header
    }

    /// The cells of `record` under `header`, or why it cannot be written.
    pub fn encode(
        &self,
        header: &[String],
        record: &Map<String, Value>,
    ) -> Result<Vec<String>, String> {
        if let Some(k) = record.keys().find(|k| !header.contains(k)) {
            return Err(format!("field {k:?} has no column in the CSV header"));
        }
        header
            .iter()
            .map(|col| match record.get(col) {
                None => Ok(String::new()),
                Some(v) => {
                    encode_cell(self.kind(col), v).map_err(|m| format!("field {col:?}: {m}"))
                }
            })
            .collect()
    }

    /// The record a row stands for, or why the row is not valid.
    pub fn decode<'a>(
        &self,
        header: &[String],
        cells: impl IntoIterator<Item = &'a str>,
    ) -> Result<Map<String, Value>, String> {
        let mut record = Map::new();
        for (col, cell) in header.iter().zip(cells) {
            if let Some(v) =
                decode_cell(self.kind(col), cell).map_err(|m| format!("column {col:?}: {m}"))?
            {
                record.insert(col.clone(), v);
            }
        }
        Ok(record)
    }
}

fn encode_cell(kind: CellKind, v: &Value) -> Result<String, String> {
    match (kind, v) {
        (CellKind::Text, Value::String(s)) if s.is_empty() || s == "null" || s.starts_with('"') => {
            Ok(Value::String(s.clone()).to_string())
        }
        (CellKind::Text, Value::String(s)) => Ok(s.clone()),
        (CellKind::Text, Value::Null) => Ok("null".into()),
        (CellKind::Text, Value::Number(n)) => Ok(n.to_string()),
        (CellKind::Text, other) => Err(format!("a text field cannot hold {other}")),
        (CellKind::Json | CellKind::Free, v) => Ok(v.to_string()),
    }
}

fn decode_cell(kind: CellKind, cell: &str) -> Result<Option<Value>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    match kind {
        CellKind::Text if cell == "null" => Ok(Some(Value::Null)),
        CellKind::Text if cell.starts_with('"') => serde_json::from_str::<String>(cell)
            .map(|s| Some(Value::String(s)))
            .map_err(|e| format!("quoted text is not a JSON string: {e}")),
        CellKind::Text => Ok(Some(Value::String(cell.to_string()))),
        CellKind::Json => serde_json::from_str(cell)
            .map(Some)
            .map_err(|e| format!("cell is not JSON: {e}")),
        CellKind::Free => Ok(Some(
            serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_string())),
        )),
    }
}

/// Text when the field's schema only admits strings (and perhaps numbers for decimals, or null).
fn classify(root: &Value, prop: &Value) -> CellKind {
    let mut types = BTreeSet::new();
    if collect_types(root, prop, &mut types, 0) && types.contains("string") {
        let allowed = ["string", "number", "null"];
        if types.iter().all(|t| allowed.contains(t)) {
            return CellKind::Text;
        }
    }
    CellKind::Json
}

/// Gathers the JSON types a schema admits; `false` when it cannot tell.
fn collect_types<'a>(
    root: &'a Value,
    node: &'a Value,
    out: &mut BTreeSet<&'a str>,
    depth: usize,
) -> bool {
    if depth > 8 {
        return false;
    }
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => match root.pointer(&r[1..]) {
            Some(target) => target,
            None => return false,
        },
        Some(_) => return false,
        None => node,
    };
    match node.get("type") {
        Some(Value::String(t)) => {
            out.insert(t);
            return true;
        }
        Some(Value::Array(ts)) => {
            for t in ts {
                match t.as_str() {
                    Some(t) => out.insert(t),
                    None => return false,
                };
            }
            return true;
        }
        _ => {}
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        for v in values {
            match v {
                Value::String(_) => out.insert("string"),
                Value::Null => out.insert("null"),
                _ => return false,
            };
        }
        return true;
    }
    if let Some(c) = node.get("const") {
        return match c {
            Value::String(_) => {
                out.insert("string");
                true
            }
            _ => false,
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = node.get(key).and_then(Value::as_array) {
            return variants
                .iter()
                .all(|v| collect_types(root, v, out, depth + 1));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sale_columns_are_typed_from_the_schema() {
        let layout = CsvLayout::for_stream("sales");
        for text in [
            "id",
            "kind",
            "cancels",
            "business_day",
            "timestamp",
            "currency",
        ] {
            assert_eq!(layout.kind(text), CellKind::Text, "{text}");
        }
        for js in ["lines", "payments", "taxes", "totals", "cashier", "fiscal"] {
            assert_eq!(layout.kind(js), CellKind::Json, "{js}");
        }
        assert_eq!(layout.kind("not_canonical"), CellKind::Free);
        let products = CsvLayout::for_stream("products");
        assert_eq!(products.kind("price"), CellKind::Text);
        assert_eq!(products.kind("active"), CellKind::Json);
    }

    #[test]
    fn ambiguous_strings_null_and_absence_round_trip() {
        let layout = CsvLayout::for_stream("products");
        let record = json!({
            "id": "", "name": "null", "short_name": null, "sku": "\"quoted\"",
            "price": "12.50", "currency": "EUR", "tax_rate": "7", "active": false,
            "extra": {"a": [1, "2.0"]}
        });
        let record = record.as_object().unwrap();
        let header = layout.header_for([record]);
        assert_eq!(header[0], "id");
        assert_eq!(header.last().map(String::as_str), Some("extra"));
        let cells = layout.encode(&header, record).unwrap();
        let cell = |c: &str| cells[header.iter().position(|h| h == c).unwrap()].clone();
        assert_eq!(cell("price"), "12.50");
        assert_eq!(cell("id"), "\"\"");
        assert_eq!(cell("name"), "\"null\"");
        assert_eq!(cell("short_name"), "null");
        assert_eq!(cell("barcode"), "");
        let back = layout
            .decode(&header, cells.iter().map(String::as_str))
            .unwrap();
        assert_eq!(&back, record);
    }

    #[test]
    fn free_columns_read_plain_text_from_foreign_files() {
        let layout = CsvLayout::for_stream("sales");
        let header = vec!["id".to_string(), "note".to_string(), "count".to_string()];
        let back = layout
            .decode(&header, ["7", "Kasse 2, Filiale", "3"])
            .unwrap();
        assert_eq!(
            Value::Object(back),
            json!({"id": "7", "note": "Kasse 2, Filiale", "count": 3})
        );
        // A string that looks like JSON is quoted when written, so it reads back as a string.
        let record = json!({"id": "8", "note": "3"});
        let cells = layout.encode(&header, record.as_object().unwrap()).unwrap();
        assert_eq!(cells[1], "\"3\"");
        let back = layout
            .decode(&header, cells.iter().map(String::as_str))
            .unwrap();
        assert_eq!(Value::Object(back), record);
    }

    #[test]
    fn fields_without_a_column_and_objects_in_text_columns_are_refused() {
        let layout = CsvLayout::for_stream("products");
        let header = vec!["id".to_string(), "name".to_string()];
        let with_extra = json!({"id": "1", "surprise": 1});
        assert!(layout
            .encode(&header, with_extra.as_object().unwrap())
            .unwrap_err()
            .contains("surprise"));
        let object_name = json!({"id": "1", "name": {"x": 1}});
        assert!(layout
            .encode(&header, object_name.as_object().unwrap())
            .is_err());
        assert!(layout.decode(&header, ["1", "\"unterminated"]).is_err());
    }
}
