//! A [`Sale`] written as JSON text with its keys sorted at every level: the text
//! `serde_json::to_value(sale)` and then `to_writer` spell (serde_json's `Value` keeps object
//! keys sorted), written straight from the struct. A source that hands the host sales as NDJSON
//! spares a `Value` tree per record this way — its allocations, key comparisons and drop — and
//! the host and the sinks see the very bytes they saw before.
//!
//! The field lists below mirror `sale.rs` in sorted order; the tests compare both ways of
//! writing on sales with every field set, so a field added there fails them until added here.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::sale::{
    Attachment, Customer, FiscalSignature, Loyalty, Party, Payment, RksvSignature, Sale, SaleLine,
    TaxLine, Totals, TseSignature,
};

/// Appends the sale's JSON text (compact, keys sorted) to `out`, without a newline.
///
/// ```
/// use posbridge_plugin_api::model::{write_sale_json, Sale};
/// let sale = Sale::example();
/// let mut text = Vec::new();
/// write_sale_json(&sale, &mut text).unwrap();
/// let via_value = serde_json::to_vec(&serde_json::to_value(&sale).unwrap()).unwrap();
/// assert_eq!(text, via_value);
/// ```
pub fn write_sale_json(sale: &Sale, out: &mut Vec<u8>) -> serde_json::Result<()> {
    serde_json::to_writer(out, &Sorted(sale))
}

/// A model value serialized with its fields in sorted order.
struct Sorted<'a, T>(&'a T);

/// A slice whose elements are serialized [`Sorted`].
struct SortedSeq<'a, T>(&'a [T]);

impl<'a, T> Serialize for SortedSeq<'a, T>
where
    Sorted<'a, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Sorted))
    }
}

fn sorted<T>(v: &Option<T>) -> Option<Sorted<'_, T>> {
    v.as_ref().map(Sorted)
}

impl Serialize for Sorted<'_, Sale> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Sale", 21)?;
        st.serialize_field("attachments", &SortedSeq(&x.attachments))?;
        st.serialize_field("business_day", &x.business_day)?;
        st.serialize_field("cancels", &x.cancels)?;
        st.serialize_field("cashier", &sorted(&x.cashier))?;
        st.serialize_field("currency", &x.currency)?;
        st.serialize_field("customer", &sorted(&x.customer))?;
        st.serialize_field("fiscal", &sorted(&x.fiscal))?;
        st.serialize_field("id", &x.id)?;
        st.serialize_field("kind", &x.kind)?;
        st.serialize_field("lines", &SortedSeq(&x.lines))?;
        st.serialize_field("loyalty", &sorted(&x.loyalty))?;
        st.serialize_field("payments", &SortedSeq(&x.payments))?;
        st.serialize_field("raw_id", &x.raw_id)?;
        st.serialize_field("receipt_number", &x.receipt_number)?;
        st.serialize_field("register_id", &x.register_id)?;
        st.serialize_field("source_system", &x.source_system)?;
        st.serialize_field("store_id", &x.store_id)?;
        st.serialize_field("taxes", &SortedSeq(&x.taxes))?;
        st.serialize_field("timestamp", &x.timestamp)?;
        st.serialize_field("timezone", &x.timezone)?;
        st.serialize_field("totals", &Sorted(&x.totals))?;
        st.end()
    }
}

impl Serialize for Sorted<'_, SaleLine> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("SaleLine", 11)?;
        st.serialize_field("barcode", &x.barcode)?;
        st.serialize_field("category", &x.category)?;
        st.serialize_field("discount", &x.discount)?;
        st.serialize_field("gross", &x.gross)?;
        st.serialize_field("name", &x.name)?;
        st.serialize_field("net", &x.net)?;
        st.serialize_field("product_id", &x.product_id)?;
        st.serialize_field("quantity", &x.quantity)?;
        st.serialize_field("tax", &x.tax)?;
        st.serialize_field("tax_rate", &x.tax_rate)?;
        st.serialize_field("unit_price", &x.unit_price)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Payment> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Payment", 5)?;
        st.serialize_field("amount", &x.amount)?;
        st.serialize_field("currency", &x.currency)?;
        st.serialize_field("method", &x.method)?;
        // `skip_serializing_if = "Option::is_none"` in the model.
        if let Some(raw) = &x.method_raw {
            st.serialize_field("method_raw", raw)?;
        }
        st.serialize_field("psp_reference", &x.psp_reference)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, TaxLine> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("TaxLine", 4)?;
        st.serialize_field("gross", &x.gross)?;
        st.serialize_field("net", &x.net)?;
        st.serialize_field("rate", &x.rate)?;
        st.serialize_field("tax", &x.tax)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Totals> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Totals", 4)?;
        st.serialize_field("discount", &x.discount)?;
        st.serialize_field("gross", &x.gross)?;
        st.serialize_field("net", &x.net)?;
        st.serialize_field("tax", &x.tax)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Party> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Party", 2)?;
        st.serialize_field("id", &x.id)?;
        st.serialize_field("name", &x.name)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Customer> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Customer", 4)?;
        st.serialize_field("external_id", &x.external_id)?;
        st.serialize_field("id", &x.id)?;
        st.serialize_field("name", &x.name)?;
        st.serialize_field("phone", &x.phone)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, FiscalSignature> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("FiscalSignature", 2)?;
        st.serialize_field("rksv", &sorted(&x.rksv))?;
        st.serialize_field("tse", &sorted(&x.tse))?;
        st.end()
    }
}

