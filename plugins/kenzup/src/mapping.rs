//! One Kenzup export row → one canonical [`Sale`] (see the mapping table in
//! `docs/connectors/kenzup.md`).

use chrono::{DateTime, FixedOffset, Utc};
use posbridge_plugin_api::model::{
    decimal_from_json, payment_method_fields, Customer, Loyalty, Party, Payment, Sale, SaleKind,
    Totals,
};
use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `source_system` of every sale this connector emits.
pub const SOURCE_SYSTEM: &str = "kenzup";
/// The default `currency`: the export names none, but the signature example in the vendor
/// document carries a payload with `"currency": "MAD"` (Kenz'up is Moroccan).
pub const DEFAULT_CURRENCY: &str = "MAD";
/// `register_id` of a row whose `terminal_id` is empty.
pub const DEFAULT_REGISTER: &str = "default";
/// Prefix of a receipt number derived from the row (when `order_id` is empty).
pub const DERIVED_RECEIPT_PREFIX: &str = "kz-";

/// The fields hashed, in order, into a derived receipt number.
const DERIVED_ID_FIELDS: &[&str] = &[
    "shop_id",
    "terminal_id",
    "agent_id",
    "sale_timestamp",
    "sale_amount",
    "earn_burn",
    "amount",
    "payment_type",
    "mobile_number",
];

/// Why a row cannot be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("the item is not a JSON object")]
    NotAnObject,
    #[error("the item lacks field `{0}`")]
    Missing(&'static str),
    #[error("the item's field `{field}` is invalid: {value}")]
    Invalid { field: &'static str, value: String },
}

/// A mapped row, with a note when part of it could not be expressed.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSale {
    pub sale: Sale,
    pub warning: Option<String>,
}

