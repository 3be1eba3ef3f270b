//! Pure mapping of one OktoPOS transaction (vendor JSON) to a canonical [`Sale`].

use chrono::{DateTime, FixedOffset, NaiveDate};
use chrono_tz::Tz;
use posbridge_plugin_api::model::{
    decimal_from_json, payment_method_fields, round_money, Customer, Party, Payment, Sale,
    SaleKind, SaleLine, TaxLine, Totals,
};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::tax_rate::{implied_rate, resolve_rates, LineTax};

/// The canonical `source_system` of every sale this connector reads.
pub const SOURCE_SYSTEM: &str = "oktopos";

/// Why a transaction could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A required field is missing or has the wrong shape; the path points into the transaction.
    #[error("field `{0}` is missing or invalid")]
    Field(String),
    /// A `type` this connector does not know; mapping it would be a guess.
    #[error("unknown transaction type {0:?}")]
    UnknownType(String),
}

/// Where a transaction was read from: what the transaction itself does not say.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub store_id: &'a str,
    pub register_id: &'a str,
    /// The instance's time zone, used when a transaction names none (or an unknown one).
    pub default_timezone: Tz,
}

/// A mapped sale, and the lines whose tax rate could not be found (by index), to be logged.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub sale: Sale,
    pub unresolved_rate_lines: Vec<usize>,
}

type Result<T> = std::result::Result<T, MappingError>;

fn field<'a>(v: &'a Value, path: &str, name: &str) -> Result<&'a Value> {
    match v.get(name) {
        Some(x) if !x.is_null() => Ok(x),
        _ => Err(MappingError::Field(join(path, name))),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn text(v: &Value, path: &str, name: &str) -> Result<String> {
    field(v, path, name)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| MappingError::Field(join(path, name)))
}

/// An id the vendor gives as a number or a string, as text.
fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn opt_text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

/// A money object `{currency: {code}, decimal, string}`, read from its `string` form.
pub fn money(v: &Value, path: &str, name: &str) -> Result<(Decimal, String)> {
    let m = field(v, path, name)?;
    let at = join(path, name);
    let amount = m
        .get("string")
        .filter(|s| s.is_string())
        .and_then(decimal_from_json)
        .ok_or_else(|| MappingError::Field(format!("{at}.string")))?;
    let currency = m
        .get("currency")
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str)
        .ok_or_else(|| MappingError::Field(format!("{at}.currency.code")))?;
    Ok((amount, currency.to_string()))
}

/// A money object that may be missing or `null` (then zero).
fn money_or_zero(v: &Value, path: &str, name: &str) -> Result<Decimal> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(_) => money(v, path, name).map(|(d, _)| d),
    }
}

/// The canonical kind of a vendor `type` (training is decided by the `training` flag).
pub fn sale_kind(vendor_type: &str) -> Result<SaleKind> {
    match vendor_type {
        "sales" => Ok(SaleKind::Sale),
        "refund" => Ok(SaleKind::Refund),
        "cancellation" => Ok(SaleKind::Cancellation),
        other => Err(MappingError::UnknownType(other.to_string())),
    }
}

/// The canonical payment method of a vendor method token (or name when the token is missing),
/// through the plugin API's shared table, and the token itself when it differs from the method.
pub fn payment_method(token: &str) -> (String, Option<String>) {
    payment_method_fields(token)
}

/// Whether a transaction is flagged as training.
pub fn is_training(tx: &Value) -> bool {
    tx.get("training").and_then(Value::as_bool) == Some(true)
}

/// The transaction's `referenceNumber`, if it has one (for error messages).
pub fn reference_number(tx: &Value) -> Option<String> {
    id_text(tx.get("referenceNumber"))
}

fn timestamp(tx: &Value, default_tz: Tz) -> Result<(DateTime<FixedOffset>, String)> {
    let td = field(tx, "", "transactionDate")?;
    let raw = text(td, "transactionDate", "timestamp")?;
    let utc = DateTime::parse_from_rfc3339(&raw)
        .map_err(|_| MappingError::Field("transactionDate.timestamp".into()))?;
    let tz = td
        .get("timezone")
        .and_then(Value::as_str)
        .and_then(|name| name.parse::<Tz>().ok())
        .unwrap_or(default_tz);
    Ok((utc.with_timezone(&tz).fixed_offset(), tz.name().to_string()))
}

