//! Which columns a CSV export has and what goes in each cell.
//!
//! `sales` get a fixed set of the main scalar columns (a flat receipt list for spreadsheets);
//! every other stream gets its top-level fields as columns, nested values as JSON in the cell.

use serde_json::Value;

/// The columns of a `sales` CSV export, in order.
pub const SALES_COLUMNS: &[&str] = &[
    "id",
    "store_id",
    "register_id",
    "receipt_number",
    "kind",
    "business_day",
    "timestamp",
    "currency",
    "net",
    "tax",
    "gross",
    "payment_methods",
];

/// Separates the payment methods of a split payment in the `payment_methods` cell. Neither `,`
/// nor `;`, so the cell reads the same whichever delimiter a spreadsheet guesses.
pub const PAYMENT_METHOD_SEPARATOR: &str = "|";

/// How records of one stream become CSV rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvColumns {
    /// The fixed [`SALES_COLUMNS`].
    Sales,
    /// Top-level fields, known up front (from the stream's canonical schema).
    Fields(Vec<String>),
    /// Top-level fields of the first record (a stream without a canonical schema).
    FromFirstRecord,
}

impl CsvColumns {
    /// The layout for `stream`.
    pub fn for_stream(stream: &str) -> Self {
        if stream == "sales" {
            return CsvColumns::Sales;
        }
        let properties = posbridge_plugin_api::model::stream_schema(stream)
            .and_then(|s| s.get("properties").and_then(Value::as_object).cloned());
        match properties {
            Some(p) => CsvColumns::Fields(p.keys().cloned().collect()),
            None => CsvColumns::FromFirstRecord,
        }
    }

    /// The header, once known (`FromFirstRecord` needs a record).
    pub fn header(&self, first: Option<&Value>) -> Option<Vec<String>> {
        match self {
            CsvColumns::Sales => Some(SALES_COLUMNS.iter().map(|s| s.to_string()).collect()),
            CsvColumns::Fields(f) => Some(f.clone()),
            CsvColumns::FromFirstRecord => first
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect()),
        }
    }

    /// The cells of one record under `header`.
    pub fn row(&self, header: &[String], record: &Value) -> Vec<String> {
        match self {
            CsvColumns::Sales => sales_row(record),
            _ => header.iter().map(|f| cell(record.get(f))).collect(),
        }
    }
}

/// One sale as the [`SALES_COLUMNS`] cells.
fn sales_row(sale: &Value) -> Vec<String> {
    let totals = sale.get("totals");
    let mut methods: Vec<&str> = Vec::new();
    for p in sale
        .get("payments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(m) = p.get("method").and_then(Value::as_str) {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    SALES_COLUMNS
        .iter()
        .map(|c| match *c {
            "net" | "tax" | "gross" => cell(totals.and_then(|t| t.get(*c))),
            "payment_methods" => methods.join(PAYMENT_METHOD_SEPARATOR),
            field => cell(sale.get(field)),
        })
        .collect()
}

/// A cell: strings as they are, numbers and booleans as JSON text, null or missing empty,
/// objects and arrays as compact JSON.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sale_row_takes_totals_and_distinct_payment_methods() {
        let sale = json!({
            "id": "x:S1:R1:7", "store_id": "S1", "register_id": "R1", "receipt_number": "7",
            "kind": "sale", "business_day": "2026-02-01", "timestamp": "2026-02-01T10:00:00+01:00",
            "currency": "EUR", "totals": {"net": "3.22", "tax": "0.35", "gross": "3.57"},
            "payments": [{"method": "card"}, {"method": "cash"}, {"method": "card"}]
        });
        let header = CsvColumns::Sales.header(None).unwrap();
        let row = CsvColumns::Sales.row(&header, &sale);
        assert_eq!(row.len(), SALES_COLUMNS.len());
        assert_eq!(row[0], "x:S1:R1:7");
        assert_eq!(&row[8..], &["3.22", "0.35", "3.57", "card|cash"]);
    }

    #[test]
    fn other_streams_use_schema_fields_and_json_for_nested_values() {
        let cols = CsvColumns::for_stream("closures");
        let CsvColumns::Fields(fields) = &cols else {
            panic!("closures have a schema: {cols:?}")
        };
        assert!(fields.iter().any(|f| f == "id"));
        assert_eq!(cell(Some(&json!({"a": [1, 2]}))), r#"{"a":[1,2]}"#);
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(Some(&json!(true))), "true");
        let unknown = CsvColumns::for_stream("not_canonical");
        assert_eq!(unknown, CsvColumns::FromFirstRecord);
        assert_eq!(
            unknown.header(Some(&json!({"b": 1, "a": 2}))).unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            unknown.row(&["a".into(), "z".into()], &json!({"a": "v"})),
            vec!["v", ""]
        );
    }
}
