//! A receipt as the answer spells it, before any of it is checked: every field the mapping
//! reads, each as the JSON had it (a number, a string, absent or null, something else). Read
//! straight from the page's JSON text (no `Value` tree per receipt: its allocations and key
//! look-ups were most of the cost of a page), or from a `Value` when the page had to be read
//! as one. What is accepted, and every error, is decided by the mapping ([`crate::receipt`]),
//! the same for both.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use posbridge_plugin_api::model::{decimal_from_number, decimal_from_text, Decimal};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// A scalar field.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'a> {
    /// Absent or `null`.
    #[default]
    Absent,
    Num(Number),
    Str(Cow<'a, str>),
    Bool(bool),
    /// An array or an object.
    Other,
}

/// A field that should be an array.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum List<T> {
    /// Absent or `null`.
    #[default]
    Absent,
    NotArray,
    Items(Vec<T>),
}

/// A value that should be an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj<T> {
    Is(T),
    Not,
}

/// A field that, when present and not `null`, should be an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum OptObj<T> {
    /// Absent or `null`.
    #[default]
    Absent,
    Is(T),
    Not,
}

/// The receipt's `signature`: a text, an object, or anything else (ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Signature<'a> {
    #[default]
    None,
    Text(Cow<'a, str>),
    Object(SignatureFields<'a>),
}

/// The fields of an object of the answer that the mapping reads: a struct with a `Default`
/// (every field absent), set key by key (the last of repeated keys wins, as in a `Value`).
pub trait RawFields<'de>: Default {
    /// Reads the value of `key` into its field, or skips it.
    fn set<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
    /// The fields of an object of a `Value` tree.
    fn from_map(map: &'de Map<String, Value>) -> Self;
}

/// Built from a field of a `Value` tree (`None`: the field is absent).
pub trait FromValue<'a> {
    fn from_value(v: Option<&'a Value>) -> Self;
}

macro_rules! raw_fields {
    ($(#[$m:meta])* $name:ident { $($field:ident: $ty:ty = $key:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name<'a> {
            $(pub $field: $ty,)*
        }

        impl<'de> RawFields<'de> for $name<'de> {
            fn set<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
                match key {
                    $($key => self.$field = map.next_value()?,)*
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(())
            }

            fn from_map(map: &'de Map<String, Value>) -> Self {
                Self {
                    $($field: FromValue::from_value(map.get($key)),)*
                }
            }
        }
    };
}

raw_fields!(
    /// One receipt of `GET /receipts`.
    Receipt {
        id: Scalar<'a> = "_id",
        receipt_number: Scalar<'a> = "receiptNumber",
        cash_register_id: Scalar<'a> = "cashRegisterId",
        kind: Scalar<'a> = "type",
        created: Scalar<'a> = "created",
        price: Scalar<'a> = "price",
        voucher: Scalar<'a> = "voucher",
        payment_method: Scalar<'a> = "paymentMethod",
        discount_absolute: Scalar<'a> = "discountAbsolute",
        cancellation: OptObj<Cancellation<'a>> = "cancellation",
        items: List<Obj<Item<'a>>> = "items",
        vat_sums: List<Obj<VatSum<'a>>> = "vatSums",
        signature: Signature<'a> = "signature",
        attachment_urls: List<Scalar<'a>> = "attachmentUrls",
    }
);

raw_fields!(
    /// A receipt's `cancellation`: the receipt it cancels.
    Cancellation {
        receipt_number: Scalar<'a> = "receiptNumber",
    }
);

raw_fields!(
    /// One of a receipt's `items`.
    Item {
        price_all: Scalar<'a> = "priceAll",
        amount: Scalar<'a> = "amount",
        price_one: Scalar<'a> = "priceOne",
        vat: Scalar<'a> = "vat",
        vat_amount: Scalar<'a> = "vatAmount",
        item_id: Scalar<'a> = "itemId",
        name_long: Scalar<'a> = "nameLong",
        group_name: Scalar<'a> = "groupName",
        discount_absolute: Scalar<'a> = "discountAbsolute",
        discount_percentage: Scalar<'a> = "discountPercentage",
    }
);

raw_fields!(
    /// One of a receipt's `vatSums`.
    VatSum {
        vat: Scalar<'a> = "vat",
        net: Scalar<'a> = "net",
        vat_amount: Scalar<'a> = "vatAmount",
        gross: Scalar<'a> = "gross",
    }
);

