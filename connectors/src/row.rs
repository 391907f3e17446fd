//! A row as sinks see it: one JSON object, the rule's output, as read back from the buffer.
//!
//! The row keeps its JSON text. Sinks that read fields by name (templates, SQLite) decode it
//! once, on first use, with [`Row::fields`]; the PostgreSQL table mode reads the top-level
//! fields straight from the text with [`Row::entries_into`], which allocates nothing per row.
//! Decoding every row into a map took a fifth of the process's time in PostgreSQL profiles.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why bytes are not a row.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("JSON but not an object")]
    NotObject,
}

/// One row: a JSON object.
#[derive(Debug, Clone)]
pub struct Row {
    /// The object's text, checked to be JSON when the row was made.
    json: Box<RawValue>,
    /// The fields, decoded on first use.
    fields: OnceLock<Map<String, Value>>,
}

impl Row {
    /// The row whose JSON text is `bytes`, checked to be one JSON object.
    pub fn parse(bytes: Vec<u8>) -> Result<Row, RowError> {
        let json = RawValue::from_string(String::from_utf8(bytes)?)?;
        if !json.get().starts_with('{') {
            return Err(RowError::NotObject);
        }
        Ok(Row { json, fields: OnceLock::new() })
    }

    /// The row's JSON text, as it was written.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// The fields by name, decoded once.
    pub fn fields(&self) -> &Map<String, Value> {
        // The text was checked to be an object, so it decodes.
        self.fields.get_or_init(|| serde_json::from_str(self.json.get()).unwrap_or_default())
    }

    /// The field `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields().get(name)
    }

    /// Appends the top-level fields to `out`, in the order written: each name (borrowed unless
    /// it has escapes) with its value's JSON text, undecoded.
    pub fn entries_into<'r>(&'r self, out: &mut Vec<(Cow<'r, str>, &'r RawValue)>) {
        let mut de = serde_json::Deserializer::from_str(self.json.get());
        // The text was checked to be an object; an error leaves the entries read so far.
        let _ = Entries(out).deserialize(&mut de);
    }
}

impl From<Map<String, Value>> for Row {
    fn from(fields: Map<String, Value>) -> Row {
        // A map with string keys always serializes.
        let json = serde_json::value::to_raw_value(&fields).unwrap_or_default();
        Row { json, fields: OnceLock::from(fields) }
    }
}

impl Default for Row {
    fn default() -> Row {
        Row::from(Map::new())
    }
}

/// Reads an object's entries into a vector (see [`Row::entries_into`]).
struct Entries<'a, 'r>(&'a mut Vec<(Cow<'r, str>, &'r RawValue)>);

impl<'de, 'a> DeserializeSeed<'de> for Entries<'a, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'a> Visitor<'de> for Entries<'a, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(Key(name)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            self.0.push((name, value));
        }
        Ok(())
    }
}

/// A field name, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A field's value as text, from its JSON: a string's content (unescaped), `None` for null, and
/// the JSON text of anything else. Borrowed unless the string has escapes.
pub fn raw_text(value: &RawValue) -> Option<Cow<'_, str>> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'n') => None,
        Some(b'"') if !text.contains('\\') => Some(Cow::Borrowed(&text[1..text.len() - 1])),
        Some(b'"') => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        _ => Some(Cow::Borrowed(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str) -> Row {
        Row::parse(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn rows_are_json_objects() {
        assert!(matches!(Row::parse(b"[1]".to_vec()), Err(RowError::NotObject)));
        assert!(matches!(Row::parse(b"{\"a\":".to_vec()), Err(RowError::Json(_))));
        assert!(matches!(Row::parse(vec![b'"', 0xff, b'"']), Err(RowError::Utf8(_))));
        assert!(matches!(Row::parse(b"{} x".to_vec()), Err(RowError::Json(_))));
        assert_eq!(row(r#"{"a": [1, {"b": null}]}"#).get("a"), Some(&serde_json::json!([1, {"b": null}])));
    }

    #[test]
    fn entries_are_read_from_the_text() {
        let r = row(r#"{"a":"x\ty","b\u0041":1.5,"c":null,"d":{"e":[1,"\\"]},"f":"plain"}"#);
        let mut entries = Vec::new();
        r.entries_into(&mut entries);
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["a", "bA", "c", "d", "f"]);
        assert!(matches!(entries[4].0, Cow::Borrowed(_)) && matches!(entries[1].0, Cow::Owned(_)));
        let texts: Vec<Option<Cow<str>>> = entries.iter().map(|(_, v)| raw_text(v)).collect();
        assert_eq!(
            texts,
            [Some("x\ty".into()), Some("1.5".into()), None, Some(r#"{"e":[1,"\\"]}"#.into()), Some("plain".into())]
        );
        assert!(matches!(texts[4], Some(Cow::Borrowed(_))));
        assert_eq!(r.get("bA"), Some(&serde_json::json!(1.5)));
    }

    #[test]
    fn a_row_from_fields_keeps_them() {
        let r = Row::from(serde_json::json!({"a": 1}).as_object().unwrap().clone());
        assert_eq!(r.json().get(), r#"{"a":1}"#);
        assert_eq!(r.get("a"), Some(&serde_json::json!(1)));
    }
}
