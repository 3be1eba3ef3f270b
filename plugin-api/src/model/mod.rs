//! The canonical retail model: what every connector reads into and writes from.
//!
//! Money is [`Decimal`] with an ISO 4217 currency code, serialized as a JSON string ("12.34")
//! so that no float ever touches an amount. Each record type has an `id` that is stable across
//! reads of the same vendor record; the host derives idempotency keys from it.

mod catalog;
mod closure;
mod money;
mod payment_method;
mod psp;
mod sale;
mod sale_json;

pub use catalog::{
    Category, InventoryItem, Order, OrderLine, PaymentMethod, Product, Register, Supplier,
};
pub use closure::{Closure, ClosureKind, ClosureStatus, PaymentTotal};
pub use money::{
    currency_minor_units, decimal_from_json, decimal_from_minor_units, decimal_from_number,
    decimal_from_text, round_money, Money,
};
pub use payment_method::{normalise_payment_method, payment_method_fields, CanonicalMethod};
pub use psp::{BalanceTransaction, PspPayment, PspPayout, PspRefund};
pub use sale::{
    Attachment, Customer, FiscalSignature, Loyalty, Party, Payment, RksvSignature, Sale, SaleKind,
    SaleLine, TaxLine, Totals, TseSignature, Violation,
};
pub use sale_json::write_sale_json;

pub use rust_decimal::Decimal;

use serde_json::Value;

/// The canonical stream names.
pub const STREAMS: &[&str] = &[
    "sales",
    "products",
    "categories",
    "payment_methods",
    "registers",
    "inventory",
    "orders",
    "suppliers",
    "payments",
    "refunds",
    "payouts",
    "balance_transactions",
    "closures",
];

/// The JSON Schema (draft 2020-12) of one record of a canonical stream.
///
/// ```
/// let s = posbridge_plugin_api::model::stream_schema("sales").unwrap();
/// assert_eq!(s["title"], "Sale");
/// assert!(posbridge_plugin_api::model::stream_schema("nope").is_none());
/// ```
pub fn stream_schema(stream: &str) -> Option<Value> {
    use schemars::schema_for;
    let s = match stream {
        "sales" => schema_for!(Sale),
        "products" => schema_for!(Product),
        "categories" => schema_for!(Category),
        "payment_methods" => schema_for!(PaymentMethod),
        "registers" => schema_for!(Register),
        "inventory" => schema_for!(InventoryItem),
        "orders" => schema_for!(Order),
        "suppliers" => schema_for!(Supplier),
        "payments" => schema_for!(PspPayment),
        "refunds" => schema_for!(PspRefund),
        "payouts" => schema_for!(PspPayout),
        "balance_transactions" => schema_for!(BalanceTransaction),
        "closures" => schema_for!(Closure),
        _ => return None,
    };
    serde_json::to_value(s).ok()
}

/// The natural id of a canonical record (its `id` field), from which idempotency keys derive.
pub fn record_id(record: &Value) -> Option<String> {
    match record.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
