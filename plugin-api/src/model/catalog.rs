//! Catalogue and ERP records: products, categories, payment methods, registers, inventory,
//! orders and suppliers.

use chrono::{DateTime, FixedOffset, NaiveDate};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A product (article) with its gross price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Product {
    /// The vendor's product id.
    pub id: String,
    /// The product name.
    pub name: String,
    /// A short name (receipt text), if the vendor has one.
    #[serde(default)]
    pub short_name: Option<String>,
    /// The id of its [`Category`].
    #[serde(default)]
    pub category_id: Option<String>,
    /// The stock-keeping unit.
    #[serde(default)]
    pub sku: Option<String>,
    /// The barcode (EAN/GTIN).
    #[serde(default)]
    pub barcode: Option<String>,
    /// The gross unit price.
    pub price: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// VAT rate in percent (e.g. `19`).
    pub tax_rate: Decimal,
    /// Whether it is on sale (default `true`).
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A product category (article group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Category {
    /// The vendor's category id.
    pub id: String,
    /// The category name.
    pub name: String,
    /// The id of the parent category, for nested groups.
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// A payment method as the source system names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentMethod {
    /// The vendor's id of the method.
    pub id: String,
    /// The name as the source system shows it.
    pub name: String,
    /// The normalized method (`cash`, `card`, …) it maps to.
    #[serde(default)]
    pub method: Option<String>,
}

/// A cash register of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Register {
    /// The vendor's register id.
    pub id: String,
    /// The store it stands in.
    pub store_id: String,
    /// Its name.
    pub name: String,
    /// The device or fiscal serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
}

/// Stock of a product at a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryItem {
    /// The vendor's id of the stock record.
    pub id: String,
    /// The product.
    pub product_id: String,
    /// The store or warehouse; `None` for the only one.
    #[serde(default)]
    pub store_id: Option<String>,
    /// Quantity on hand.
    pub quantity: Decimal,
    /// Unit of the quantity (`pcs`, `kg`, …).
    #[serde(default)]
    pub unit: Option<String>,
    /// When the vendor last changed it (a new version is delivered again).
    #[serde(default)]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

/// One line of a purchase or sales order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLine {
    /// The product, if the line names one.
    pub product_id: Option<String>,
    /// The line text.
    pub name: String,
    /// Quantity ordered.
    pub quantity: Decimal,
    /// Net unit price.
    pub unit_price: Decimal,
    /// VAT rate in percent.
    pub tax_rate: Decimal,
}

/// An order in the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// The vendor's order id.
    pub id: String,
    /// The order number people see.
    pub number: String,
    /// The order date.
    pub date: NaiveDate,
    /// The supplier, for purchase orders.
    #[serde(default)]
    pub supplier_id: Option<String>,
    /// The vendor's status text.
    #[serde(default)]
    pub status: Option<String>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The order lines.
    #[serde(default)]
    pub lines: Vec<OrderLine>,
    /// Net total.
    pub net: Decimal,
    /// Gross total.
    pub gross: Decimal,
}

/// A supplier (ERP contact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Supplier {
    /// The vendor's contact id.
    pub id: String,
    /// The supplier's name.
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// VAT identification number.
    #[serde(default)]
    pub vat_id: Option<String>,
}
