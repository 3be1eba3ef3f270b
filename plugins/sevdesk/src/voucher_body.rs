//! Request bodies of `POST /Voucher/Factory/saveVoucher` and `PUT /Voucher/{id}/bookAmount`,
//! written with exact decimals (spec schemas `saveVoucher`, `Model_Voucher`, `Model_VoucherPos`).
//! Only keys the spec defines for the body are sent, and an optional object that has no value
//! is left out rather than sent as `null`.

use chrono::{DateTime, FixedOffset};

use crate::booking::{Booking, Counterparty, PaymentBooking};
use crate::config::{VoucherPosKey, VoucherStatus};
use crate::json_text::Json;
use crate::mapping::tax_type;

/// An ISO 8601 date-time (the spec's `format: date-time`; sevDesk also reads dd.mm.yyyy).
pub fn date_time(d: &DateTime<FixedOffset>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

fn reference(object_name: &str, id: u64) -> Json {
    Json::obj([
        ("id", Json::Int(id)),
        ("objectName", Json::str(object_name)),
    ])
}

/// `creditDebit` of every voucher: revenue ("D": "You sold something"). Refunds are negative
/// revenue, not expenses ("C": "You bought something").
pub const REVENUE: &str = "D";

/// The `saveVoucher` body: the voucher and its positions in `voucherPosSave`; `voucherPos`
/// (required by the spec's list, defined nowhere) only as `null` when configured.
pub fn save_voucher(b: &Booking, status: VoucherStatus, voucher_pos: VoucherPosKey) -> String {
    let mut voucher = vec![
        ("objectName".to_string(), Json::str("Voucher")),
        ("mapAll".to_string(), Json::Bool(true)),
        ("voucherDate".to_string(), Json::str(date_time(&b.date))),
        ("deliveryDate".to_string(), Json::str(date_time(&b.date))),
        ("description".to_string(), Json::str(b.description.clone())),
        ("status".to_string(), Json::Int(status.code().into())),
        ("taxRule".to_string(), reference("TaxRule", b.tax_rule)),
        ("taxType".to_string(), Json::str(tax_type(b.tax_rule))),
        ("creditDebit".to_string(), Json::str(REVENUE)),
        ("voucherType".to_string(), Json::str("VOU")),
        ("currency".to_string(), Json::str(b.currency.clone())),
    ];
    voucher.push(match &b.counterparty {
        Counterparty::Name(name) => ("supplierName".to_string(), Json::str(name.clone())),
        Counterparty::Contact(id) => ("supplier".to_string(), reference("Contact", *id)),
    });
    if let Some(cc) = b.cost_centre {
        voucher.push(("costCentre".to_string(), reference("CostCentre", cc)));
    }
    let positions = b
        .positions
        .iter()
        .map(|p| {
            Json::obj([
                ("objectName", Json::str("VoucherPos")),
                ("mapAll", Json::Bool(true)),
                ("accountDatev", reference("AccountDatev", p.account_datev)),
                (
                    "accountingType",
                    reference("AccountingType", b.accounting_type),
                ),
                ("taxRate", Json::Num(p.rate)),
                // Gross positions: sevDesk derives net and tax from sumGross and the rate.
                ("net", Json::Bool(false)),
                ("sumGross", Json::Num(p.gross)),
                ("sumNet", Json::Num(p.net)),
                ("comment", Json::str(format!("USt {} %", p.rate))),
            ])
        })
        .collect();
    let mut body = vec![
        ("voucher".to_string(), Json::Obj(voucher)),
        ("voucherPosSave".to_string(), Json::Arr(positions)),
    ];
    if voucher_pos == VoucherPosKey::Null {
        body.push(("voucherPos".to_string(), Json::Null));
    }
    Json::Obj(body).to_text()
}

/// The `bookAmount` body of one payment; `full` when it pays the whole voucher at once.
pub fn book_amount(p: &PaymentBooking, date: &DateTime<FixedOffset>, full: bool) -> String {
    Json::obj([
        ("amount", Json::Num(p.amount)),
        ("date", Json::str(date_time(date))),
        ("type", Json::str(if full { "FULL_PAYMENT" } else { "N" })),
        ("checkAccount", reference("CheckAccount", p.check_account)),
        ("createFeed", Json::Bool(false)),
    ])
    .to_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::Position;
    use rust_decimal_macros::dec;
    use serde_json::Value;

    fn booking() -> Booking {
        Booking {
            description: "Kassenbon S1/R1/1 PB-k".into(),
            date: DateTime::parse_from_rfc3339("2026-02-01T10:00:00+01:00").unwrap(),
            currency: "EUR".into(),
            tax_rule: 1,
            accounting_type: 26,
            cost_centre: Some(4),
            counterparty: Counterparty::Name("Kasse S1/R1".into()),
            positions: vec![Position {
                account_datev: 8400,
                rate: dec!(19),
                net: dec!(1.00),
                gross: dec!(1.19),
            }],
            payments: vec![],
        }
    }

    #[test]
    fn the_voucher_body_has_the_spec_fields_with_exact_amounts() {
        let text = save_voucher(&booking(), VoucherStatus::Open, VoucherPosKey::Omit);
        assert!(text.contains(r#""sumGross":1.19"#), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["voucher"]["status"], 100);
        assert_eq!(v["voucher"]["creditDebit"], "D");
        assert_eq!(v["voucher"]["voucherDate"], "2026-02-01T10:00:00+01:00");
        assert_eq!(v["voucher"]["taxRule"]["id"], 1);
        assert_eq!(v["voucher"]["costCentre"]["objectName"], "CostCentre");
        assert_eq!(v["voucherPosSave"][0]["accountDatev"]["id"], 8400);
        assert_eq!(v["voucher"]["supplierName"], "Kasse S1/R1");
        assert_eq!(v["voucher"]["taxType"], "default");
        assert!(v["voucher"].get("supplier").is_none(), "no null objects");
        assert!(
            v.get("voucherPos").is_none(),
            "no key the spec does not define"
        );
        let draft: Value = serde_json::from_str(&save_voucher(
            &booking(),
            VoucherStatus::Draft,
            VoucherPosKey::Null,
        ))
        .unwrap();
        assert_eq!(draft["voucher"]["status"], 50);
        assert_eq!(draft["voucherPos"], Value::Null);
        assert!(draft.as_object().unwrap().contains_key("voucherPos"));
        let mut to_contact = booking();
        to_contact.counterparty = Counterparty::Contact(12);
        let v: Value = serde_json::from_str(&save_voucher(
            &to_contact,
            VoucherStatus::Open,
            VoucherPosKey::Omit,
        ))
        .unwrap();
        assert_eq!(
            v["voucher"]["supplier"],
            serde_json::json!({"id": 12, "objectName": "Contact"})
        );
        assert!(v["voucher"].get("supplierName").is_none());
    }

    #[test]
    fn the_booking_body_names_the_check_account() {
        let b = booking();
        let text = book_amount(
            &PaymentBooking {
                check_account: 7,
                amount: dec!(1.19),
            },
            &b.date,
            true,
        );
        assert_eq!(
            text,
            r#"{"amount":1.19,"date":"2026-02-01T10:00:00+01:00","type":"FULL_PAYMENT","checkAccount":{"id":7,"objectName":"CheckAccount"},"createFeed":false}"#
        );
    }
}
