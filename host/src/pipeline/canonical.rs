//! A record's JSON as keys and fingerprints see it, parsed from its line without building a
//! `serde_json::Value`: strings stay borrowed from the line where they have no escapes, and each
//! object's members are sorted by key (the last of duplicates wins) as they are read. Written
//! back with serde_json it spells exactly what `Value::to_string` spells — compact, keys sorted —
//! so keys and fingerprints hashed from it are the ones stored before (see `keys.rs`).
//!
//! The tree lives in an arena ([`Bump`]) the caller resets after each record: its arrays and
//! objects are slices of the arena and its escaped strings are copied into it, so a record's
//! tree costs no `malloc` and no `free` per node (they were ≈ a tenth of a file pipeline's CPU).
//!
//! Reading one stands in for parsing a `Value` only when it succeeds: anything odd (a line that
//! is not an object, the `RawValue` marker key) is an error, and the caller goes the `Value`
//! way, which gives the old result and the old error.

use std::fmt;

use bumpalo::collections::Vec as BumpVec;
use bumpalo::Bump;
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Number;

/// A JSON value with borrowed strings and sorted object members, in an arena.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Canonical<'a> {
    Null,
    Bool(bool),
    Number(Number),
    /// A string borrowed from the line: it had no escapes there, so it has nothing to escape
    /// when written (JSON strings cannot hold a raw `"` or control character).
    String(&'a str),
    /// A string that had escapes on the line, unescaped into the arena; written escaped again.
    EscapedString(&'a str),
    Array(&'a [Canonical<'a>]),
    /// Members sorted by key, one per key.
    Object(&'a [(&'a str, Canonical<'a>)]),
}

/// The key serde_json's `Value` reads as "a raw value follows": such a line goes the old way.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl<'a> Canonical<'a> {
    /// Reads the object on `line` into `arena`, keeping only the members `keep` names (all when
    /// `None`); the others are checked but not built.
    pub fn object_from_str(
        line: &'a str,
        keep: Option<&[&str]>,
        arena: &'a Bump,
    ) -> Result<Canonical<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(line);
        let value = TopObject { keep, arena }.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }

    /// The member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Canonical<'a>> {
        match self {
            Canonical::Object(members) => members
                .binary_search_by(|(k, _)| (*k).cmp(name))
                .ok()
                .map(|i| &members[i].1),
            _ => None,
        }
    }
}

/// Sorts members by key and keeps the last of each key, as inserting into a `BTreeMap` would.
fn sorted_members<'a>(
    arena: &'a Bump,
    members: BumpVec<'a, (&'a str, Canonical<'a>)>,
) -> &'a [(&'a str, Canonical<'a>)] {
    if members.len() < 2 {
        return members.into_bump_slice();
    }
    SHAPES.with_borrow_mut(|shapes| {
        let order = shapes.order_of(&members);
        arena.alloc_slice_fill_iter(order.iter().map(|&i| members[i as usize].clone()))
    })
}

/// The order a recent object's members were sorted into, by the keys they came in: a stream's
/// records repeat a handful of shapes (a sale, its lines, its payments, …), so most objects are
/// put in order by comparing their keys with a shape's for equality, without sorting. Sorting
/// each object was ≈ 8 % of a file pipeline's CPU.
struct Shapes {
    /// Direct-mapped on a hash of an object's size and first and last keys; a miss replaces.
    slots: Vec<Option<Shape>>,
}

struct Shape {
    /// The keys, in the order they came, end to end: one allocation per shape, so a stream
    /// whose objects rarely repeat a shape pays one copy per miss, not one per key.
    keys: Box<str>,
    /// Where each key ends in `keys`.
    key_ends: Box<[u32]>,
    /// Indices of the members to keep, in key order (the last of duplicates).
    order: Box<[u32]>,
}

