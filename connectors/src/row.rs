//! A row as sinks see it: one JSON object, the rule's output, as read back from the buffer.
//!
//! The row keeps its JSON text, checked once when the row is made. Templates, which read fields
//! by name, decode it once, on first use, with [`Row::fields`]; the table modes of the SQL sinks
//! read the top-level fields straight from the text with [`Row::entries_into`], which allocates
//! nothing per row. Decoding every row into a map took a fifth of the process's time in
//! PostgreSQL profiles, and parsing it a second time for its fields another 7%.

use std::borrow::Cow;
use std::sync::OnceLock;

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
    pub fn entries_into<'r>(&'r self, out: &mut Vec<(Cow<'r, str>, &'r str)>) {
        // The text was checked to be a JSON object when the row was made, so finding where each
        // name and value ends is enough; `None` (which cannot happen) ends the scan.
        let json = self.json.get();
        let b = json.as_bytes();
        let mut scan = || -> Option<()> {
            let mut i = skip_ws(b, 1);
            while b.get(i) == Some(&b'"') {
                let key_end = string_end(b, i)?;
                let quoted = json.get(i..key_end)?;
                let key = match quoted.contains('\\') {
                    false => Cow::Borrowed(quoted.get(1..quoted.len() - 1)?),
                    true => Cow::Owned(serde_json::from_str::<String>(quoted).ok()?),
                };
                i = skip_ws(b, key_end);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                let value_end = value_end(b, i)?;
                out.push((key, json.get(i..value_end)?));
                i = skip_ws(b, value_end);
                if b.get(i) != Some(&b',') {
                    break;
                }
                i = skip_ws(b, i + 1);
            }
            Some(())
        };
        let _ = scan();
    }
}

/// The first index at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Where the string starting with the quote at `start` ends (just past its closing quote).
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Where the value starting at `start` ends: past a string or a nested object or array, or at
/// the delimiter after a number or a literal.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let (mut depth, mut i) = (0usize, start);
            loop {
                match b.get(i)? {
                    b'"' => i = string_end(b, i)?,
                    b'{' | b'[' => {
                        depth += 1;
                        i += 1;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => i += 1,
                }
            }
        }
        _ => {
            let len = b[start..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(start + len.unwrap_or(b.len() - start))
        }
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

/// A field's value as text, from its JSON text: a string's content (unescaped), `None` for null,
/// and the JSON text of anything else. Borrowed unless the string has escapes.
pub fn raw_text(text: &str) -> Option<Cow<'_, str>> {
    match text.as_bytes().first() {
        Some(b'n') => None,
        Some(b'"') if !text.contains('\\') => text.get(1..text.len().saturating_sub(1)).map(Cow::Borrowed),
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
    fn entries_follow_whitespace_nesting_and_quotes() {
        let r = row(" {\n \"a\" : -1.5e3 , \"b\":[ 1, {\"c\": \"}]\\\"\"} ] ,\"d\" :true,\"e\":{} }\n");
        let mut entries = Vec::new();
        r.entries_into(&mut entries);
        assert_eq!(
            entries,
            [
                (Cow::Borrowed("a"), "-1.5e3"),
                (Cow::Borrowed("b"), r#"[ 1, {"c": "}]\""} ]"#),
                (Cow::Borrowed("d"), "true"),
                (Cow::Borrowed("e"), "{}")
            ]
        );
        for empty in ["{}", " { } "] {
            let r = row(empty);
            let mut none = Vec::new();
            r.entries_into(&mut none);
            assert!(none.is_empty(), "{empty}");
        }
    }

    #[test]
    fn a_row_from_fields_keeps_them() {
        let r = Row::from(serde_json::json!({"a": 1}).as_object().unwrap().clone());
        assert_eq!(r.json().get(), r#"{"a":1}"#);
        assert_eq!(r.get("a"), Some(&serde_json::json!(1)));
    }
}