raw_fields!(
    /// A `signature` given as an object.
    SignatureFields {
        cash_register_id: Scalar<'a> = "cashRegisterId",
        receipt_number: Scalar<'a> = "receiptNumber",
        signature: Scalar<'a> = "signature",
        qr_code: Scalar<'a> = "qrCode",
    }
);

/// The receipts of a page read from its JSON text; `None` when the text is not a JSON array
/// (the caller reads it as a `Value` then, for the error the answer deserves).
pub fn page_from_text(text: &[u8]) -> Option<Vec<Obj<Receipt<'_>>>> {
    serde_json::from_slice(text).ok()
}

/// A receipt of a page read as a `Value`.
pub fn receipt_from_value(v: &Value) -> Obj<Receipt<'_>> {
    FromValue::from_value(Some(v))
}

// ---- reading a scalar, as `crate::fields::Fields` reads a `Value` ----

/// What a field should have been, for the error.
pub type Expected = &'static str;

impl Scalar<'_> {
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::Absent)
    }

    /// A string; a number is taken by its text, as ids sometimes are.
    pub fn opt_string(&self) -> Result<Option<String>, Expected> {
        match self {
            Self::Absent => Ok(None),
            Self::Str(s) => Ok(Some(s.to_string())),
            Self::Num(n) => Ok(Some(n.to_string())),
            Self::Bool(_) | Self::Other => Err("a string"),
        }
    }

    pub fn string(&self) -> Result<String, Expected> {
        self.opt_string()?.ok_or("a string")
    }

    /// A non-negative integer, or a string holding one.
    pub fn opt_unsigned(&self) -> Result<Option<u64>, Expected> {
        match self {
            Self::Absent => Ok(None),
            Self::Num(n) => n.as_u64().map(Some).ok_or("an integer"),
            Self::Str(s) => s.parse().map(Some).map_err(|_| "an integer"),
            Self::Bool(_) | Self::Other => Err("an integer"),
        }
    }

    pub fn unsigned(&self) -> Result<u64, Expected> {
        self.opt_unsigned()?.ok_or("an integer")
    }

    /// A JSON number or numeric string, read exactly (see `decimal_from_json`).
    pub fn decimal(&self) -> Result<Decimal, Expected> {
        let read = match self {
            Self::Num(n) => decimal_from_number(n),
            Self::Str(s) => decimal_from_text(s),
            Self::Absent | Self::Bool(_) | Self::Other => None,
        };
        read.ok_or("a number")
    }

    /// A decimal, zero when absent or `null`.
    pub fn decimal_or_zero(&self) -> Result<Decimal, Expected> {
        match self {
            Self::Absent => Ok(Decimal::ZERO),
            other => other.decimal(),
        }
    }
}

// ---- from a `Value` ----

impl<'a> FromValue<'a> for Scalar<'a> {
    fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            None | Some(Value::Null) => Self::Absent,
            Some(Value::Number(n)) => Self::Num(n.clone()),
            Some(Value::String(s)) => Self::Str(Cow::Borrowed(s)),
            Some(Value::Bool(b)) => Self::Bool(*b),
            Some(Value::Array(_) | Value::Object(_)) => Self::Other,
        }
    }
}

impl<'a, T: FromValue<'a>> FromValue<'a> for List<T> {
    fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            None | Some(Value::Null) => Self::Absent,
            Some(Value::Array(a)) => {
                Self::Items(a.iter().map(|e| T::from_value(Some(e))).collect())
            }
            Some(_) => Self::NotArray,
        }
    }
}

impl<'a, T: RawFields<'a>> FromValue<'a> for Obj<T> {
    fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            Some(Value::Object(o)) => Self::Is(T::from_map(o)),
            _ => Self::Not,
        }
    }
}

impl<'a, T: RawFields<'a>> FromValue<'a> for OptObj<T> {
    fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            None | Some(Value::Null) => Self::Absent,
            Some(Value::Object(o)) => Self::Is(T::from_map(o)),
            Some(_) => Self::Not,
        }
    }
}

impl<'a> FromValue<'a> for Signature<'a> {
    fn from_value(v: Option<&'a Value>) -> Self {
        match v {
            Some(Value::String(s)) => Self::Text(Cow::Borrowed(s)),
            Some(Value::Object(o)) => Self::Object(SignatureFields::from_map(o)),
            _ => Self::None,
        }
    }
}

// ---- from JSON text ----