fn line(item: &Value, path: &str, currency: &str) -> Result<(SaleLine, LineTax)> {
    let product = item.get("product").filter(|p| !p.is_null());
    let name = product
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| MappingError::Field(format!("{path}.product.name")))?;
    let quantity = decimal_from_json(field(item, path, "quantity")?)
        .ok_or_else(|| MappingError::Field(join(path, "quantity")))?;
    let (unit_price, _) = money(item, path, "price")?;
    let discount = money_or_zero(item, path, "discount")?;
    let tax_obj = field(item, path, "tax")?;
    let (tax, _) = money(tax_obj, &join(path, "tax"), "amount")?;
    let gross = round_money(quantity * unit_price, currency) - discount;
    let sale_line = SaleLine {
        product_id: product.and_then(|p| id_text(p.get("id"))),
        name: name.to_string(),
        category: None,
        barcode: product.and_then(|p| opt_text(p.get("scannedBarcode"))),
        quantity,
        unit_price,
        discount,
        tax_rate: Decimal::ZERO, // set once the breakdown is known
        net: gross - tax,
        tax,
        gross,
    };
    let line_tax = LineTax {
        tax_id: id_text(tax_obj.get("id")),
        gross,
        tax,
    };
    Ok((sale_line, line_tax))
}

fn tax_breakdown(tx: &Value) -> Result<Vec<TaxLine>> {
    let Some(taxes) = tx.get("taxes").filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let taxes = taxes
        .as_array()
        .ok_or_else(|| MappingError::Field("taxes".into()))?;
    taxes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let path = format!("taxes[{i}]");
            let rate = decimal_from_json(field(t, &path, "rate")?)
                .ok_or_else(|| MappingError::Field(join(&path, "rate")))?;
            Ok(TaxLine {
                rate,
                net: money(t, &path, "net")?.0,
                tax: money(t, &path, "tax")?.0,
                gross: money(t, &path, "gross")?.0,
            })
        })
        .collect()
}

fn payments(tx: &Value) -> Result<Vec<Payment>> {
    let Some(list) = tx.get("payments").filter(|p| !p.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| MappingError::Field("payments".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            let path = format!("payments[{i}]");
            let (amount, currency) = money(p, &path, "amount")?;
            let method = p.get("method");
            let token = method
                .and_then(|m| m.get("token"))
                .and_then(Value::as_str)
                .or_else(|| method.and_then(|m| m.get("name")).and_then(Value::as_str))
                .ok_or_else(|| MappingError::Field(format!("{path}.method.token")))?;
            let (method, method_raw) = payment_method(token);
            Ok(Payment {
                method,
                amount,
                currency,
                psp_reference: None,
                method_raw,
            })
        })
        .collect()
}

fn party(v: Option<&Value>) -> Option<Party> {
    let v = v.filter(|v| v.is_object())?;
    Some(Party {
        id: id_text(v.get("id")),
        name: opt_text(v.get("name")),
    })
}

fn customer(v: Option<&Value>) -> Option<Customer> {
    let v = v.filter(|v| v.is_object())?;
    Some(Customer {
        id: id_text(v.get("id")),
        name: opt_text(v.get("name")),
        external_id: opt_text(v.get("externalIdentifier")),
        phone: None,
    })
}

