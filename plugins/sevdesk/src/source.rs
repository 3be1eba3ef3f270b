//! The read side for syncERP: parts (as products and inventory), orders and suppliers
//! (contacts of the supplier category), paged with `limit` / `offset`.

use chrono::NaiveDate;
use posbridge_plugin_api::model::{
    decimal_from_json, round_money, Decimal, InventoryItem, Order, Product, Supplier,
};
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde_json::{json, Value};

use crate::error::{bad_field, RestError};
use crate::http::{id_of, objects, Client};

/// Reads the catalogue and ERP streams.
pub struct ErpReader<'a> {
    pub client: &'a Client,
}

impl ErpReader<'_> {
    pub fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let resource = match request.stream.as_str() {
            "products" | "inventory" => "Part",
            "orders" => "Order",
            "suppliers" => "Contact",
            other => {
                return Err(ConnectorError::Config(format!(
                    "sevdesk reads products, inventory, orders and suppliers, not {other:?}"
                )))
            }
        };
        let offset = request
            .cursor
            .as_ref()
            .and_then(|c| c.get("offset"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let limit = (request.page_size.max(1) as u64).min(self.client.config().page_size as u64);
        // `depth=1`: organisations and persons (spec, GET /Contact).
        let depth = if resource == "Contact" {
            "depth=1&"
        } else {
            ""
        };
        let path = format!("{resource}?{depth}limit={limit}&offset={offset}");
        let body = self.client.get(&path)?;
        let endpoint = format!("GET {resource}");
        let items = objects(&body, &endpoint)?;
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            let record = match request.stream.as_str() {
                "products" => Some(json!(self.product(item, &endpoint)?)),
                "inventory" => Some(json!(inventory(item, &endpoint)?)),
                "orders" => Some(json!(order(item, &endpoint)?)),
                _ => self.supplier(item, &endpoint)?.map(|s| json!(s)),
            };
            records.extend(record);
        }
        let has_more = items.len() as u64 == limit;
        // After the last page the next run starts over: catalogues are re-read in full.
        let next = if has_more {
            offset + items.len() as u64
        } else {
            0
        };
        Ok(Page {
            records,
            cursor: Some(json!({ "offset": next })),
            has_more,
        })
    }

    fn product(&self, part: &Value, endpoint: &str) -> Result<Product, RestError> {
        let id = id(part, endpoint)?;
        let tax_rate = number(part, "taxRate", endpoint)?;
        let currency = self.client.config().currency.clone();
        // The gross price; from the net price when a part has none.
        let price = match part.get("priceGross").and_then(decimal_from_json) {
            Some(p) => p,
            None => round_money(
                number(part, "priceNet", endpoint)?
                    * (Decimal::ONE + tax_rate / Decimal::ONE_HUNDRED),
                &currency,
            ),
        };
        Ok(Product {
            id,
            name: text(part, "name").unwrap_or_default(),
            short_name: None,
            category_id: part.get("category").and_then(id_of).map(|c| c.to_string()),
            sku: text(part, "partNumber"),
            barcode: None,
            price,
            currency,
            tax_rate,
            // Status 50 is "inactive", 100 "active".
            active: part.get("status").and_then(decimal_from_json) != Some(Decimal::from(50)),
        })
    }

    fn supplier(&self, contact: &Value, endpoint: &str) -> Result<Option<Supplier>, RestError> {
        let category = contact.get("category").and_then(id_of);
        if category != Some(self.client.config().supplier_category_id) {
            return Ok(None);
        }
        let name = text(contact, "name").unwrap_or_else(|| {
            [text(contact, "surename"), text(contact, "familyname")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(Some(Supplier {
            id: id(contact, endpoint)?,
            name,
            email: None,
            vat_id: text(contact, "vatNumber"),
        }))
    }
}

fn inventory(part: &Value, endpoint: &str) -> Result<InventoryItem, RestError> {
    let id = id(part, endpoint)?;
    Ok(InventoryItem {
        id: id.clone(),
        product_id: id,
        store_id: None,
        quantity: part
            .get("stock")
            .and_then(decimal_from_json)
            .unwrap_or_default(),
        unit: None,
        updated_at: part
            .get("update")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
    })
}

fn order(o: &Value, endpoint: &str) -> Result<Order, RestError> {
    let date = text(o, "orderDate")
        .as_deref()
        .and_then(parse_date)
        .ok_or_else(|| bad_field(endpoint, "orderDate", "a date"))?;
    Ok(Order {
        id: id(o, endpoint)?,
        number: text(o, "orderNumber").unwrap_or_default(),
        date,
        supplier_id: o.get("contact").and_then(id_of).map(|c| c.to_string()),
        status: o
            .get("status")
            .and_then(decimal_from_json)
            .map(|s| s.to_string()),
        currency: text(o, "currency").unwrap_or_else(|| "EUR".into()),
        lines: Vec::new(),
        net: number(o, "sumNet", endpoint)?,
        gross: number(o, "sumGross", endpoint)?,
    })
}

/// A date as sevDesk writes it: ISO 8601 (date or date-time) or dd.mm.yyyy.
fn parse_date(s: &str) -> Option<NaiveDate> {
    s.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .or_else(|| NaiveDate::parse_from_str(s, "%d.%m.%Y").ok())
}

fn id(v: &Value, endpoint: &str) -> Result<String, RestError> {
    id_of(v)
        .map(|i| i.to_string())
        .ok_or_else(|| bad_field(endpoint, "id", "an id"))
}

fn number(v: &Value, field: &str, endpoint: &str) -> Result<Decimal, RestError> {
    v.get(field)
        .and_then(decimal_from_json)
        .ok_or_else(|| bad_field(endpoint, field, "a number"))
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn reads_orders_with_string_numbers_and_both_date_forms() {
        let o = json!({"id": "5", "orderNumber": "AN-1", "orderDate": "2026-01-16T00:00:00+01:00",
            "status": "200", "contact": {"id": "9", "objectName": "Contact"}, "currency": "EUR",
            "sumNet": "100.00", "sumGross": "119.00"});
        let got = order(&o, "GET Order").unwrap();
        assert_eq!(got.date, NaiveDate::from_ymd_opt(2026, 1, 16).unwrap());
        assert_eq!((got.net, got.gross), (dec!(100.00), dec!(119.00)));
        assert_eq!(got.supplier_id.as_deref(), Some("9"));
        assert_eq!(
            parse_date("16.01.2026"),
            NaiveDate::from_ymd_opt(2026, 1, 16)
        );
        assert!(order(&json!({"id": "1"}), "GET Order").is_err());
    }

    #[test]
    fn reads_stock() {
        let p = json!({"id": "3", "stock": "12.5"});
        let item = inventory(&p, "GET Part").unwrap();
        assert_eq!((item.product_id.as_str(), item.quantity), ("3", dec!(12.5)));
    }
}