impl Serialize for Sorted<'_, RksvSignature> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("RksvSignature", 4)?;
        st.serialize_field("cash_register_id", &x.cash_register_id)?;
        st.serialize_field("qr_code", &x.qr_code)?;
        st.serialize_field("receipt_number", &x.receipt_number)?;
        st.serialize_field("signature", &x.signature)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, TseSignature> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("TseSignature", 6)?;
        st.serialize_field("end", &x.end)?;
        st.serialize_field("serial_number", &x.serial_number)?;
        st.serialize_field("signature", &x.signature)?;
        st.serialize_field("signature_counter", &x.signature_counter)?;
        st.serialize_field("start", &x.start)?;
        st.serialize_field("transaction_number", &x.transaction_number)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Loyalty> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Loyalty", 3)?;
        st.serialize_field("pending_approval", &x.pending_approval)?;
        st.serialize_field("points_burned", &x.points_burned)?;
        st.serialize_field("points_earned", &x.points_earned)?;
        st.end()
    }
}

impl Serialize for Sorted<'_, Attachment> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        let mut st = s.serialize_struct("Attachment", 3)?;
        st.serialize_field("content_type", &x.content_type)?;
        st.serialize_field("name", &x.name)?;
        st.serialize_field("url", &x.url)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, SaleKind};

    fn via_value(sale: &Sale) -> Vec<u8> {
        serde_json::to_vec(&serde_json::to_value(sale).unwrap()).unwrap()
    }

    fn direct(sale: &Sale) -> Vec<u8> {
        let mut out = Vec::new();
        write_sale_json(sale, &mut out).unwrap();
        out
    }

    /// Every optional part set, with text that needs escaping.
    fn full() -> Sale {
        let mut s = Sale::example();
        s.kind = SaleKind::Cancellation;
        s.cancels = Some("R-\"1\"\n".into());
        s.timezone = Some("Europe/Vienna".into());
        s.cashier = Some(Party {
            id: Some("c1".into()),
            name: Some("Añna".into()),
        });
        s.customer = Some(Customer {
            id: Some("k".into()),
            name: None,
            external_id: Some("x".into()),
            phone: Some("+43 1".into()),
        });
        s.fiscal = Some(FiscalSignature {
            tse: Some(TseSignature {
                serial_number: "sn".into(),
                signature: "sig".into(),
                signature_counter: 7,
                transaction_number: u64::MAX,
                start: Some(s.timestamp),
                end: None,
            }),
            rksv: Some(RksvSignature {
                cash_register_id: "AT-1".into(),
                receipt_number: "1".into(),
                signature: None,
                qr_code: Some("_R1-AT1_x".into()),
            }),
        });
        s.loyalty = Some(Loyalty {
            points_earned: Decimal::new(15, 1),
            points_burned: Decimal::ZERO,
            pending_approval: true,
        });
        s.attachments = vec![Attachment {
            name: "bon.pdf".into(),
            url: Some("http://h/bon.pdf".into()),
            content_type: None,
        }];
        s.raw_id = Some("raw\\1".into());
        for l in &mut s.lines {
            l.barcode = Some("4001".into());
            l.category = Some("Milch".into());
        }
        s.payments[0].method_raw = Some("Bar".into());
        s.payments[0].psp_reference = Some("psp".into());
        s
    }

    #[test]
    fn writes_what_the_value_would_write() {
        for sale in [Sale::example(), full()] {
            assert_eq!(
                String::from_utf8(direct(&sale)).unwrap(),
                String::from_utf8(via_value(&sale)).unwrap()
            );
        }
    }
}