/// Maps one vendor transaction to a canonical sale. Amounts are taken as stated; a sale that
/// does not reconcile is returned as it is (the host dead-letters it after `Sale::validate`).
pub fn map_transaction(tx: &Value, origin: &Origin<'_>) -> Result<Mapped> {
    let reference =
        reference_number(tx).ok_or_else(|| MappingError::Field("referenceNumber".into()))?;
    let vendor_type = text(tx, "", "type")?;
    let kind = if is_training(tx) {
        SaleKind::Training
    } else {
        sale_kind(&vendor_type)?
    };
    let (gross_total, currency) = money(tx, "", "gross")?;
    let business_day = NaiveDate::parse_from_str(&text(tx, "", "businessDay")?, "%Y-%m-%d")
        .map_err(|_| MappingError::Field("businessDay".into()))?;
    let (timestamp, timezone) = timestamp(tx, origin.default_timezone)?;

    let items = match tx.get("items") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(MappingError::Field("items".into())),
    };
    // A sale without items and without amount is a null receipt (e.g. a fiscal start receipt).
    let kind = if kind == SaleKind::Sale && items.is_empty() && gross_total.is_zero() {
        SaleKind::NullReceipt
    } else {
        kind
    };
    let mut lines = Vec::with_capacity(items.len());
    let mut line_taxes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (l, t) = line(item, &format!("items[{i}]"), &currency)?;
        lines.push(l);
        line_taxes.push(t);
    }
    let taxes = tax_breakdown(tx)?;
    let mut unresolved_rate_lines = Vec::new();
    for (i, rate) in resolve_rates(&line_taxes, &taxes, &currency)
        .into_iter()
        .enumerate()
    {
        lines[i].tax_rate = match rate {
            Some(r) => r,
            None => {
                unresolved_rate_lines.push(i);
                implied_rate(lines[i].net, lines[i].tax)
            }
        };
    }

    let (net, tax) = if taxes.is_empty() {
        (
            lines.iter().map(|l| l.net).sum(),
            lines.iter().map(|l| l.tax).sum(),
        )
    } else {
        (
            taxes.iter().map(|t| t.net).sum(),
            taxes.iter().map(|t| t.tax).sum(),
        )
    };
    let totals = Totals {
        net,
        tax,
        gross: gross_total,
        discount: lines.iter().map(|l| l.discount).sum(),
    };

    let sale = Sale {
        id: Sale::make_id(
            SOURCE_SYSTEM,
            origin.store_id,
            origin.register_id,
            &reference,
        ),
        source_system: SOURCE_SYSTEM.into(),
        store_id: origin.store_id.into(),
        register_id: origin.register_id.into(),
        receipt_number: reference.clone(),
        kind,
        cancels: None, // the API does not say which receipt a cancellation cancels
        business_day,
        timestamp,
        timezone: Some(timezone),
        currency,
        cashier: party(tx.get("cashier")),
        customer: customer(tx.get("customer")),
        lines,
        payments: payments(tx)?,
        taxes,
        totals,
        fiscal: None,
        loyalty: None,
        attachments: Vec::new(),
        raw_id: Some(reference),
    };
    Ok(Mapped {
        sale,
        unresolved_rate_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    fn m(s: &str) -> Value {
        json!({"currency": {"code": "EUR"}, "decimal": s.parse::<f64>().unwrap(), "string": s})
    }

    fn item(name: &str, qty: Value, price: &str, discount: &str, tax_id: u64, tax: &str) -> Value {
        json!({
            "id": 1, "product": {"id": 87896, "name": name, "externalReference": "12345", "scannedBarcode": "2001234567893"},
            "distributionChannel": "INHOUSE", "quantity": qty, "price": m(price), "discount": m(discount),
            "tax": {"id": tax_id, "amount": m(tax), "turnoverType": "sales"}, "position": "1"
        })
    }

    fn transaction() -> Value {
        json!({
            "referenceNumber": "3-000042", "type": "sales", "training": false,
            "cashier": {"id": 7, "name": "Anna"},
            "customer": {"id": 12, "name": "Kunde", "externalIdentifier": "C-12"},
            "items": [
                item("Bio-Vollmilch", json!(2), "1.19", "0.00", 1, "0.16"),
                item("Tragetasche", json!(1), "1.19", "0.00", 2, "0.19"),
            ],
            "payments": [{"id": 1, "amount": m("3.57"), "method": {"name": "Bar", "token": "CASH"}, "subType": null}],
            "taxes": [
                {"gross": m("2.38"), "tax": m("0.16"), "net": m("2.22"), "rate": 7},
                {"gross": m("1.19"), "tax": m("0.19"), "net": m("1.00"), "rate": 19}
            ],
            "gross": m("3.57"), "businessDay": "2026-02-01",
            "transactionDate": {"timestamp": "2026-02-01T09:00:00Z", "timezone": "Europe/Berlin"}
        })
    }

    fn origin() -> Origin<'static> {
        Origin {
            store_id: "default",
            register_id: "3",
            default_timezone: chrono_tz::Europe::Berlin,
        }
    }

    #[test]
    fn a_sale_maps_field_by_field_and_reconciles() {
        let got = map_transaction(&transaction(), &origin()).unwrap();
        let s = &got.sale;
        assert!(got.unresolved_rate_lines.is_empty());
        assert_eq!(s.id, "oktopos:default:3:3-000042");
        assert_eq!((s.kind, s.currency.as_str()), (SaleKind::Sale, "EUR"));
        assert_eq!(s.timestamp.to_rfc3339(), "2026-02-01T10:00:00+01:00");
        assert_eq!(s.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!(s.lines[0].tax_rate, dec!(7));
        assert_eq!((s.lines[0].net, s.lines[0].gross), (dec!(2.22), dec!(2.38)));
        assert_eq!(s.lines[1].tax_rate, dec!(19));
        assert_eq!(s.lines[0].barcode.as_deref(), Some("2001234567893"));
        assert_eq!(s.payments[0].method, "cash");
        assert_eq!(
            (s.totals.net, s.totals.tax, s.totals.gross),
            (dec!(3.22), dec!(0.35), dec!(3.57))
        );
        assert_eq!(s.cashier.as_ref().unwrap().id.as_deref(), Some("7"));
        assert_eq!(
            s.customer.as_ref().unwrap().external_id.as_deref(),
            Some("C-12")
        );
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn the_string_form_is_read_not_the_float() {
        let mut tx = transaction();
        tx["gross"] = json!({"currency": {"code": "EUR"}, "decimal": 3.5699999, "string": "3.57"});
        let s = map_transaction(&tx, &origin()).unwrap().sale;
        assert_eq!(s.totals.gross, dec!(3.57));
    }

    #[test]
    fn unknown_types_and_missing_fields_are_errors_naming_them() {
        let mut tx = transaction();
        tx["type"] = json!("voucherSale");
        assert_eq!(
            map_transaction(&tx, &origin()).unwrap_err(),
            MappingError::UnknownType("voucherSale".into())
        );
        let mut tx = transaction();
        tx["items"][1]["price"]
            .as_object_mut()
            .unwrap()
            .remove("string");
        assert_eq!(
            map_transaction(&tx, &origin()).unwrap_err(),
            MappingError::Field("items[1].price.string".into())
        );
    }

    #[test]
    fn training_flag_wins_over_type() {
        let mut tx = transaction();
        tx["training"] = json!(true);
        assert_eq!(
            map_transaction(&tx, &origin()).unwrap().sale.kind,
            SaleKind::Training
        );
    }

    #[test]
    fn an_empty_zero_sale_is_a_null_receipt() {
        let mut tx = transaction();
        tx["items"] = json!([]);
        tx["payments"] = json!([]);
        tx["taxes"] = json!([]);
        tx["gross"] = m("0.00");
        let s = map_transaction(&tx, &origin()).unwrap().sale;
        assert_eq!(s.kind, SaleKind::NullReceipt);
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }

    #[test]
    fn amounts_that_do_not_reconcile_are_kept_as_stated() {
        let mut tx = transaction();
        tx["payments"][0]["amount"] = m("3.00");
        let s = map_transaction(&tx, &origin()).unwrap().sale;
        assert_eq!(s.payments[0].amount, dec!(3.00));
        assert!(s.validate().iter().any(|v| v.path == "payments"));
    }

    #[test]
    fn payment_tokens_map_to_canonical_methods() {
        for (token, method) in [
            ("INVOICE", "invoice"),
            ("GIROCARD", "card"),
            ("EC_CARD", "card"),
            ("GIFT_CARD", "voucher"),
            ("PAYPAL", "paypal"),
        ] {
            assert_eq!(
                payment_method(token),
                (method.to_string(), Some(token.to_string()))
            );
        }
        assert_eq!(payment_method("card"), ("card".to_string(), None));
    }

    #[test]
    fn a_payment_keeps_the_vendor_token_beside_the_method() {
        let mut tx = transaction();
        tx["payments"][0]["method"] = json!({"name": "Karte", "token": "EC_CARD"});
        let p = &map_transaction(&tx, &origin()).unwrap().sale.payments[0];
        assert_eq!(
            (p.method.as_str(), p.method_raw.as_deref()),
            ("card", Some("EC_CARD"))
        );
        // Without a token the name is the vendor's word.
        tx["payments"][0]["method"] = json!({"name": "Karte"});
        let p = &map_transaction(&tx, &origin()).unwrap().sale.payments[0];
        assert_eq!(
            (p.method.as_str(), p.method_raw.as_deref()),
            ("card", Some("Karte"))
        );
    }

    #[test]
    fn weighed_quantities_round_the_line_to_cents() {
        let mut tx = transaction();
        tx["items"] = json!([item("Käse", json!(0.355), "19.90", "0.00", 1, "0.46")]);
        tx["taxes"] = json!([{"gross": m("7.06"), "tax": m("0.46"), "net": m("6.60"), "rate": 7}]);
        tx["gross"] = m("7.06");
        tx["payments"][0]["amount"] = m("7.06");
        let s = map_transaction(&tx, &origin()).unwrap().sale;
        assert_eq!(s.lines[0].gross, dec!(7.06));
        assert!(s.validate().is_empty(), "{:?}", s.validate());
    }
}
