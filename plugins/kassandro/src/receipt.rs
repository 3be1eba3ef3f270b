//! A Kassandro receipt (read format, see docs/connectors/kassandro.md) → canonical `Sale`.
//! Amounts are taken as the vendor gives them; nothing is recomputed or repaired.

use std::collections::HashMap;

use posbridge_plugin_api::model::{
    Attachment, Decimal, FiscalSignature, Payment, RksvSignature, Sale, SaleKind, SaleLine,
    TaxLine, Totals,
};
use serde_json::Value;

use crate::error::KassandroError;
use crate::fields::{cents_scale, Fields};
use crate::payment_names::canonical_method;
use crate::vienna;

/// `Sale::source_system` of every Kassandro sale.
pub const SOURCE_SYSTEM: &str = "kassandro";
/// Austria's currency; the API has no currency field.
pub const CURRENCY: &str = "EUR";
/// The store of a register that names no location.
pub const DEFAULT_STORE: &str = "default";

/// Kassa-ID → store (`locationId`), from `GET /cashregisters`.
pub type StoreOfRegister = HashMap<u64, String>;

/// Maps one receipt. `endpoint` and `at` name the page and the position for error messages;
/// `base_url` turns attachment paths into URLs.
pub fn sale_from_receipt(
    receipt: &Value,
    stores: &StoreOfRegister,
    base_url: &str,
    endpoint: &str,
    at: &str,
) -> Result<Sale, KassandroError> {
    let r = Fields::new(receipt, endpoint, at)?;
    let raw_id = r.string("_id")?;
    let receipt_number = r.string("receiptNumber")?;
    let register = r.unsigned("cashRegisterId")?;
    let kind_text = r.string("type")?;
    let created_text = r.string("created")?;
    let timestamp = vienna::parse_created(&created_text).ok_or_else(|| {
        KassandroError::bad_field(
            endpoint,
            r.path("created"),
            "a date-time YYYY-MM-DDTHH:mm:ss",
        )
    })?;
    let price = r.money("price")?;
    let voucher = r.money_or_zero("voucher")?;
    let method = r.string("paymentMethod")?;

    let kind = match kind_text.as_str() {
        "standard" if price.is_sign_negative() && !price.is_zero() => SaleKind::Refund,
        "standard" => SaleKind::Sale,
        "null" => SaleKind::NullReceipt,
        "cancellation" => SaleKind::Cancellation,
        "training" => SaleKind::Training,
        _ => {
            return Err(KassandroError::bad_field(
                endpoint,
                r.path("type"),
                "one of standard, null, cancellation, training",
            ))
        }
    };
    let cancels = match r.object("cancellation")? {
        Some(c) => Some(c.string("receiptNumber")?),
        None => None,
    };

    let mut lines = Vec::new();
    let mut line_discounts = Decimal::ZERO;
    for (i, item) in r.array("items")?.iter().enumerate() {
        let it = Fields::new(item, endpoint, r.path(&format!("items[{i}]")))?;
        let gross = it.money("priceAll")?;
        let tax = it.money("vatAmount")?;
        let discount = it.money_or_zero("discountAbsolute")?;
        line_discounts += discount;
        lines.push(SaleLine {
            product_id: it
                .opt_unsigned("itemId")?
                .filter(|id| *id != 0)
                .map(|id| id.to_string()),
            name: it.string("nameLong")?,
            category: it.opt_string("groupName")?.filter(|g| !g.is_empty()),
            barcode: None,
            quantity: it.decimal("amount")?,
            unit_price: it.money("priceOne")?,
            discount,
            tax_rate: it.decimal("vat")?,
            net: gross - tax,
            tax,
            gross,
        });
    }

    let mut taxes = Vec::new();
    for (i, sum) in r.array("vatSums")?.iter().enumerate() {
        let s = Fields::new(sum, endpoint, r.path(&format!("vatSums[{i}]")))?;
        taxes.push(TaxLine {
            rate: s.decimal("vat")?,
            net: s.money("net")?,
            tax: s.money("vatAmount")?,
            gross: s.money("gross")?,
        });
    }
    let totals = Totals {
        net: cents_scale(taxes.iter().map(|t| t.net).sum()),
        tax: cents_scale(taxes.iter().map(|t| t.tax).sum()),
        gross: price,
        discount: cents_scale(line_discounts + r.money_or_zero("discountAbsolute")?),
    };

    let payment = |method: String, amount: Decimal| Payment {
        method,
        amount,
        currency: CURRENCY.into(),
        psp_reference: None,
    };
    let mut payments = Vec::new();
    if !voucher.is_zero() {
        payments.push(payment("voucher".into(), voucher));
    }
    let rest = price - voucher;
    if !rest.is_zero() {
        payments.push(payment(canonical_method(&method), rest));
    }

    let fiscal = match r.object("signature")? {
        Some(s) => Some(FiscalSignature {
            tse: None,
            rksv: Some(RksvSignature {
                cash_register_id: s.string("cashRegisterId")?,
                receipt_number: s.string("receiptNumber")?,
                signature: s.opt_string("signature")?,
                qr_code: s.opt_string("qrCode")?,
            }),
        }),
        None => None,
    };

    let mut attachments = Vec::new();
    for (i, url) in r.array("attachmentUrls")?.iter().enumerate() {
        let path = url.as_str().ok_or_else(|| {
            KassandroError::bad_field(
                endpoint,
                r.path(&format!("attachmentUrls[{i}]")),
                "a string",
            )
        })?;
        attachments.push(attachment(path, base_url));
    }

    let store_id = stores
        .get(&register)
        .cloned()
        .unwrap_or_else(|| DEFAULT_STORE.to_string());
    let register_id = register.to_string();
    Ok(Sale {
        id: Sale::make_id(SOURCE_SYSTEM, &store_id, &register_id, &receipt_number),
        source_system: SOURCE_SYSTEM.into(),
        store_id,
        register_id,
        receipt_number,
        kind,
        cancels,
        business_day: timestamp.date_naive(),
        timestamp,
        timezone: Some(vienna::TIMEZONE.into()),
        currency: CURRENCY.into(),
        cashier: None,
        customer: None,
        lines,
        payments,
        taxes,
        totals,
        fiscal,
        loyalty: None,
        attachments,
        raw_id: Some(raw_id),
    })
}