/// A field's text as sent: strings as they are, numbers and booleans by their JSON text,
/// null or absent as empty.
fn field_text(row: &Value, field: &str) -> String {
    match row.get(field) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A non-empty trimmed string field, or `None`.
fn opt_text(row: &Value, field: &str) -> Option<String> {
    let t = field_text(row, field);
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn required<'a>(row: &'a Value, field: &'static str) -> Result<&'a Value, RowError> {
    match row.get(field) {
        None | Some(Value::Null) => Err(RowError::Missing(field)),
        Some(v) => Ok(v),
    }
}

fn decimal(row: &Value, field: &'static str) -> Result<Decimal, RowError> {
    let v = required(row, field)?;
    decimal_from_json(v).ok_or_else(|| RowError::Invalid {
        field,
        value: v.to_string(),
    })
}

/// The receipt number of a row without `order_id`: `kz-` + 16 hex digits of SHA-256 over
/// the row's identifying fields joined by `|`. Stable for the same row across reads.
pub fn derived_receipt_number(row: &Value) -> String {
    let joined = DERIVED_ID_FIELDS
        .iter()
        .map(|f| field_text(row, f))
        .collect::<Vec<_>>()
        .join("|");
    let digest = Sha256::digest(joined.as_bytes());
    format!("{DERIVED_RECEIPT_PREFIX}{}", &hex::encode(digest)[..16])
}

/// Parses `sale_timestamp` (RFC 3339) and keeps it in UTC.
fn timestamp(row: &Value) -> Result<DateTime<FixedOffset>, RowError> {
    let field = "sale_timestamp";
    let v = required(row, field)?;
    let s = v.as_str().ok_or_else(|| RowError::Invalid {
        field,
        value: v.to_string(),
    })?;
    let t = DateTime::parse_from_rfc3339(s.trim()).map_err(|e| RowError::Invalid {
        field,
        value: format!("{s:?} ({e})"),
    })?;
    Ok(t.with_timezone(&Utc).fixed_offset())
}

/// Maps one export row to a canonical sale in `currency` (the export itself names none).
pub fn sale_from_row(row: &Value, currency: &str) -> Result<MappedSale, RowError> {
    if !row.is_object() {
        return Err(RowError::NotAnObject);
    }
    let store_id = opt_text(row, "shop_id").ok_or(RowError::Missing("shop_id"))?;
    let sale_amount = decimal(row, "sale_amount")?;
    let earn_burn_value = required(row, "earn_burn")?;
    let earn_burn = earn_burn_value.as_str().ok_or_else(|| RowError::Invalid {
        field: "earn_burn",
        value: earn_burn_value.to_string(),
    })?;
    let timestamp = timestamp(row)?;
    let points = match row.get("amount") {
        None | Some(Value::Null) => Decimal::ZERO,
        Some(v) => decimal_from_json(v).ok_or_else(|| RowError::Invalid {
            field: "amount",
            value: v.to_string(),
        })?,
    };
    let pending_approval = row
        .get("points_pending_approval")
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let register_id = opt_text(row, "terminal_id").unwrap_or_else(|| DEFAULT_REGISTER.to_string());
    let order_id = opt_text(row, "order_id");
    let receipt_number = order_id
        .clone()
        .unwrap_or_else(|| derived_receipt_number(row));

    let mut warning = None;
    let loyalty = match earn_burn.trim().to_ascii_lowercase().as_str() {
        "earn" => Some(Loyalty {
            points_earned: points,
            points_burned: Decimal::ZERO,
            pending_approval,
        }),
        "burn" => Some(Loyalty {
            points_earned: Decimal::ZERO,
            points_burned: points,
            pending_approval,
        }),
        other => {
            warning = Some(format!(
                "unknown earn_burn {other:?}: loyalty points not mapped"
            ));
            None
        }
    };
    let (method, method_raw) = opt_text(row, "payment_type")
        .map(|raw| payment_method_fields(&raw))
        .unwrap_or_else(|| ("unknown".to_string(), None));

    let sale = Sale {
        id: Sale::make_id(SOURCE_SYSTEM, &store_id, &register_id, &receipt_number),
        source_system: SOURCE_SYSTEM.to_string(),
        store_id,
        register_id,
        receipt_number,
        kind: if sale_amount.is_sign_negative() && !sale_amount.is_zero() {
            SaleKind::Refund
        } else {
            SaleKind::Sale
        },
        cancels: None,
        business_day: timestamp.date_naive(),
        timestamp,
        timezone: None,
        currency: currency.to_string(),
        cashier: opt_text(row, "agent_id").map(|id| Party {
            id: Some(id),
            name: None,
        }),
        customer: opt_text(row, "mobile_number").map(|phone| Customer {
            id: None,
            name: None,
            external_id: None,
            phone: Some(phone),
        }),
        lines: vec![],
        payments: vec![Payment {
            method,
            amount: sale_amount,
            currency: currency.to_string(),
            psp_reference: None,
            method_raw,
        }],
        // No tax information exists in the export: gross only, so the sale still reconciles.
        taxes: vec![],
        totals: Totals {
            net: sale_amount,
            tax: Decimal::ZERO,
            gross: sale_amount,
            discount: Decimal::ZERO,
        },
        fiscal: None,
        loyalty,
        attachments: vec![],
        raw_id: order_id,
    };
    Ok(MappedSale { sale, warning })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    /// The seed document's sample item, verbatim.
    fn seed_item() -> Value {
        json!({
            "earn_burn": "earn",
            "amount": 4.0,
            "sale_amount": 10.0,
            "payment_type": "dummy",
            "points_pending_approval": false,
            "shop_commercial_name": "sss",
            "shop_id": "b5f6e9e3-6848-49cd-bcc0-726cbe99bf68",
            "type": "auto",
            "brand": "Afriquia",
            "order_id": "",
            "terminal_id": "",
            "agent_id": null,
            "sale_timestamp": "2023-08-26T10:25:34.088731Z",
            "mobile_number": "+212111111111"
        })
    }

    #[test]
    fn the_configured_currency_is_on_the_sale_and_its_payment() {
        let s = sale_from_row(&seed_item(), "EUR").unwrap().sale;
        assert_eq!(s.currency, "EUR");
        assert_eq!(s.payments[0].currency, "EUR");
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn payment_types_go_through_the_shared_table() {
        let mut row = seed_item();
        for (raw, method, kept) in [
            ("CASH", "cash", Some("CASH")),
            ("Karte", "card", Some("Karte")),
            ("EC_CARD", "card", Some("EC_CARD")),
            ("creditcard", "card", Some("creditcard")),
            ("cash", "cash", None),
        ] {
            row["payment_type"] = json!(raw);
            let s = sale_from_row(&row, DEFAULT_CURRENCY).unwrap().sale;
            let p = &s.payments[0];
            assert_eq!(
                (p.method.as_str(), p.method_raw.as_deref()),
                (method, kept),
                "{raw}"
            );
        }
    }

    #[test]
    fn maps_the_seed_sample() {
        let m = sale_from_row(&seed_item(), DEFAULT_CURRENCY).unwrap();
        let s = &m.sale;
        assert!(m.warning.is_none());
        assert_eq!(s.store_id, "b5f6e9e3-6848-49cd-bcc0-726cbe99bf68");
        assert_eq!(s.register_id, DEFAULT_REGISTER);
        assert!(s.receipt_number.starts_with(DERIVED_RECEIPT_PREFIX));
        assert_eq!(s.receipt_number.len(), DERIVED_RECEIPT_PREFIX.len() + 16);
        assert_eq!(
            s.id,
            format!("kenzup:{}:default:{}", s.store_id, s.receipt_number)
        );
        assert_eq!(s.raw_id, None);
        assert_eq!(s.kind, SaleKind::Sale);
        assert_eq!(s.currency, "MAD");
        assert_eq!(s.totals.gross, dec!(10));
        assert_eq!(s.totals.net, dec!(10));
        assert_eq!(s.totals.tax, dec!(0));
        assert_eq!(s.payments.len(), 1);
        assert_eq!(s.payments[0].method, "dummy");
        assert_eq!(s.payments[0].amount, dec!(10));
        let l = s.loyalty.as_ref().unwrap();
        assert_eq!(
            (l.points_earned, l.points_burned, l.pending_approval),
            (dec!(4), dec!(0), false)
        );
        assert_eq!(s.cashier, None);
        assert_eq!(
            s.customer.as_ref().unwrap().phone.as_deref(),
            Some("+212111111111")
        );
        assert_eq!(s.timestamp.to_rfc3339(), "2023-08-26T10:25:34.088731+00:00");
        assert_eq!(s.business_day.to_string(), "2023-08-26");
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn derived_receipt_number_is_stable_and_field_sensitive() {
        let a = derived_receipt_number(&seed_item());
        assert_eq!(a, derived_receipt_number(&seed_item()));
        let mut other = seed_item();
        other["sale_amount"] = json!(11.0);
        assert_ne!(a, derived_receipt_number(&other));
        // Unused fields do not change it.
        let mut renamed = seed_item();
        renamed["shop_commercial_name"] = json!("other");
        assert_eq!(a, derived_receipt_number(&renamed));
    }

    #[test]
    fn burn_with_order_and_terminal_and_string_amounts() {
        let mut row = seed_item();
        row["earn_burn"] = json!("burn");
        row["amount"] = json!("120");
        row["sale_amount"] = json!("12.45");
        row["order_id"] = json!("TX_1");
        row["terminal_id"] = json!("POS_9");
        row["agent_id"] = json!("AG_1");
        row["points_pending_approval"] = json!(true);
        let s = sale_from_row(&row, DEFAULT_CURRENCY).unwrap().sale;
        assert_eq!(
            s.id,
            "kenzup:b5f6e9e3-6848-49cd-bcc0-726cbe99bf68:POS_9:TX_1"
        );
        assert_eq!(s.raw_id.as_deref(), Some("TX_1"));
        assert_eq!(s.totals.gross, dec!(12.45));
        let l = s.loyalty.unwrap();
        assert_eq!(
            (l.points_earned, l.points_burned, l.pending_approval),
            (dec!(0), dec!(120), true)
        );
        assert_eq!(s.cashier.unwrap().id.as_deref(), Some("AG_1"));
    }

    #[test]
    fn negative_amount_is_a_refund_and_unknown_type_warns() {
        let mut row = seed_item();
        row["sale_amount"] = json!("-5.50");
        row["earn_burn"] = json!("reversal");
        let m = sale_from_row(&row, DEFAULT_CURRENCY).unwrap();
        assert_eq!(m.sale.kind, SaleKind::Refund);
        assert!(m.sale.loyalty.is_none());
        assert!(m.warning.unwrap().contains("reversal"));
        assert!(m.sale.validate().is_empty());
    }

    #[test]
    fn amounts_are_never_rounded_or_rescaled() {
        let mut row = seed_item();
        row["sale_amount"] = json!("1.005");
        let s = sale_from_row(&row, DEFAULT_CURRENCY).unwrap().sale;
        assert_eq!(s.totals.gross.to_string(), "1.005");
        assert_eq!(s.payments[0].amount.to_string(), "1.005");
    }

    #[test]
    fn missing_or_invalid_fields_are_named() {
        for field in ["sale_amount", "earn_burn", "sale_timestamp", "shop_id"] {
            let mut row = seed_item();
            row.as_object_mut().unwrap().remove(field);
            assert_eq!(
                sale_from_row(&row, DEFAULT_CURRENCY).unwrap_err(),
                RowError::Missing(field)
            );
        }
        let mut row = seed_item();
        row["sale_timestamp"] = json!("yesterday");
        assert!(matches!(
            sale_from_row(&row, DEFAULT_CURRENCY).unwrap_err(),
            RowError::Invalid {
                field: "sale_timestamp",
                ..
            }
        ));
        let mut row = seed_item();
        row["sale_amount"] = json!("ten");
        assert!(matches!(
            sale_from_row(&row, DEFAULT_CURRENCY).unwrap_err(),
            RowError::Invalid {
                field: "sale_amount",
                ..
            }
        ));
        assert_eq!(
            sale_from_row(&json!([1]), DEFAULT_CURRENCY).unwrap_err(),
            RowError::NotAnObject
        );
    }
}
