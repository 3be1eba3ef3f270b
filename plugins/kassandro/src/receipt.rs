//! A Kassandro receipt (read format, see docs/connectors/kassandro.md) → canonical `Sale`.
//! Amounts the receipt carries are taken as they are; what it does not carry is derived (VAT
//! per rate, see [`crate::vat`]; a percentage discount in money) and said in a warning.

use std::collections::HashMap;

use crate::config::Config;
use crate::error::KassandroError;
use crate::fields::cents_scale;
#[cfg(test)]
use crate::receipt_in::receipt_from_value;
use crate::receipt_in::{Expected, Item, List, Obj, OptObj, Receipt, Scalar};
use crate::rksv::rksv_signature;
use crate::vat::{receipt_vat, ItemVat};
use crate::vienna;
use posbridge_plugin_api::model::{
    payment_method_fields, round_money, Attachment, Decimal, FiscalSignature, Payment, Sale,
    SaleKind, SaleLine, TaxLine, Totals,
};

/// `Sale::source_system` of every Kassandro sale.
pub const SOURCE_SYSTEM: &str = "kassandro";
/// Austria's currency; the API has no currency field.
pub const CURRENCY: &str = "EUR";

/// Kassa-ID → store, from `GET /cashregisters` (and the configuration for registers that name
/// no location).
pub type StoreOfRegister = HashMap<u64, String>;

/// A mapped receipt and what had to be derived for it.
#[derive(Debug)]
pub struct MappedSale {
    pub sale: Sale,
    /// One line per kind of derivation, the same text for every receipt it applies to.
    pub warnings: Vec<&'static str>,
}

/// Said when a receipt has no VAT amounts.
pub const DERIVED_VAT: &str =
    "receipts carry no VAT amounts (vatAmount/vatSums): net and tax derived per rate from the gross";
/// Said when a receipt of a register is mapped to a store from the configuration.
pub const UNKNOWN_REGISTER: &str =
    "a receipt's register is not in /cashregisters: its store comes from register_stores/default_store_id";

/// Maps one receipt given as a `Value` (`endpoint` and `at` name the page and the position for
/// error messages), checking that reading it from its text maps it the same.
#[cfg(test)]
pub fn sale_from_receipt(
    receipt: &serde_json::Value,
    stores: &StoreOfRegister,
    cfg: &Config,
    endpoint: &str,
    at: &str,
) -> Result<MappedSale, KassandroError> {
    let from_value = map_receipt(&receipt_from_value(receipt), stores, cfg, endpoint, at);
    // The page's text, read into the receipts' own types, must give the very same.
    let text = serde_json::to_vec(&[receipt, receipt]).unwrap();
    let page = crate::receipt_in::page_from_text(&text).unwrap();
    let from_text = map_receipt(&page[0], stores, cfg, endpoint, at);
    match (&from_value, &from_text) {
        (Ok(a), Ok(b)) => assert_eq!((&a.sale, &a.warnings), (&b.sale, &b.warnings)),
        (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err()),
    }
    from_value
}

/// `field` below `at`, for messages (`[4]` and `price` → `[4].price`).
fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

/// A field's value, or the error naming the page and the field's path (built only then).
fn need<T>(
    read: Result<T, Expected>,
    endpoint: &str,
    path: impl FnOnce() -> String,
) -> Result<T, KassandroError> {
    read.map_err(|expected| KassandroError::bad_field(endpoint, path(), expected))
}