impl Shape {
    /// Whether `keys`, in order, are this shape's.
    fn has_keys<'k>(&self, mut keys: impl ExactSizeIterator<Item = &'k str>) -> bool {
        if keys.len() != self.key_ends.len() {
            return false;
        }
        let mut start = 0;
        self.key_ends.iter().all(|&end| {
            let own = &self.keys[start..end as usize];
            start = end as usize;
            keys.next() == Some(own)
        })
    }
}

/// Slots of [`Shapes`]: a sale has fewer than ten shapes of object.
const SHAPE_SLOTS: usize = 64;
/// Objects with more members are sorted every time (and not kept).
const SHAPE_MAX_MEMBERS: usize = 256;
/// Shapes whose keys are longer in all are sorted every time (and not kept): the cache stays
/// under ≈ 64 × 4 KiB a thread.
const SHAPE_MAX_KEY_BYTES: usize = 4096;

thread_local! {
    static SHAPES: std::cell::RefCell<Shapes> = std::cell::RefCell::new(Shapes {
        slots: (0..SHAPE_SLOTS).map(|_| None).collect(),
    });
}

impl Shapes {
    /// Indices of `members` in key order, the last of duplicate keys only.
    fn order_of(&mut self, members: &[(&str, Canonical<'_>)]) -> std::borrow::Cow<'_, [u32]> {
        let keys = || members.iter().map(|(k, _)| *k);
        let n = members.len();
        if n > SHAPE_MAX_MEMBERS {
            return sort_order(members).into();
        }
        let (first, last) = (members[0].0, members[n - 1].0);
        let slot = (xxhash_rust::xxh3::xxh3_64_with_seed(first.as_bytes(), n as u64)
            ^ xxhash_rust::xxh3::xxh3_64(last.as_bytes()).rotate_left(1))
            as usize
            % SHAPE_SLOTS;
        let hit = matches!(&self.slots[slot], Some(shape) if shape.has_keys(keys()));
        if !hit {
            let order = sort_order(members);
            let key_bytes = keys().map(str::len).sum::<usize>();
            if key_bytes > SHAPE_MAX_KEY_BYTES {
                return order.into();
            }
            let mut joined = String::with_capacity(key_bytes);
            let key_ends = keys()
                .map(|k| {
                    joined.push_str(k);
                    joined.len() as u32
                })
                .collect();
            self.slots[slot] = Some(Shape {
                keys: joined.into_boxed_str(),
                key_ends,
                order: order.into(),
            });
        }
        let shape = self.slots[slot].as_ref().expect("filled above");
        (&*shape.order).into()
    }
}

/// Indices of `members` sorted by key, keeping the last of each key.
fn sort_order(members: &[(&str, Canonical<'_>)]) -> Vec<u32> {
    // Reversed first, so that the stable sort puts the last occurrence of a key first.
    let mut order: Vec<u32> = (0..members.len() as u32).rev().collect();
    order.sort_by(|&a, &b| members[a as usize].0.cmp(members[b as usize].0));
    order.dedup_by(|later, earlier| members[*later as usize].0 == members[*earlier as usize].0);
    order
}

/// Any JSON value, read into the arena.
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    arena: &'a Bump,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'de> {
    type Value = Canonical<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'de> {
    type Value = Canonical<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Canonical::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Canonical::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Canonical::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // As `Value` does: a float JSON cannot hold becomes null.
        Ok(Number::from_f64(v).map_or(Canonical::Null, Canonical::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Canonical::String(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Canonical::EscapedString(self.arena.alloc_str(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Canonical::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Canonical::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = BumpVec::with_capacity_in(seq.size_hint().unwrap_or(0), self.arena);
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Canonical::Array(items.into_bump_slice()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        TopObject {
            keep: None,
            arena: self.arena,
        }
        .visit_map(map)
    }
}

/// An object (the top-level one of a record, or any other), keeping the members asked for and
/// skipping the others unbuilt.
struct TopObject<'k, 'a> {
    keep: Option<&'k [&'k str]>,
    arena: &'a Bump,
}

impl<'de> DeserializeSeed<'de> for TopObject<'_, 'de> {
    type Value = Canonical<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopObject<'_, 'de> {
    type Value = Canonical<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let arena = self.arena;
        let mut members = BumpVec::new_in(arena);
        while let Some(k) = map.next_key_seed(KeySeed { arena })? {
            if k == RAW_VALUE_TOKEN {
                return Err(de::Error::custom("a raw value marker"));
            }
            if self.keep.is_none_or(|keep| keep.contains(&k)) {
                members.push((k, map.next_value_seed(ValueSeed { arena })?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Canonical::Object(sorted_members(arena, members)))
    }
}

/// An object key, borrowed from the line when it has no escapes, else copied into the arena.
struct KeySeed<'a> {
    arena: &'a Bump,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'de> {
    type Value = &'de str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'de> {
    type Value = &'de str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v)
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.arena.alloc_str(v))
    }
}

impl Canonical<'_> {
    /// Appends the value's JSON to `out`, compact with sorted keys: the bytes serde_json writes
    /// for the `Value` this stands for, without a serializer call per token.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Canonical::Null => out.extend_from_slice(b"null"),
            Canonical::Bool(true) => out.extend_from_slice(b"true"),
            Canonical::Bool(false) => out.extend_from_slice(b"false"),
            Canonical::Number(n) => write_with_serde_json(out, n),
            Canonical::String(s) => {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            }
            Canonical::EscapedString(s) => write_str(out, s),
            Canonical::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Canonical::Object(members) => {
                out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, k);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// A JSON string: as it is when nothing in it needs escaping (nearly always), else escaped the
/// way serde_json escapes.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_with_serde_json(out, s);
    }
}

fn write_with_serde_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing a string or a number into a Vec cannot fail.
    let _ = serde_json::to_writer(out, v);
}

/// Typed number methods as serde_json's `&Value` has them: a number, else the wrong type.
macro_rules! number_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self {
                Canonical::Number(n) => n.deserialize_any(visitor),
                _ => Err(self.invalid_type(&visitor)),
            }
        }
    )*};
}

/// A typed record (a `Sale`) read from the tree rather than from the line again: the same
/// calls serde_json's `&Value` deserializer makes, so the same values and the same failures
/// (whose messages, though, the caller takes from the `Value` way).
impl<'de> Deserializer<'de> for &'de Canonical<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Null => visitor.visit_unit(),
            Canonical::Bool(b) => visitor.visit_bool(*b),
            Canonical::Number(n) => n.deserialize_any(visitor),
            Canonical::String(s) | Canonical::EscapedString(s) => visitor.visit_borrowed_str(s),
            Canonical::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Canonical::Object(members) => {
                let mut map = MapDeserializer::new(members.iter().map(|(k, v)| (*k, v)));
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name == RAW_VALUE_TOKEN {
            // A `RawValue` field: the `Value` way knows how.
            return Err(de::Error::custom("a raw value"));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            // A unit variant, by name; a variant with content goes the `Value` way.
            Canonical::String(s) | Canonical::EscapedString(s) => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::<Self::Error>::new(s))
            }
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::String(s) | Canonical::EscapedString(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::String(_) | Canonical::EscapedString(_) | Canonical::Array(_) => {
                self.deserialize_any(visitor)
            }
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Array(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Object(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self {
            Canonical::Array(_) | Canonical::Object(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    number_methods! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for &'de Canonical<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl Canonical<'_> {
    fn invalid_type(&self, expected: &dyn de::Expected) -> serde_json::Error {
        de::Error::invalid_type(self.unexpected(), expected)
    }

    /// What the value is, for an error.
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Canonical::Null => de::Unexpected::Unit,
            Canonical::Bool(b) => de::Unexpected::Bool(*b),
            Canonical::Number(_) => de::Unexpected::Other("number"),
            Canonical::String(s) | Canonical::EscapedString(s) => de::Unexpected::Str(s),
            Canonical::Array(_) => de::Unexpected::Seq,
            Canonical::Object(_) => de::Unexpected::Map,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn written(c: &Canonical) -> String {
        let mut out = Vec::new();
        c.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// What `Value` makes of `line`, and what `Canonical` makes of it, written out.
    fn both(line: &str) -> (String, String) {
        let value: Value = serde_json::from_str(line).unwrap();
        let arena = Bump::new();
        let canonical = Canonical::object_from_str(line, None, &arena).unwrap();
        (value.to_string(), written(&canonical))
    }

    #[test]
    fn spells_what_value_spells() {
        for line in [
            r#"{"b":1,"a":"x","c":[],"d":{}}"#,
            r#"{ "z" : { "y": [1, -2, 3.5, 1e3, 18446744073709551615, 1.5e300] , "x": null }, "a": true }"#,
            r#"{"s":"caf\u00e9 \"q\" \/ \n tab\t","k\u0031":"escaped key","\u00e9":"é"}"#,
            r#"{"dup":1,"other":2,"dup":3,"dup":{"n":[{"b":1,"a":2,"b":3}]}}"#,
            r#"{"lines":[{"product_id":"P1","name":"Brötchen","gross":"4.18"}],"big":-9223372036854775808}"#,
            r#"{"f":0.1,"g":-0.0,"h":123456789012345678901234567890}"#,
            "{\"ctl\":\"a\\u0001b\\u001fc\\u007f\\u2028\",\"emoji\":\"\\ud83d\\ude00 😀\"}",
        ] {
            let (value, canonical) = both(line);
            assert_eq!(canonical, value, "{line}");
        }
    }

    /// Objects sorted by a remembered shape come out as sorting them would: shapes that share
    /// their size and first and last keys (one slot) but differ between, duplicates, and each
    /// shape seen again after others replaced it.
    #[test]
    fn a_remembered_shape_sorts_as_sorting_does() {
        let lines = [
            r#"{"z":1,"m":2,"a":3}"#,
            r#"{"z":1,"n":2,"a":3}"#,
            r#"{"z":1,"z":2,"a":3}"#,
            r#"{"z":1,"a":2,"a":3}"#,
            r#"{"b":[{"y":1,"x":2},{"y":3,"x":4},{"x":5,"y":6}],"a":{"y":1,"x":2}}"#,
            r#"{"k\u0031":1,"k1":2,"a":0}"#,
            // The same bytes end to end, cut apart elsewhere.
            r#"{"x":0,"ab":1,"c":2,"y":3}"#,
            r#"{"x":0,"a":1,"bc":2,"y":3}"#,
        ];
        for _ in 0..3 {
            for line in lines {
                let (value, canonical) = both(line);
                assert_eq!(canonical, value, "{line}");
            }
        }
        // More shapes than slots, then the first ones again.
        let many: Vec<String> = (0..3 * SHAPE_SLOTS)
            .map(|i| format!(r#"{{"k{i}":1,"j{i}":2,"a":3}}"#))
            .collect();
        for line in many.iter().chain(many.iter().take(10)) {
            let (value, canonical) = both(line);
            assert_eq!(canonical, value, "{line}");
        }
    }

    #[test]
    fn keeps_only_the_members_asked_for() {
        let line = r#"{"id":"s1","fiscal":{"sig":"x"},"totals":{"net":"1"},"id2":[1,2]}"#;
        let arena = Bump::new();
        let kept = Canonical::object_from_str(line, Some(&["id", "totals"]), &arena).unwrap();
        assert_eq!(written(&kept), r#"{"id":"s1","totals":{"net":"1"}}"#);
        assert_eq!(kept.get("id"), Some(&Canonical::String("s1")));
        assert_eq!(kept.get("fiscal"), None);
    }

    #[test]
    fn what_value_reads_otherwise_is_an_error() {
        for line in [
            "[1,2]",
            "\"text\"",
            r#"{"a":1} trailing"#,
            r#"{"a":{"$serde_json::private::RawValue":"1"}}"#,
            r#"{"a":1,"skipped":[1,}"#,
        ] {
            let arena = Bump::new();
            assert!(
                Canonical::object_from_str(line, Some(&["a"]), &arena).is_err(),
                "{line}"
            );
        }
    }
}
