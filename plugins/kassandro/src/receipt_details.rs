//! A canonical `Sale` → Kassandro's `receiptDetails` for `POST /receipts`: a standard receipt, a
//! null receipt, or a cancellation by receipt number.

use posbridge_plugin_api::model::{Decimal, Sale, SaleKind};

use crate::json_text::Json;
use crate::payment_names::PaymentNames;
use crate::vienna;

/// `customText` label carrying the idempotency key, by which a re-sent receipt is recognised.
pub const KEY_LABEL: &str = "posbridge-key";
/// `customText` label carrying the canonical sale id.
pub const ID_LABEL: &str = "posbridge-id";
/// `nameShort` is cut to this many characters (an assumption; the document gives no limit).
const SHORT_NAME_CHARS: usize = 20;

/// What one sale becomes in Kassandro.
#[derive(Debug)]
pub enum ReceiptRequest {
    /// A standard or null receipt: the body of `POST /receipts`.
    Create(Json),
    /// A cancellation (Storno) of the receipt this sink wrote for the canonical sale with this
    /// id. Its Kassandro number is only known once that receipt is found (see the sink), because
    /// the sale's `cancels` is the source system's number, not the target's.
    Cancel { cancelled_sale_id: String },
}

/// The request for one sale, or why it cannot be written. `names` gives the register's payment
/// method name of each canonical method.
pub fn receipt_details(
    sale: &Sale,
    idempotency_key: &str,
    names: &PaymentNames,
) -> Result<ReceiptRequest, String> {
    if sale.kind == SaleKind::Cancellation {
        let number = sale
            .cancels
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                format!(
                    "{}: a cancellation must name the receipt it cancels",
                    sale.id
                )
            })?;
        // The cancelled sale came from the same source system, store and register.
        return Ok(ReceiptRequest::Cancel {
            cancelled_sale_id: Sale::make_id(
                &sale.source_system,
                &sale.store_id,
                &sale.register_id,
                number,
            ),
        });
    }
    if sale.kind == SaleKind::Training {
        // The create format has no training flag: it would become a real, signed receipt.
        return Err(format!(
            "{}: Kassandro cannot create training receipts",
            sale.id
        ));
    }
    if sale.currency != "EUR" {
        return Err(format!(
            "{}: Kassandro books EUR only, not {}",
            sale.id, sale.currency
        ));
    }
    let null_receipt = sale.kind == SaleKind::NullReceipt;
    let items = if null_receipt {
        vec![]
    } else {
        sale.lines
            .iter()
            .map(|l| {
                Json::obj([
                    (
                        "itemId",
                        Json::Int(
                            l.product_id
                                .as_deref()
                                .and_then(|p| p.parse().ok())
                                .unwrap_or(0),
                        ),
                    ),
                    ("nameLong", Json::str(&l.name)),
                    (
                        "nameShort",
                        Json::str(l.name.chars().take(SHORT_NAME_CHARS).collect::<String>()),
                    ),
                    ("groupId", Json::Int(0)),
                    (
                        "groupName",
                        Json::str(l.category.clone().unwrap_or_default()),
                    ),
                    ("amount", Json::Num(l.quantity)),
                    ("discountAbsolute", Json::Num(l.discount)),
                    ("discountPercentage", Json::Num(Decimal::ZERO)),
                    ("priceAll", Json::Num(l.gross)),
                    ("priceOne", Json::Num(l.unit_price)),
                    ("vat", Json::Num(l.tax_rate)),
                ])
            })
            .collect()
    };
    let is_voucher = |m: &str| m.eq_ignore_ascii_case("voucher");
    let voucher: Decimal = sale
        .payments
        .iter()
        .filter(|p| is_voucher(&p.method))
        .map(|p| p.amount)
        .sum();
    let given: Decimal = sale
        .payments
        .iter()
        .filter(|p| !is_voucher(&p.method))
        .map(|p| p.amount)
        .sum();
    // A receipt paid by voucher alone still names a method: cash, as a register would.
    let canonical = sale
        .payments
        .iter()
        .find(|p| !is_voucher(&p.method))
        .map_or("cash", |p| p.method.as_str());
    let method = names
        .name_for(canonical)
        .map_err(|reason| format!("{}: {reason}", sale.id))?;
    let (price, given, voucher) = if null_receipt {
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
    } else {
        (sale.totals.gross, given, voucher)
    };
    Ok(ReceiptRequest::Create(Json::obj([
        ("created", Json::str(vienna::format_local(&sale.timestamp))),
        (
            "customText",
            Json::Arr(vec![
                Json::obj([
                    ("label", Json::str(KEY_LABEL)),
                    ("value", Json::str(idempotency_key)),
                ]),
                Json::obj([
                    ("label", Json::str(ID_LABEL)),
                    ("value", Json::str(&sale.id)),
                ]),
            ]),
        ),
        ("items", Json::Arr(items)),
        ("price", Json::Num(price)),
        ("discountAbsolute", Json::Num(Decimal::ZERO)),
        ("discountPercentage", Json::Num(Decimal::ZERO)),
        ("given", Json::Num(given)),
        ("paymentMethod", Json::str(method)),
        ("voucher", Json::Num(voucher)),
    ])))
}

