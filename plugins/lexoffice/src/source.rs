//! The read side: sales vouchers (`voucherlist`, then `GET /v1/vouchers/{id}` for the items)
//! as canonical sales, and vendor contacts (`GET /v1/contacts?vendor=true`) as suppliers.
//!
//! Both lists are paged with a zero-based `page` and `size` (at most 250). Sales are listed
//! oldest first (`sort=createdDate,ASC`), so new vouchers come at the end and the cursor
//! `{"page", "offset"}` resumes where the last run stopped.

use std::collections::BTreeMap;

use chrono::DateTime;
use posbridge_plugin_api::model::{
    decimal_from_json, Customer, Decimal, Payment, Sale, SaleKind, SaleLine, Supplier, TaxLine,
    Totals,
};
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde_json::{json, Value};

use crate::client::{bad_field, encode_query_value, Client};
use crate::sink::SALES_TYPES;

/// `source_system` of the sales read from lexoffice.
pub const SOURCE_SYSTEM: &str = "lexoffice";
/// `store_id` and `register_id` of those sales: lexoffice has neither.
pub const STORE: &str = "lexoffice";
pub const REGISTER: &str = "vouchers";
/// The payment method of a voucher: lexoffice books it as an open item.
pub const PAYMENT_METHOD: &str = "invoice";

/// Where a read resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    page: u64,
    offset: usize,
}

impl Cursor {
    fn parse(v: Option<&Value>) -> Self {
        let n = |k: &str| {
            v.and_then(|c| c.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Cursor {
            page: n("page"),
            offset: n("offset") as usize,
        }
    }

    fn to_json(self) -> Value {
        json!({"page": self.page, "offset": self.offset})
    }
}

/// Reads the source streams.
pub struct Reader<'a> {
    pub client: &'a Client,
}

impl Reader<'_> {
    pub fn read(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        match request.stream.as_str() {
            "sales" => self.sales(request),
            "suppliers" => self.suppliers(request),
            other => Err(ConnectorError::Config(format!(
                "lexoffice reads the sales and suppliers streams, not {other:?}"
            ))),
        }
    }

    fn sales(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let cursor = Cursor::parse(request.cursor.as_ref());
        let size = self.client.config().page_size;
        let mut q = format!(
            "voucherlist?voucherType={SALES_TYPES}&voucherStatus=any&sort=createdDate,ASC&page={}&size={size}",
            cursor.page
        );
        if let Some(from) = request.from {
            q.push_str(&format!("&voucherDateFrom={from}"));
        }
        if let Some(to) = request.to {
            q.push_str(&format!("&voucherDateTo={to}"));
        }
        let name = format!("voucherlist (page {})", cursor.page);
        let body = self.client.get(&q, &name)?;
        let content = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_field(&name, "content", "an array"))?;
        let mut records = Vec::new();
        for entry in content.iter().skip(cursor.offset) {
            if entry.get("voucherStatus").and_then(Value::as_str) == Some("voided") {
                continue;
            }
            let id = entry
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_field(&name, "content[].id", "a string"))?;
            let endpoint = format!("vouchers/{id}");
            let voucher = self
                .client
                .get(&format!("vouchers/{}", encode_query_value(id)), &endpoint)?;
            let sale = sale_from_voucher(&voucher)
                .map_err(|field| bad_field(&endpoint, field, "present and well-formed"))?;
            records.push(serde_json::to_value(sale)?);
        }
        let last = body.get("last").and_then(Value::as_bool).unwrap_or(true);
        let full = content.len() >= size as usize;
        let next = if full && !last {
            Cursor {
                page: cursor.page + 1,
                offset: 0,
            }
        } else {
            Cursor {
                page: cursor.page,
                offset: content.len().max(cursor.offset),
            }
        };
        Ok(Page {
            records,
            cursor: Some(next.to_json()),
            has_more: full && !last,
        })
    }

    fn suppliers(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let page = Cursor::parse(request.cursor.as_ref()).page;
        let size = self.client.config().page_size;
        let name = format!("contacts (page {page})");
        let body = self.client.get(
            &format!("contacts?vendor=true&page={page}&size={size}"),
            &name,
        )?;
        let content = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_field(&name, "content", "an array"))?;
        let mut records = Vec::new();
        for c in content {
            let s = supplier_from_contact(c).map_err(|field| bad_field(&name, field, "present"))?;
            records.push(serde_json::to_value(s)?);
        }
        let last = body.get("last").and_then(Value::as_bool).unwrap_or(true);
        Ok(Page {
            records,
            // Contacts are read whole on every run: no cursor is kept past the last page.
            cursor: (!last).then(|| json!({"page": page + 1, "offset": 0})),
            has_more: !last,
        })
    }
}

