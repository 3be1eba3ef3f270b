//! Cash registers, article groups and payment methods → canonical catalogue records.

use posbridge_plugin_api::model::{
    normalise_payment_method, Category, PaymentMethod, Product, Register,
};
use serde_json::Value;

use crate::config::Config;
use crate::error::KassandroError;
use crate::fields::{array_answer, Fields};
use crate::receipt::{StoreOfRegister, CURRENCY};

/// `GET /cashregisters` → registers. An entry needs only its Kassa-ID (`cashRegisterId`, or
/// `id`); without a `locationId` its store comes from the configuration, without a `name` it is
/// called `Kassa <id>`.
pub fn registers(body: &Value, cfg: &Config) -> Result<Vec<Register>, KassandroError> {
    const EP: &str = "cashregisters";
    array_answer(body, EP)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = Fields::new(v, EP, format!("[{i}]"))?;
            let id = match f.opt_unsigned("cashRegisterId")? {
                Some(id) => id,
                None => f.unsigned("id")?,
            };
            Ok(Register {
                id: id.to_string(),
                store_id: f
                    .opt_string("locationId")?
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| cfg.store_of_unlocated(id)),
                name: f
                    .opt_string("name")?
                    .unwrap_or_else(|| format!("Kassa {id}")),
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
                method: Some(normalise_payment_method(&name).0.to_string()),
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

    fn cfg(extra: Value) -> Config {
        let mut c = json!({"api_key": "k"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn maps_registers_and_their_stores() {
        let body = json!([
            {"_id": "a", "cashRegisterId": 2, "name": "Kassa 2", "locationId": "graz", "serialNumber": "AT-2"},
            {"_id": "b", "cashRegisterId": 3, "name": "Kassa 3"},
            {"id": "4", "name": "Theke"},
            {"id": 5}
        ]);
        let regs = registers(&body, &cfg(json!({}))).unwrap();
        assert_eq!(regs[0].id, "2");
        assert_eq!(regs[1].store_id, "default");
        assert_eq!((regs[2].id.as_str(), regs[2].name.as_str()), ("4", "Theke"));
        assert_eq!(regs[3].name, "Kassa 5");
        let c = cfg(json!({"default_store_id": "wien", "register_stores": {"4": "linz"}}));
        let regs = registers(&body, &c).unwrap();
        let stores: Vec<&str> = regs.iter().map(|r| r.store_id.as_str()).collect();
        assert_eq!(stores, ["graz", "wien", "linz", "wien"]);
        assert!(registers(&json!([{"name": "no id"}]), &c)
            .unwrap_err()
            .to_string()
            .contains("[0].id"));
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
        let pms = payment_methods(&json!([{"_id": "p1", "name": "Bar"},
            {"_id": "p2", "name": "Apple Pay"}, {"name": "EC_CARD"}]))
        .unwrap();
        assert_eq!(pms[0].method.as_deref(), Some("cash"));
        assert_eq!(pms[1].method.as_deref(), Some("apple pay"));
        assert_eq!(
            (
                pms[2].id.as_str(),
                pms[2].name.as_str(),
                pms[2].method.as_deref()
            ),
            ("EC_CARD", "EC_CARD", Some("card"))
        );
    }
}
