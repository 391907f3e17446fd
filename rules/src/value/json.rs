//! Decoding JSON text straight into rule values, without serde_json's own tree in between, and
//! optionally keeping only the top-level keys a rule reads: the other values are still parsed
//! (the payload must be valid JSON as a whole) but never built. The plan's payload columns
//! decode with the same key reader (`KeySeed`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Value;

/// Decodes `bytes`; with `keep`, a top-level object holds only those keys. `None` if the bytes
/// are not one JSON value.
pub fn decode(bytes: &[u8], keep: Option<&[String]>) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = ValueSeed { keep }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// Builds a [`Value`]; `keep` applies to the object at this level only.
pub(crate) struct ValueSeed<'k> {
    keep: Option<&'k [String]>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A seed that keeps every key.
pub(crate) const ALL: ValueSeed<'static> = ValueSeed { keep: None };

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        // Beyond i64, a float, as serde_json's own tree would give.
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(ALL)? {
            items.push(v);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let wanted = self.keep.is_none_or(|keep| keep.iter().any(|k| *k == *key.as_str()));
            if wanted {
                out.insert(key.into_string(), map.next_value_seed(ALL)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Value::Map(out))
    }
}

/// An object key, borrowed from the input when it has no escapes: skipped keys cost nothing.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    fn into_string(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

/// Reads an object key as a [`Key`].
pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_kind() {
        let v = decode(br#"{"b":1,"a":[1.5,"x\n",null,true],"c":{}}"#, None).unwrap();
        assert_eq!(v.to_json().unwrap(), r#"{"a":[1.5,"x\n",null,true],"b":1,"c":{}}"#);
        assert_eq!(decode(b"18446744073709551615", None), Some(Value::Float(18446744073709551615.0)));
    }

    #[test]
    fn keeps_only_the_wanted_top_level_keys() {
        let keep = ["temp".to_string(), "n".to_string()];
        let v = decode(br#"{"temp":31.5,"n":{"a":1,"b":2},"skip":[1,{"temp":2}],"esc\u0061":1}"#, Some(&keep)).unwrap();
        assert_eq!(v.to_json().unwrap(), r#"{"n":{"a":1,"b":2},"temp":31.5}"#);
        // A non-object payload is decoded whole.
        assert_eq!(decode(b"[1,2]", Some(&keep)), Some(Value::List(vec![Value::Int(1), Value::Int(2)])));
    }

    #[test]
    fn rejects_what_is_not_one_json_value() {
        let keep = ["a".to_string()];
        assert_eq!(decode(br#"{"a":1,"b":[1,}"#, Some(&keep)), None, "skipped values must still be valid");
        assert_eq!(decode(br#"{"a":1} x"#, None), None);
        assert_eq!(decode(b"", None), None);
    }
}