/// A full voucher (`GET /v1/vouchers/{id}`) as a canonical sale: one line per voucher item;
/// a credit note is a refund with negative amounts; paid as an open item (`invoice`).
/// `Err` names the field that is missing or malformed.
pub fn sale_from_voucher(v: &Value) -> Result<Sale, String> {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| k.to_string())
    };
    let id = text("id")?;
    let number = text("voucherNumber")?;
    let kind = match text("type")? {
        "salesinvoice" => SaleKind::Sale,
        "salescreditnote" => SaleKind::Refund,
        _ => return Err("type".into()),
    };
    let sign = if kind == SaleKind::Refund {
        -Decimal::ONE
    } else {
        Decimal::ONE
    };
    let timestamp = DateTime::parse_from_rfc3339(text("voucherDate")?)
        .map_err(|_| "voucherDate".to_string())?;
    let gross_items = match text("taxType")? {
        "gross" => true,
        "net" => false,
        _ => return Err("taxType".into()),
    };
    let items = v
        .get("voucherItems")
        .and_then(Value::as_array)
        .ok_or_else(|| "voucherItems".to_string())?;
    let mut lines = Vec::new();
    let mut per_rate: BTreeMap<Decimal, TaxLine> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let num = |k: &str| {
            item.get(k)
                .and_then(decimal_from_json)
                .ok_or_else(|| format!("voucherItems[{i}].{k}"))
        };
        let (amount, tax, rate) = (num("amount")?, num("taxAmount")?, num("taxRatePercent")?);
        let rate = rate.normalize();
        let (net, gross) = if gross_items {
            (amount - tax, amount)
        } else {
            (amount, amount + tax)
        };
        let (net, tax, gross) = (net * sign, tax * sign, gross * sign);
        let category = item
            .get("categoryId")
            .and_then(Value::as_str)
            .map(str::to_string);
        lines.push(SaleLine {
            product_id: None,
            name: format!("Umsatz {rate} %"),
            category,
            barcode: None,
            quantity: Decimal::ONE,
            unit_price: gross,
            discount: Decimal::ZERO,
            tax_rate: rate,
            net,
            tax,
            gross,
        });
        let t = per_rate.entry(rate).or_insert_with(|| TaxLine {
            rate,
            net: Decimal::ZERO,
            tax: Decimal::ZERO,
            gross: Decimal::ZERO,
        });
        t.net += net;
        t.tax += tax;
        t.gross += gross;
    }
    let taxes: Vec<TaxLine> = per_rate.into_values().collect();
    let totals = Totals {
        net: taxes.iter().map(|t| t.net).sum(),
        tax: taxes.iter().map(|t| t.tax).sum(),
        gross: taxes.iter().map(|t| t.gross).sum(),
        discount: Decimal::ZERO,
    };
    let customer = v
        .get("contactId")
        .and_then(Value::as_str)
        .map(|c| Customer {
            id: Some(c.to_string()),
            name: v
                .get("contactName")
                .and_then(Value::as_str)
                .map(str::to_string),
            external_id: None,
            phone: None,
        });
    Ok(Sale {
        id: Sale::make_id(SOURCE_SYSTEM, STORE, REGISTER, id),
        source_system: SOURCE_SYSTEM.into(),
        store_id: STORE.into(),
        register_id: REGISTER.into(),
        receipt_number: number.to_string(),
        kind,
        cancels: None,
        business_day: timestamp.date_naive(),
        timestamp,
        timezone: Some("Europe/Berlin".into()),
        currency: "EUR".into(),
        cashier: None,
        customer,
        lines,
        payments: vec![Payment {
            method: PAYMENT_METHOD.into(),
            amount: totals.gross,
            currency: "EUR".into(),
            psp_reference: None,
        }],
        taxes,
        totals,
        fiscal: None,
        loyalty: None,
        attachments: Vec::new(),
        raw_id: Some(id.to_string()),
    })
}