/// An object key, borrowed from the text unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Skips the rest of an array or object that is not what was expected.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Visits any JSON value: `scalar` for the scalars, a map or a sequence handled by the caller.
macro_rules! scalar_visits {
    ($out:ty, $absent:expr, |$s:ident: Scalar| $scalar:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
            Ok($absent)
        }
        fn visit_none<E: de::Error>(self) -> Result<$out, E> {
            Ok($absent)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<$out, E> {
            let $s = Scalar::Bool(b);
            Ok($scalar)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<$out, E> {
            let $s = Scalar::Num(n.into());
            Ok($scalar)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<$out, E> {
            let $s = Scalar::Num(n.into());
            Ok($scalar)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<$out, E> {
            // As a `Value` reads it: a number that is no finite float is `null`.
            let $s = Number::from_f64(n).map_or(Scalar::Absent, Scalar::Num);
            Ok($scalar)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<$out, E> {
            let $s = Scalar::Str(Cow::Borrowed(v));
            Ok($scalar)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<$out, E> {
            let $s = Scalar::Str(Cow::Owned(v.to_string()));
            Ok($scalar)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<$out, E> {
            let $s = Scalar::Str(Cow::Owned(v));
            Ok($scalar)
        }
    };
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(Scalar<'de>, Scalar::Absent, |s: Scalar| s);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
                skip_seq(seq).map(|()| Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
                skip_map(map).map(|()| Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(List<T>, List::Absent, |_s: Scalar| List::NotArray);
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                skip_map(map).map(|()| List::NotArray)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Reads the entries of an object into `T`.
fn fields<'de, T: RawFields<'de>, A: MapAccess<'de>>(mut map: A) -> Result<T, A::Error> {
    let mut out = T::default();
    while let Some(Key(key)) = map.next_key()? {
        out.set(&key, &mut map)?;
    }
    Ok(out)
}

impl<'de, T: RawFields<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: RawFields<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalar_visits!(Obj<T>, Obj::Not, |_s: Scalar| Obj::Not);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Obj<T>, A::Error> {
        skip_seq(seq).map(|()| Obj::Not)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
        fields(map).map(Obj::Is)
    }
}

impl<'de, T: RawFields<'de>> Deserialize<'de> for OptObj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: RawFields<'de>> Visitor<'de> for V<T> {
            type Value = OptObj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(OptObj<T>, OptObj::Absent, |_s: Scalar| OptObj::Not);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OptObj<T>, A::Error> {
                skip_seq(seq).map(|()| OptObj::Not)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OptObj<T>, A::Error> {
                fields(map).map(OptObj::Is)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Signature<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signature<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalar_visits!(Signature<'de>, Signature::None, |s: Scalar| match s {
                Scalar::Str(t) => Signature::Text(t),
                _ => Signature::None,
            });
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Signature<'de>, A::Error> {
                skip_seq(seq).map(|()| Signature::None)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Signature<'de>, A::Error> {
                fields(map).map(Signature::Object)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::tests::receipt;
    use serde_json::json;

    /// Reading the text and reading the `Value` give the same receipt.
    fn same_both_ways(v: &Value) {
        let text = serde_json::to_vec(&json!([v, v])).unwrap();
        let page = page_from_text(&text).expect("an array");
        assert_eq!(page[0], receipt_from_value(v), "{v}");
    }

    #[test]
    fn text_and_value_read_the_same() {
        same_both_ways(&receipt());
        let odd = json!({
            "_id": 17, "receiptNumber": null, "cashRegisterId": "2", "type": ["x"],
            "created": {"a": 1}, "price": "12,80", "voucher": true, "paymentMethod": 3.5,
            "cancellation": "2-1", "items": [1, null, {"priceAll": "x", "amount": [1], "nameLong": "a\"b\\u00e9"}],
            "vatSums": {"vat": 10}, "signature": ["s"], "attachmentUrls": "u",
            "unknown": {"deep": [1, {"x": 2}]}, "price": -1e-7
        });
        same_both_ways(&odd);
        same_both_ways(
            &json!({"cancellation": [], "vatSums": null, "signature": {"qrCode": 5},
            "attachmentUrls": ["a", 1, null]}),
        );
        same_both_ways(&json!({"signature": "  ", "items": null}));
        same_both_ways(&json!(7));
    }

    #[test]
    fn the_last_of_repeated_keys_wins_as_in_a_value() {
        let text = br#"[{"price": 1, "price": "2.50"}]"#;
        let v: Value = serde_json::from_slice(text).unwrap();
        let page = page_from_text(text).unwrap();
        assert_eq!(page[0], receipt_from_value(&v[0]));
        assert!(page_from_text(b"{\"error\": true}").is_none());
    }
}