/// Maps one receipt as the answer spelled it (see [`crate::receipt_in`]). Fields are checked
/// in a fixed order, so that the first error is the same however the page was read.
pub fn map_receipt(
    receipt: &Obj<Receipt<'_>>,
    stores: &StoreOfRegister,
    cfg: &Config,
    endpoint: &str,
    at: &str,
) -> Result<MappedSale, KassandroError> {
    let mut warnings = Vec::new();
    let Obj::Is(r) = receipt else {
        return Err(KassandroError::bad_field(endpoint, at, "an object"));
    };
    let p = |field: &str| join(at, field);
    let raw_id = need(r.id.string(), endpoint, || p("_id"))?;
    let receipt_number = need(r.receipt_number.string(), endpoint, || p("receiptNumber"))?;
    let register = need(r.cash_register_id.unsigned(), endpoint, || {
        p("cashRegisterId")
    })?;
    let kind_text = need(r.kind.string(), endpoint, || p("type"))?;
    let created_text = need(r.created.string(), endpoint, || p("created"))?;
    let timestamp = vienna::parse_created(&created_text).ok_or_else(|| {
        KassandroError::bad_field(endpoint, p("created"), "a date-time YYYY-MM-DDTHH:mm:ss")
    })?;
    let price = cents_scale(need(r.price.decimal(), endpoint, || p("price"))?);
    let voucher = cents_scale(need(r.voucher.decimal_or_zero(), endpoint, || {
        p("voucher")
    })?);
    let method = need(r.payment_method.string(), endpoint, || p("paymentMethod"))?;

    let kind = match kind_text.as_str() {
        "standard" if price.is_sign_negative() && !price.is_zero() => SaleKind::Refund,
        "standard" => SaleKind::Sale,
        "null" => SaleKind::NullReceipt,
        "cancellation" => SaleKind::Cancellation,
        "training" => SaleKind::Training,
        _ => {
            return Err(KassandroError::bad_field(
                endpoint,
                p("type"),
                "one of standard, null, cancellation, training",
            ))
        }
    };
    let cancels = match &r.cancellation {
        OptObj::Absent => None,
        OptObj::Not => {
            return Err(KassandroError::bad_field(
                endpoint,
                p("cancellation"),
                "an object",
            ))
        }
        OptObj::Is(c) => Some(need(c.receipt_number.string(), endpoint, || {
            join(&p("cancellation"), "receiptNumber")
        })?),
    };

    let items: &[Obj<Item<'_>>] = match &r.items {
        List::Absent => &[],
        List::NotArray => return Err(KassandroError::bad_field(endpoint, p("items"), "an array")),
        List::Items(items) => items,
    };
    let mut lines = Vec::with_capacity(items.len());
    let mut item_vat = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_at = || p(&format!("items[{i}]"));
        let Obj::Is(it) = item else {
            return Err(KassandroError::bad_field(endpoint, item_at(), "an object"));
        };
        let f = |field: &'static str| move || join(&item_at(), field);
        let gross = cents_scale(need(it.price_all.decimal(), endpoint, f("priceAll"))?);
        let quantity = need(it.amount.decimal(), endpoint, f("amount"))?;
        let unit_price = cents_scale(need(it.price_one.decimal(), endpoint, f("priceOne"))?);
        let rate = need(it.vat.decimal(), endpoint, f("vat"))?;
        let tax = if it.vat_amount.is_present() {
            let read = need(it.vat_amount.decimal(), endpoint, f("vatAmount"))?;
            Some(cents_scale(read))
        } else {
            None
        };
        item_vat.push(ItemVat { rate, gross, tax });
        let product_id = need(it.item_id.opt_unsigned(), endpoint, f("itemId"))?
            .filter(|id| *id != 0)
            .map(|id| id.to_string());
        let name = need(it.name_long.string(), endpoint, f("nameLong"))?;
        let category =
            need(it.group_name.opt_string(), endpoint, f("groupName"))?.filter(|g| !g.is_empty());
        let absolute = cents_scale(need(
            it.discount_absolute.decimal_or_zero(),
            endpoint,
            f("discountAbsolute"),
        )?);
        let percentage = need(
            it.discount_percentage.decimal_or_zero(),
            endpoint,
            f("discountPercentage"),
        )?;
        lines.push(SaleLine {
            product_id,
            name,
            category,
            barcode: None,
            quantity,
            unit_price,
            discount: line_discount(quantity, unit_price, absolute, percentage),
            tax_rate: rate,
            net: Decimal::ZERO,
            tax: Decimal::ZERO,
            gross,
        });
    }

    let sums = match &r.vat_sums {
        List::Absent => None,
        List::NotArray => {
            return Err(KassandroError::bad_field(
                endpoint,
                p("vatSums"),
                "an array",
            ))
        }
        List::Items(sums) => {
            let mut taxes = Vec::with_capacity(sums.len());
            for (i, sum) in sums.iter().enumerate() {
                let sum_at = || p(&format!("vatSums[{i}]"));
                let Obj::Is(s) = sum else {
                    return Err(KassandroError::bad_field(endpoint, sum_at(), "an object"));
                };
                let f = |field: &'static str| move || join(&sum_at(), field);
                taxes.push(TaxLine {
                    rate: need(s.vat.decimal(), endpoint, f("vat"))?,
                    net: cents_scale(need(s.net.decimal(), endpoint, f("net"))?),
                    tax: cents_scale(need(s.vat_amount.decimal(), endpoint, f("vatAmount"))?),
                    gross: cents_scale(need(s.gross.decimal(), endpoint, f("gross"))?),
                });
            }
            Some(taxes)
        }
    };
    let vat = receipt_vat(&item_vat, sums.as_deref(), cfg.tax_rounding);
    if vat.derived && !lines.is_empty() {
        warnings.push(DERIVED_VAT);
    }
    for (line, tax) in lines.iter_mut().zip(&vat.item_tax) {
        line.tax = *tax;
        line.net = line.gross - *tax;
    }
    let taxes = vat.taxes;
    let line_discounts: Decimal = lines.iter().map(|l| l.discount).sum();
    let receipt_discount = cents_scale(need(
        r.discount_absolute.decimal_or_zero(),
        endpoint,
        || p("discountAbsolute"),
    )?);
    let totals = Totals {
        net: cents_scale(taxes.iter().map(|t| t.net).sum()),
        tax: cents_scale(taxes.iter().map(|t| t.tax).sum()),
        gross: price,
        discount: cents_scale(line_discounts + receipt_discount),
    };

    let payment = |(method, method_raw): (String, Option<String>), amount: Decimal| Payment {
        method,
        amount,
        currency: CURRENCY.into(),
        psp_reference: None,
        method_raw,
    };
    let mut payments = Vec::new();
    if !voucher.is_zero() {
        payments.push(payment(("voucher".into(), None), voucher));
    }
    let rest = price - voucher;
    if !rest.is_zero() {
        payments.push(payment(payment_method_fields(&method), rest));
    }

    let register_id = register.to_string();
    let fiscal =
        rksv_signature(&r.signature, &register_id, &receipt_number).map(|rksv| FiscalSignature {
            tse: None,
            rksv: Some(rksv),
        });

    let urls: &[Scalar<'_>] = match &r.attachment_urls {
        List::Absent => &[],
        List::NotArray => {
            return Err(KassandroError::bad_field(
                endpoint,
                p("attachmentUrls"),
                "an array",
            ))
        }
        List::Items(urls) => urls,
    };
    let mut attachments = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let Scalar::Str(path) = url else {
            return Err(KassandroError::bad_field(
                endpoint,
                p(&format!("attachmentUrls[{i}]")),
                "a string",
            ));
        };
        attachments.push(attachment(path, &cfg.base_url));
    }

    let store_id = match stores.get(&register) {
        Some(s) => s.clone(),
        None => {
            warnings.push(UNKNOWN_REGISTER);
            cfg.store_of_unlocated(register)
        }
    };
    let sale = Sale {
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
    };
    Ok(MappedSale { sale, warnings })
}

