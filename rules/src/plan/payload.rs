//! The payload's top-level keys that a rule reads, decoded straight from the JSON text into
//! the variant encoding of their columns ([`variant`]), without building maps or owned strings.

use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::variant;
use crate::value::json::{decode, KeySeed, ALL};
use crate::value::Value;

/// Decodes a JSON object's `keys` straight into variant encodings ([`variant`])
/// in `scratch`, without building maps or owned strings: `cells[i]` is the range that holds
/// key `i`'s value (the last one if the key repeats), `None` if the object lacks it.
pub fn decode_keys(
    bytes: &[u8],
    keys: &[String],
    scratch: &mut Vec<u8>,
    cells: &mut [Option<Range<usize>>],
) -> Decoded {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return decode(bytes, Some(keys)).map_or(Decoded::NotJson, |_| Decoded::NotObject);
    }
    cells.iter_mut().for_each(|c| *c = None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match de.deserialize_map(ObjectCells { keys, scratch, cells }).and_then(|()| de.end()) {
        Ok(()) => Decoded::Object,
        Err(_) => Decoded::NotJson,
    }
}

/// What [`decode_keys`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    Object,
    /// JSON, but not an object: the cells are not filled.
    NotObject,
    NotJson,
}

struct ObjectCells<'a> {
    keys: &'a [String],
    scratch: &'a mut Vec<u8>,
    cells: &'a mut [Option<Range<usize>>],
}

impl<'de> Visitor<'de> for ObjectCells<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.keys.iter().position(|k| *k == *key.as_str()) {
                Some(i) => {
                    let start = self.scratch.len();
                    map.next_value_seed(Cell { out: self.scratch })?;
                    self.cells[i] = Some(start..self.scratch.len());
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One value, encoded as it is read; text never becomes a `String`.
struct Cell<'a> {
    out: &'a mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Cell<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Cell<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        variant::write(&Value::Bool(b), self.out);
        Ok(())
    }

    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        variant::write(&Value::Int(i), self.out);
        Ok(())
    }

    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        variant::write(&i64::try_from(u).map_or(Value::Float(u as f64), Value::Int), self.out);
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        variant::write(&Value::Float(f), self.out);
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        variant::write_str(s, self.out);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        variant::write(&Value::Null, self.out);
        Ok(())
    }

    // Nested lists and objects are rarer: built as values, for their key order and duplicates.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        variant::write(&ALL.visit_seq(seq)?, self.out);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        variant::write(&ALL.visit_map(map)?, self.out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_decode_straight_into_cells() {
        let keys = ["temp".to_string(), "name".to_string(), "gone".to_string(), "n".to_string()];
        let (mut scratch, mut cells) = (Vec::new(), vec![None; 4]);
        let object = br#"{"temp":1,"name":"a\"b","skip":[1],"temp":2.5,"n":{"z":1,"a":null}}"#;
        assert_eq!(decode_keys(object, &keys, &mut scratch, &mut cells), Decoded::Object);
        let value = |i: usize| cells[i].clone().map(|r: Range<usize>| variant::read(&scratch[r]).to_value());
        assert_eq!(value(0), Some(Value::Float(2.5)), "the last of a repeated key wins");
        assert_eq!(value(1), Some(Value::Str("a\"b".into())));
        assert_eq!(value(2), None);
        assert_eq!(value(3).unwrap().to_json().unwrap(), r#"{"a":null,"z":1}"#);
        assert_eq!(decode_keys(b"[1]", &keys, &mut scratch, &mut cells), Decoded::NotObject);
        assert_eq!(decode_keys(br#"{"temp":1,}"#, &keys, &mut scratch, &mut cells), Decoded::NotJson);
    }
}