fn attachment(path: &str, base_url: &str) -> Attachment {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    let url = if path.starts_with('/') {
        format!("{}{path}", base_url.trim_end_matches('/'))
    } else {
        path.to_string()
    };
    Attachment {
        name,
        url: Some(url),
        content_type: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn stores() -> StoreOfRegister {
        HashMap::from([(2, "graz".to_string())])
    }

    /// A standard receipt of register 2, as the API lists it.
    pub(crate) fn receipt() -> Value {
        json!({
            "_id": "Xk3f9sQ2mZpL8aB1c", "receiptNumber": "2-000017", "cashRegisterId": 2,
            "type": "standard", "created": "2026-02-01T10:00:00",
            "items": [
                {"itemId": 12, "nameLong": "Melange groß", "nameShort": "Melange", "groupId": 3,
                 "groupName": "Heißgetränke", "amount": 2, "discountAbsolute": 0, "discountPercentage": 0,
                 "priceAll": 8.40, "priceOne": 4.20, "vat": 10, "vatAmount": 0.76},
                {"itemId": 40, "nameLong": "Sachertorte", "nameShort": "Sacher", "groupId": 5,
                 "groupName": "Mehlspeisen", "amount": 1, "discountAbsolute": 0.50, "discountPercentage": 0,
                 "priceAll": 4.40, "priceOne": 4.90, "vat": 20, "vatAmount": 0.73}
            ],
            "price": 12.80, "discountAbsolute": 0, "discountPercentage": 0,
            "given": 10.00, "paymentMethod": "Karte", "voucher": 2.80,
            "vatSums": [{"vat": 10, "net": 7.64, "vatAmount": 0.76, "gross": 8.40},
                        {"vat": 20, "net": 3.67, "vatAmount": 0.73, "gross": 4.40}],
            "cancellation": null,
            "signature": {"cashRegisterId": "AT-KASSANDRO-2", "receiptNumber": "2-000017",
                          "signature": "sig", "qrCode": "_R1-AT1_x"},
            "attachmentUrls": ["/cdn/storage/files.attachments/a1/original/bon.pdf"]
        })
    }

    #[test]
    fn maps_a_standard_receipt_that_reconciles() {
        let s = sale_from_receipt(
            &receipt(),
            &stores(),
            "http://127.0.0.1:1/",
            "receipts",
            "[0]",
        )
        .unwrap();
        assert_eq!(s.id, "kassandro:graz:2:2-000017");
        assert_eq!(s.kind, SaleKind::Sale);
        assert_eq!(s.timestamp.to_rfc3339(), "2026-02-01T10:00:00+01:00");
        assert_eq!(s.business_day.to_string(), "2026-02-01");
        assert_eq!(s.lines[0].net, dec!(7.64));
        assert_eq!(s.lines[1].discount, dec!(0.50));
        assert_eq!(s.lines[0].product_id.as_deref(), Some("12"));
        assert_eq!(s.totals.net, dec!(11.31));
        assert_eq!(s.totals.discount, dec!(0.50));
        assert_eq!(s.payments.len(), 2);
        assert_eq!(
            (s.payments[0].method.as_str(), s.payments[0].amount),
            ("voucher", dec!(2.80))
        );
        assert_eq!(
            (s.payments[1].method.as_str(), s.payments[1].amount),
            ("card", dec!(10.00))
        );
        assert_eq!(
            s.fiscal
                .as_ref()
                .and_then(|f| f.rksv.as_ref())
                .and_then(|r| r.qr_code.as_deref()),
            Some("_R1-AT1_x")
        );
        assert_eq!(
            s.attachments[0].url.as_deref(),
            Some("http://127.0.0.1:1/cdn/storage/files.attachments/a1/original/bon.pdf")
        );
        assert_eq!(s.raw_id.as_deref(), Some("Xk3f9sQ2mZpL8aB1c"));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn maps_kinds() {
        let mut r = receipt();
        r["type"] = json!("cancellation");
        r["cancellation"] = json!({"receiptNumber": "2-000016"});
        let s = sale_from_receipt(&r, &stores(), "", "receipts", "[0]").unwrap();
        assert_eq!(s.kind, SaleKind::Cancellation);
        assert_eq!(s.cancels.as_deref(), Some("2-000016"));
        r["type"] = json!("null");
        assert_eq!(
            sale_from_receipt(&r, &stores(), "", "receipts", "[0]")
                .unwrap()
                .kind,
            SaleKind::NullReceipt
        );
        r["type"] = json!("standard");
        r["price"] = json!(-12.80);
        assert_eq!(
            sale_from_receipt(&r, &stores(), "", "receipts", "[0]")
                .unwrap()
                .kind,
            SaleKind::Refund
        );
        r["type"] = json!("bogus");
        assert!(sale_from_receipt(&r, &stores(), "", "receipts", "[0]").is_err());
    }

    #[test]
    fn unknown_register_goes_to_the_default_store() {
        let mut r = receipt();
        r["cashRegisterId"] = json!(9);
        let s = sale_from_receipt(&r, &stores(), "", "receipts", "[0]").unwrap();
        assert_eq!(s.store_id, DEFAULT_STORE);
    }

    #[test]
    fn mismatching_amounts_are_kept_not_fixed() {
        let mut r = receipt();
        r["price"] = json!(12.81);
        let s = sale_from_receipt(&r, &stores(), "", "receipts", "[0]").unwrap();
        assert_eq!(s.totals.gross, dec!(12.81));
        assert!(!s.validate().is_empty());
    }

    #[test]
    fn a_missing_field_names_page_and_field() {
        let mut r = receipt();
        r["items"][1].as_object_mut().unwrap().remove("vatAmount");
        let e = sale_from_receipt(&r, &stores(), "", "receipts?offset=1000", "[7]").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("receipts?offset=1000") && msg.contains("[7].items[1].vatAmount"),
            "{msg}"
        );
    }
}
