//! Catalogue and ERP records: products, categories, payment methods, registers, inventory,
//! orders and suppliers.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A product (article) with its gross price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub short_name: Option<String>,
    #[serde(default)]
    pub category_id: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub barcode: Option<String>,
    pub price: Decimal,
    pub currency: String,
    pub tax_rate: Decimal,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A product category (article group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Category {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// A payment method as the source system names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentMethod {
    pub id: String,
    pub name: String,
    /// The normalized method (`cash`, `card`, …) it maps to.
    #[serde(default)]
    pub method: Option<String>,
}

/// A cash register of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Register {
    pub id: String,
    pub store_id: String,
    pub name: String,
    #[serde(default)]
    pub serial_number: Option<String>,
}

/// Stock of a product at a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryItem {
    pub id: String,
    pub product_id: String,
    #[serde(default)]
    pub store_id: Option<String>,
    pub quantity: Decimal,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

/// One line of a purchase or sales order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLine {
    pub product_id: Option<String>,
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub tax_rate: Decimal,
}

/// An order in the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    pub id: String,
    pub number: String,
    pub date: NaiveDate,
    #[serde(default)]
    pub supplier_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub lines: Vec<OrderLine>,
    pub net: Decimal,
    pub gross: Decimal,
}

/// A supplier (ERP contact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Supplier {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub vat_id: Option<String>,
}