/// The body of `POST /receipts` that cancels the receipt with this Kassandro number.
pub fn cancellation_details(receipt_number: &str) -> Json {
    Json::obj([(
        "cancellation",
        Json::obj([("receiptNumber", Json::str(receipt_number))]),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::model::Payment;
    use rust_decimal_macros::dec;
    use serde_json::Value;

    fn german() -> PaymentNames {
        PaymentNames::default()
    }

    fn created(sale: &Sale, key: &str) -> Json {
        match receipt_details(sale, key, &german()).unwrap() {
            ReceiptRequest::Create(json) => json,
            other => panic!("not a receipt to create: {other:?}"),
        }
    }

    fn body(sale: &Sale) -> Value {
        serde_json::from_str(&created(sale, "key-1").to_text()).unwrap()
    }

    #[test]
    fn standard_receipt_carries_items_payment_and_key() {
        let mut sale = Sale::example();
        sale.payments = vec![
            Payment {
                method: "voucher".into(),
                amount: dec!(1.00),
                currency: "EUR".into(),
                psp_reference: None,
                method_raw: None,
            },
            Payment {
                method: "card".into(),
                amount: dec!(2.57),
                currency: "EUR".into(),
                psp_reference: None,
                method_raw: None,
            },
        ];
        let text = created(&sale, "key-1").to_text();
        assert!(text.contains("\"price\":3.57"), "{text}");
        let b = body(&sale);
        assert_eq!(b["created"], "2026-02-01T10:00:00");
        assert_eq!(b["items"].as_array().unwrap().len(), 2);
        assert_eq!(b["items"][0]["nameLong"], "Bio-Vollmilch");
        assert_eq!(b["paymentMethod"], "Karte");
        assert_eq!(b["customText"][0]["label"], KEY_LABEL);
        assert_eq!(b["customText"][0]["value"], "key-1");
        assert_eq!(b["customText"][1]["value"], sale.id);
        assert!(
            text.contains("\"voucher\":1.00") && text.contains("\"given\":2.57"),
            "{text}"
        );
    }

    #[test]
    fn the_payment_method_is_the_registers_name_and_an_unmappable_one_is_refused() {
        let mut sale = Sale::example();
        sale.payments[0].method = "card".into();
        let codes = PaymentNames::new(
            Default::default(),
            Some(vec!["CASH".into(), "EC_CARD".into()]),
        );
        let ReceiptRequest::Create(json) = receipt_details(&sale, "k", &codes).unwrap() else {
            panic!("not a receipt to create")
        };
        assert!(json.to_text().contains("\"paymentMethod\":\"EC_CARD\""));
        sale.payments[0].method = "paypal".into();
        let reason = receipt_details(&sale, "k", &codes).unwrap_err();
        assert!(
            reason.contains(&sale.id) && reason.contains("\"paypal\""),
            "{reason}"
        );
    }

    #[test]
    fn null_receipt_and_cancellation() {
        let mut sale = Sale::example();
        sale.kind = SaleKind::NullReceipt;
        let b = body(&sale);
        assert_eq!(b["items"], serde_json::json!([]));
        assert!(created(&sale, "k").to_text().contains("\"price\":0"));
        sale.kind = SaleKind::Training;
        assert!(receipt_details(&sale, "k", &german())
            .unwrap_err()
            .contains("training"));
        sale.kind = SaleKind::Cancellation;
        assert!(receipt_details(&sale, "k", &german()).is_err());
        sale.cancels = Some("2-000016".into());
        match receipt_details(&sale, "k", &german()).unwrap() {
            ReceiptRequest::Cancel { cancelled_sale_id } => assert_eq!(
                cancelled_sale_id,
                Sale::make_id(
                    &sale.source_system,
                    &sale.store_id,
                    &sale.register_id,
                    "2-000016"
                )
            ),
            other => panic!("not a cancellation: {other:?}"),
        }
        let storno: Value =
            serde_json::from_str(&cancellation_details("1-000042").to_text()).unwrap();
        assert_eq!(
            storno,
            serde_json::json!({"cancellation": {"receiptNumber": "1-000042"}})
        );
    }
}