/// A contact with the vendor role as a supplier: the company's name (or the person's), its
/// first e-mail address and its VAT id.
pub fn supplier_from_contact(c: &Value) -> Result<Supplier, String> {
    let id = c.get("id").and_then(Value::as_str).ok_or("id")?;
    let company = c.get("company");
    let person = c.get("person");
    let name = company
        .and_then(|x| x.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let p = person?;
            let part = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
            let full = format!("{} {}", part("firstName"), part("lastName"));
            Some(full.trim().to_string()).filter(|s| !s.is_empty())
        })
        .ok_or("company.name or person.lastName")?;
    let email = c.get("emailAddresses").and_then(|e| {
        ["business", "office", "private", "other"]
            .iter()
            .find_map(|k| e.get(k)?.as_array()?.first()?.as_str().map(str::to_string))
    });
    let vat_id = company
        .and_then(|x| x.get("vatRegistrationId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Supplier {
        id: id.to_string(),
        name,
        email,
        vat_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_credit_note_reads_as_a_refund_that_reconciles() {
        let v = json!({
            "id": "a8691b5d-2393-4317-888d-bcd5d564f7d1", "type": "salescreditnote",
            "voucherStatus": "open", "voucherNumber": "PB-1", "voucherDate": "2025-01-06T00:00:00.000+01:00",
            "totalGrossAmount": 226.00, "totalTaxAmount": 26.00, "taxType": "gross", "useCollectiveContact": true,
            "voucherItems": [
                {"amount": 119.00, "taxAmount": 19.00, "taxRatePercent": 19.00, "categoryId": "c"},
                {"amount": 107.00, "taxAmount": 7.00, "taxRatePercent": 7, "categoryId": "c"}
            ]
        });
        let s = sale_from_voucher(&v).unwrap();
        assert_eq!(s.kind, SaleKind::Refund);
        assert_eq!(s.totals.gross, dec!(-226));
        assert_eq!(s.totals.net, dec!(-200));
        assert_eq!(s.business_day.to_string(), "2025-01-06");
        assert_eq!(s.receipt_number, "PB-1");
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        let mut bad = v.clone();
        bad["voucherItems"][1]["taxAmount"] = json!(null);
        assert_eq!(
            sale_from_voucher(&bad).unwrap_err(),
            "voucherItems[1].taxAmount"
        );
    }

    #[test]
    fn contacts_read_as_suppliers() {
        let c = json!({"id": "c1", "roles": {"vendor": {"number": 70001}},
            "company": {"name": "Brauerei Hell GmbH", "vatRegistrationId": "DE123456789"},
            "emailAddresses": {"business": ["einkauf@hell.example"]}});
        let s = supplier_from_contact(&c).unwrap();
        assert_eq!(
            (s.name.as_str(), s.email.as_deref(), s.vat_id.as_deref()),
            (
                "Brauerei Hell GmbH",
                Some("einkauf@hell.example"),
                Some("DE123456789")
            )
        );
        let p = json!({"id": "c2", "person": {"firstName": "Eva", "lastName": "Gruber"}});
        assert_eq!(supplier_from_contact(&p).unwrap().name, "Eva Gruber");
        assert!(supplier_from_contact(&json!({"id": "c3"})).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { page: 3, offset: 7 };
        assert_eq!(Cursor::parse(Some(&c.to_json())), c);
        assert_eq!(Cursor::parse(None), Cursor { page: 0, offset: 0 });
    }
}
