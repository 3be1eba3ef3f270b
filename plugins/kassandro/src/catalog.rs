//! Cash registers, article groups and payment methods → canonical catalogue records.

use posbridge_plugin_api::model::{Category, PaymentMethod, Product, Register};
use serde_json::Value;

use crate::error::KassandroError;
use crate::fields::{array_answer, Fields};
use crate::payment_names::canonical_method;
use crate::receipt::{StoreOfRegister, CURRENCY, DEFAULT_STORE};

/// `GET /cashregisters` → registers.
pub fn registers(body: &Value) -> Result<Vec<Register>, KassandroError> {
    const EP: &str = "cashregisters";
    array_answer(body, EP)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = Fields::new(v, EP, format!("[{i}]"))?;
            Ok(Register {
                id: f.unsigned("cashRegisterId")?.to_string(),
                store_id: f
                    .opt_string("locationId")?
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| DEFAULT_STORE.into()),
                name: f.string("name")?,
                serial_number: f.opt_string("serialNumber")?,
            })
        })
        .collect()
}

/// The store of every register, for the sales mapping.
pub fn store_of_register(registers: &[Register]) -> StoreOfRegister {
    registers
        .iter()
        .filter_map(|r| Some((r.id.parse().ok()?, r.store_id.clone())))
        .collect()
}

/// `GET /articles` → the article groups as categories.
pub fn categories(body: &Value) -> Result<Vec<Category>, KassandroError> {
    const EP: &str = "articles";
    array_answer(body, EP)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let g = Fields::new(v, EP, format!("[{i}]"))?;
            Ok(Category {
                id: g.unsigned("groupId")?.to_string(),
                name: g.string("groupName")?,
                parent_id: None,
            })
        })
        .collect()
}

/// `GET /articles` → the articles of every group as products.
pub fn products(body: &Value) -> Result<Vec<Product>, KassandroError> {
    const EP: &str = "articles";
    let mut out = Vec::new();
    for (i, v) in array_answer(body, EP)?.iter().enumerate() {
        let g = Fields::new(v, EP, format!("[{i}]"))?;
        let group = g.unsigned("groupId")?.to_string();
        for (j, a) in g.array("articles")?.iter().enumerate() {
            let a = Fields::new(a, EP, g.path(&format!("articles[{j}]")))?;
            out.push(Product {
                id: a.unsigned("itemId")?.to_string(),
                name: a.string("nameLong")?,
                short_name: a.opt_string("nameShort")?,
                category_id: Some(group.clone()),
                sku: None,
                barcode: a.opt_string("barcode")?,
                price: a.money("price")?,
                currency: CURRENCY.into(),
                tax_rate: a.decimal("vat")?,
                active: a.get("active").and_then(Value::as_bool).unwrap_or(true),
            });
        }
    }
    Ok(out)
}

/// `GET /paymentmethods` → payment methods.
pub fn payment_methods(body: &Value) -> Result<Vec<PaymentMethod>, KassandroError> {
    const EP: &str = "paymentmethods";
    array_answer(body, EP)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = Fields::new(v, EP, format!("[{i}]"))?;
            let name = f.string("name")?;
            Ok(PaymentMethod {
                id: f.opt_string("_id")?.unwrap_or_else(|| name.clone()),
                method: Some(canonical_method(&name)),
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn maps_registers_and_their_stores() {
        let body = json!([
            {"_id": "a", "cashRegisterId": 2, "name": "Kassa 2", "locationId": "graz", "serialNumber": "AT-2"},
            {"_id": "b", "cashRegisterId": 3, "name": "Kassa 3"}
        ]);
        let regs = registers(&body).unwrap();
        assert_eq!(regs[0].id, "2");
        assert_eq!(regs[1].store_id, DEFAULT_STORE);
        let stores = store_of_register(&regs);
        assert_eq!(stores.get(&2).map(String::as_str), Some("graz"));
    }

    #[test]
    fn maps_articles_to_categories_and_products() {
        let body = json!([{"groupId": 3, "groupName": "Heißgetränke", "articles": [
            {"itemId": 12, "nameLong": "Melange groß", "nameShort": "Melange", "price": 4.20, "vat": 10,
             "barcode": null, "active": false}]}]);
        let cats = categories(&body).unwrap();
        assert_eq!(
            (cats[0].id.as_str(), cats[0].name.as_str()),
            ("3", "Heißgetränke")
        );
        let prods = products(&body).unwrap();
        assert_eq!(prods[0].price, dec!(4.20));
        assert_eq!(prods[0].category_id.as_deref(), Some("3"));
        assert!(!prods[0].active);
        let bad = json!([{"groupId": 3, "groupName": "x", "articles": [{"itemId": 1, "nameLong": "y", "vat": 10}]}]);
        assert!(products(&bad)
            .unwrap_err()
            .to_string()
            .contains("[0].articles[0].price"));
    }

    #[test]
    fn maps_payment_methods() {
        let pms = payment_methods(
            &json!([{"_id": "p1", "name": "Bar"}, {"_id": "p2", "name": "Apple Pay"}]),
        )
        .unwrap();
        assert_eq!(pms[0].method.as_deref(), Some("cash"));
        assert_eq!(pms[1].method.as_deref(), Some("apple pay"));
    }
}
