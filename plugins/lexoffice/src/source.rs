//! The read side: sales vouchers (`voucherlist`, then `GET /v1/vouchers/{id}` for the items)
//! as canonical sales, and vendor contacts (`GET /v1/contacts?vendor=true`) as suppliers.
//!
//! Both lists are paged with a zero-based `page` and `size` (at most 250). Sales are listed
//! oldest first (`sort=createdDate,ASC`), so new vouchers come at the end and the cursor
//! (page and offset of the list, see [`crate::cursor`]) resumes where the last run stopped.

use std::collections::BTreeMap;

use chrono::DateTime;
use posbridge_plugin_api::model::{
    decimal_from_json, Customer, Decimal, Payment, Sale, SaleKind, SaleLine, Supplier, TaxLine,
    Totals,
};
use posbridge_plugin_api::rest::Position;
use posbridge_plugin_api::{ConnectorError, Page, ReadRequest};
use serde_json::Value;

use crate::client::{bad_field, encode_query_value, page_endpoint, Client};
use crate::cursor::{cursor_at, list_at, read_cursor, ListAt};
use crate::sink::SALES_TYPES;

/// `source_system` of the sales read from lexoffice.
pub const SOURCE_SYSTEM: &str = "lexoffice";
/// `store_id` and `register_id` of those sales: lexoffice has neither.
pub const STORE: &str = "lexoffice";
pub const REGISTER: &str = "vouchers";
/// The payment method of a voucher: lexoffice books it as an open item.
pub const PAYMENT_METHOD: &str = "invoice";

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
        let cursor = list_at(
            &read_cursor(request.cursor.as_ref(), "voucherlist")?,
            "voucherlist",
        );
        let mut query = vec![
            ("voucherType", SALES_TYPES.to_string()),
            ("voucherStatus", "any".to_string()),
            ("sort", "createdDate,ASC".to_string()),
        ];
        query.extend(request.from.map(|d| ("voucherDateFrom", d.to_string())));
        query.extend(request.to.map(|d| ("voucherDateTo", d.to_string())));
        let at = Position::Page(cursor.page);
        let name = page_endpoint("voucherlist", &at);
        let size = self.client.config().page_size;
        let list = self
            .client
            .list_page("voucherlist", &query, size, &at, &name)?;
        let mut records = Vec::new();
        for entry in list.items.iter().skip(cursor.offset) {
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
        // After the last page the cursor stays on it, past what was read: vouchers created
        // later are listed after them (oldest first).
        let next = match list.next {
            Some(Position::Page(page)) => ListAt { page, offset: 0 },
            _ => ListAt {
                page: cursor.page,
                offset: list.items.len().max(cursor.offset),
            },
        };
        Ok(Page {
            records,
            cursor: Some(cursor_at("voucherlist", next).to_json()),
            has_more: list.next.is_some(),
        })
    }

    fn suppliers(&self, request: &ReadRequest) -> Result<Page, ConnectorError> {
        let cursor = read_cursor(request.cursor.as_ref(), "contacts")?;
        let at = Position::Page(list_at(&cursor, "contacts").page);
        let name = page_endpoint("contacts", &at);
        let size = self.client.config().page_size;
        let query = [("vendor", "true".to_string())];
        let list = self
            .client
            .list_page("contacts", &query, size, &at, &name)?;
        let mut records = Vec::new();
        for c in &list.items {
            let s = supplier_from_contact(c).map_err(|field| bad_field(&name, field, "present"))?;
            records.push(serde_json::to_value(s)?);
        }
        let next = match list.next {
            Some(Position::Page(page)) => Some(cursor_at("contacts", ListAt { page, offset: 0 })),
            _ => None,
        };
        Ok(Page {
            records,
            // Contacts are read whole on every run: no cursor is kept past the last page.
            cursor: next.as_ref().map(|c| c.to_json()),
            has_more: next.is_some(),
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
            method_raw: None,
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
    use posbridge_plugin_api::testing::{json_response, FakeHost};
    use rust_decimal_macros::dec;
    use serde_json::json;

    /// Contacts in pages of two: `last` ends the list, and without it a short page does.
    #[test]
    fn suppliers_are_paged_until_last_or_a_short_page() {
        for with_flag in [true, false] {
            let vendor = FakeHost::with_vendor(move |req| {
                let page: usize = req.url.split("page=").nth(1).unwrap()[..1].parse().unwrap();
                let n = [2, 2, 1][page];
                let content: Vec<Value> = (0..n)
                    .map(|i| json!({"id": format!("c{page}{i}"), "company": {"name": "Lieferant"}}))
                    .collect();
                let mut body = json!({"content": content});
                if with_flag {
                    body["last"] = json!(page == 2);
                }
                Ok(json_response(200, &body))
            });
            let cfg: crate::config::Config = serde_json::from_value(
                json!({"base_url": "http://h/", "api_key": "k", "page_size": 2}),
            )
            .unwrap();
            let client = Client::new(vendor.host(), cfg);
            let reader = Reader { client: &client };
            let mut request = ReadRequest {
                stream: "suppliers".into(),
                cursor: None,
                page_size: 2,
                from: None,
                to: None,
                ..Default::default()
            };
            let mut ids = Vec::new();
            loop {
                let page = reader.read(&request).unwrap();
                ids.extend(page.records.iter().map(|r| r["supplier_id"].clone()));
                if !page.has_more {
                    assert_eq!(page.cursor, None);
                    break;
                }
                request.cursor = page.cursor;
            }
            assert_eq!(ids.len(), 5, "flag {with_flag}: {ids:?}");
            assert_eq!(
                vendor.requests()[1].url,
                "http://h/v1/contacts?vendor=true&page=1&size=2"
            );
            assert_eq!(vendor.request_count(), 3);
        }
    }

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
}