/// A line's discount in money: `discountAbsolute` plus `discountPercentage` percent of the line
/// before discounts (quantity × unit price, in cents), rounded half up to the cent.
pub fn line_discount(
    quantity: Decimal,
    unit_price: Decimal,
    absolute: Decimal,
    percentage: Decimal,
) -> Decimal {
    if percentage.is_zero() {
        return absolute;
    }
    let before = round_money(quantity * unit_price, CURRENCY);
    cents_scale(absolute + round_money(before * percentage / Decimal::ONE_HUNDRED, CURRENCY))
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
    use serde_json::{json, Value};

    fn stores() -> StoreOfRegister {
        HashMap::from([(2, "graz".to_string())])
    }

    fn cfg() -> Config {
        serde_json::from_value(json!({"api_key": "k", "base_url": "http://127.0.0.1:1/"})).unwrap()
    }

    fn map(r: &Value) -> Result<Sale, KassandroError> {
        sale_from_receipt(r, &stores(), &cfg(), "receipts", "[0]").map(|m| m.sale)
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
        let m = sale_from_receipt(&receipt(), &stores(), &cfg(), "receipts", "[0]").unwrap();
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        let s = m.sale;
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
        let s = map(&r).unwrap();
        assert_eq!(s.kind, SaleKind::Cancellation);
        assert_eq!(s.cancels.as_deref(), Some("2-000016"));
        r["type"] = json!("null");
        assert_eq!(map(&r).unwrap().kind, SaleKind::NullReceipt);
        r["type"] = json!("standard");
        r["price"] = json!(-12.80);
        assert_eq!(map(&r).unwrap().kind, SaleKind::Refund);
        r["type"] = json!("bogus");
        assert!(map(&r).is_err());
    }

    #[test]
    fn unknown_register_goes_to_the_configured_store() {
        let mut r = receipt();
        r["cashRegisterId"] = json!(9);
        let m = sale_from_receipt(&r, &stores(), &cfg(), "receipts", "[0]").unwrap();
        assert_eq!(m.sale.store_id, "default");
        assert_eq!(m.warnings, vec![UNKNOWN_REGISTER]);
        let mut c = cfg();
        c.register_stores.insert("9".into(), "linz".into());
        let s = sale_from_receipt(&r, &stores(), &c, "receipts", "[0]")
            .unwrap()
            .sale;
        assert_eq!(s.id, "kassandro:linz:9:2-000017");
    }

    #[test]
    fn a_receipt_without_vat_amounts_gets_them_derived_and_reconciles() {
        let mut r = receipt();
        r.as_object_mut().unwrap().remove("vatSums");
        for it in r["items"].as_array_mut().unwrap() {
            it.as_object_mut().unwrap().remove("vatAmount");
        }
        let m = sale_from_receipt(&r, &stores(), &cfg(), "receipts", "[0]").unwrap();
        assert_eq!(m.warnings, vec![DERIVED_VAT]);
        let s = m.sale;
        // 8.40 at 10 %: 0.7636… → 0.76; 4.40 at 20 %: 0.7333… → 0.73.
        assert_eq!((s.lines[0].tax, s.lines[0].net), (dec!(0.76), dec!(7.64)));
        assert_eq!(
            (s.taxes[1].rate, s.taxes[1].tax, s.taxes[1].net),
            (dec!(20), dec!(0.73), dec!(3.67))
        );
        assert_eq!((s.totals.net, s.totals.tax), (dec!(11.31), dec!(1.49)));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn a_percentage_discount_becomes_money_on_the_line() {
        let mut r = receipt();
        // Sachertorte 4.90, 10 % off: 0.49, so 1 × 4.90 − 0.49 = 4.41 is the line's gross.
        r["items"][1]["discountAbsolute"] = json!(0);
        r["items"][1]["discountPercentage"] = json!(10);
        r["items"][1]["priceAll"] = json!(4.41);
        r["items"][1].as_object_mut().unwrap().remove("vatAmount");
        r.as_object_mut().unwrap().remove("vatSums");
        r["price"] = json!(12.81);
        r["given"] = json!(10.01);
        let s = map(&r).unwrap();
        let l = &s.lines[1];
        assert_eq!(l.discount, dec!(0.49));
        assert_eq!(l.quantity * l.unit_price - l.discount, l.gross);
        assert_eq!(s.totals.discount, dec!(0.49));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        // Both kinds on one line: the percentage of the undiscounted line, plus the amount.
        assert_eq!(
            line_discount(dec!(2), dec!(4.20), dec!(0.50), dec!(25)),
            dec!(2.60)
        );
        assert_eq!(
            line_discount(dec!(-1), dec!(4.90), dec!(0), dec!(10)),
            dec!(-0.49)
        );
    }

    #[test]
    fn the_signature_may_be_the_machine_readable_code() {
        let mut r = receipt();
        let code = "_R1-AT1_AT-KASSANDRO-2_2-000017_2026-02-01T10:00:00_0,00_8,40_0,00_0,00_0,00_Q2_ab_prev_sigval";
        r["signature"] = json!(code);
        let rksv = map(&r).unwrap().fiscal.unwrap().rksv.unwrap();
        assert_eq!(rksv.cash_register_id, "AT-KASSANDRO-2");
        assert_eq!(rksv.signature.as_deref(), Some("sigval"));
        assert_eq!(rksv.qr_code.as_deref(), Some(code));
    }

    #[test]
    fn payment_names_go_through_the_shared_table() {
        let mut r = receipt();
        for (name, method, raw) in [
            ("creditcard", "card", Some("creditcard")),
            ("Bar", "cash", Some("Bar")),
            ("EC_CARD", "card", Some("EC_CARD")),
            ("Karte", "card", Some("Karte")),
            ("Twint", "twint", Some("Twint")),
            ("cash", "cash", None),
        ] {
            r["paymentMethod"] = json!(name);
            let sale = map(&r).unwrap();
            let p = &sale.payments[1];
            assert_eq!(
                (p.method.as_str(), p.method_raw.as_deref()),
                (method, raw),
                "{name}"
            );
            // The voucher part has no vendor name of its own.
            assert_eq!(sale.payments[0].method_raw, None);
        }
    }

    #[test]
    fn mismatching_amounts_are_kept_not_fixed() {
        let mut r = receipt();
        r["price"] = json!(12.81);
        let s = map(&r).unwrap();
        assert_eq!(s.totals.gross, dec!(12.81));
        assert!(!s.validate().is_empty());
    }

    #[test]
    fn a_missing_field_names_page_and_field() {
        let mut r = receipt();
        r["items"][1].as_object_mut().unwrap().remove("priceAll");
        let e =
            sale_from_receipt(&r, &stores(), &cfg(), "receipts?offset=1000", "[7]").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("receipts?offset=1000") && msg.contains("[7].items[1].priceAll"),
            "{msg}"
        );
    }
}
