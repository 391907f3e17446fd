//! A row as sinks see it: one JSON object, the rule's output.
//!
//! - [`RowBatch`] (`batch`): rows as they travel, JSON texts back to back in one buffer. The
//!   rules write their output into one, the sink buffer stores and reads back one, and the
//!   delivery driver turns one into [`Row`]s.
//! - [`Row`]: one row, read. It keeps its JSON text, checked once by [`scan::scan_object`],
//!   which also finds where each top-level field is. Templates, which read fields by name,
//!   decode the text once, on first use ([`Row::fields`]); the table modes of the SQL sinks
//!   read the top-level fields straight from the text ([`Row::entries`]), allocating nothing
//!   per row. The rows of one batch share one text ([`Row::parse_all`]).

mod batch;
pub mod scan;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use smallvec::SmallVec;

pub use batch::RowBatch;
use scan::scan_object;

/// Why bytes are not a row.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// The bytes are not UTF-8 text.
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    /// The text is not JSON; the offset of the first byte that does not fit.
    #[error("not JSON: unexpected byte at offset {0}")]
    Json(usize),
    /// JSON, but an array, a string or a number rather than an object.
    #[error("JSON but not an object")]
    NotObject,
    /// Longer than the 32-bit offsets a row keeps its fields by.
    #[error("{0} bytes: rows are limited to 4 GiB")]
    TooLarge(usize),
}

/// One row: a JSON object.
#[derive(Debug, Clone)]
pub struct Row {
    /// The text the row is in: the rows read from the buffer together share theirs, rather than
    /// each being allocated, copied and freed on its own.
    text: Arc<String>,
    /// Where the object is in `text`; checked to be JSON when the row was made.
    span: Range<usize>,
    /// The fields, decoded on first use.
    fields: OnceLock<Map<String, Value>>,
    /// Where each top-level field is in `json`, found by the scan that checked the text. Rows
    /// mostly have a few fields: kept inline, they cost no allocation of their own.
    entries: Entries,
}

impl Row {
    /// The row whose JSON text is `bytes`, checked to be one JSON object.
    pub fn parse(bytes: Vec<u8>) -> Result<Row, RowError> {
        let text = Arc::new(String::from_utf8(bytes)?);
        let span = 0..text.len();
        Row::of(text, span)
    }

    /// The rows of `batch`, each checked as [`Row::parse`] checks one and handed to `each` in
    /// order. The rows share one copy of the batch's text.
    pub fn parse_all(batch: RowBatch, mut each: impl FnMut(Result<Row, RowError>)) {
        let (data, ends) = batch.into_parts();
        let starts = std::iter::once(0).chain(ends.iter().copied());
        let spans = starts.zip(ends.iter().copied()).map(|(start, end)| start..end);
        match String::from_utf8(data) {
            Ok(text) => {
                let text = Arc::new(text);
                for span in spans {
                    // A row cut inside a character is not UTF-8 on its own: its own check says so.
                    match text.is_char_boundary(span.start) && text.is_char_boundary(span.end) {
                        true => each(Row::of(text.clone(), span)),
                        false => each(Row::parse(text.as_bytes()[span].to_vec())),
                    }
                }
            }
            // Some row is not UTF-8: each is checked on its own.
            Err(e) => {
                let data = e.into_bytes();
                spans.for_each(|span| each(Row::parse(data[span].to_vec())));
            }
        }
    }

    /// The row at `span` of `text`, which falls on character boundaries.
    fn of(text: Arc<String>, span: Range<usize>) -> Result<Row, RowError> {
        let json = &text[span.clone()];
        if json.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() != Some(&b'{') {
            return Err(RowError::NotObject);
        }
        let entries = entries_of(json)?;
        Ok(Row { text, span, fields: OnceLock::new(), entries })
    }

    /// The row's JSON text, as it was written.
    pub fn json(&self) -> &str {
        // `span` was checked to fall on character boundaries when the row was made.
        self.text.get(self.span.clone()).unwrap_or_default()
    }

    /// The fields by name, decoded once.
    pub fn fields(&self) -> &Map<String, Value> {
        // The text was checked to be an object, so it decodes.
        self.fields.get_or_init(|| serde_json::from_str(self.json()).unwrap_or_default())
    }

    /// The field `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields().get(name)
    }

    /// The top-level fields, in the order written: each name (borrowed unless it has escapes)
    /// with its value's JSON text, undecoded.
    pub fn entries(&self) -> impl Iterator<Item = (Cow<'_, str>, &str)> {
        let json = self.json();
        self.entries.iter().map(move |e| {
            // The ranges came from the scan of this text: they fall on character boundaries (a
            // quote, or the first byte of a value).
            let quoted = json.get(e.key[0] as usize..e.key[1] as usize).unwrap_or("\"\"");
            let key = match e.key_escaped {
                false => Cow::Borrowed(quoted.get(1..quoted.len() - 1).unwrap_or_default()),
                true => Cow::Owned(serde_json::from_str::<String>(quoted).unwrap_or_default()),
            };
            (key, json.get(e.value[0] as usize..e.value[1] as usize).unwrap_or_default())
        })
    }
}

/// Where one top-level field is, for [`Row::entries`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Start and end of the quoted name.
    key: [u32; 2],
    /// Start and end of the value's text.
    value: [u32; 2],
    /// Whether the name has escapes to decode (the scan saw them: no second look).
    key_escaped: bool,
}

type Entries = SmallVec<[Entry; 6]>;

/// The top-level fields of `json`, checked to be one JSON object, as [`Row::entries`] keeps them.
fn entries_of(json: &str) -> Result<Entries, RowError> {
    if u32::try_from(json.len()).is_err() {
        return Err(RowError::TooLarge(json.len()));
    }
    let at = |i: usize| i as u32;
    let mut entries = Entries::new();
    scan_object(json.as_bytes(), |key, key_escaped, value| {
        entries.push(Entry { key: [at(key.start), at(key.end)], value: [at(value.start), at(value.end)], key_escaped })
    })
    .map_err(RowError::Json)?;
    Ok(entries)
}

impl From<Map<String, Value>> for Row {
    fn from(fields: Map<String, Value>) -> Row {
        // A map with string keys always serializes.
        let json = serde_json::to_string(&fields).unwrap_or_default();
        // serde_json writes an object, which scans.
        let entries = entries_of(&json).unwrap_or_default();
        let span = 0..json.len();
        Row { text: Arc::new(json), span, fields: OnceLock::from(fields), entries }
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

    /// The rows of `texts`, read back to back as the buffer hands them over.
    fn parse_all(texts: &[&[u8]]) -> Vec<Result<Row, RowError>> {
        let mut rows = Vec::new();
        Row::parse_all(texts.iter().collect(), |r| rows.push(r));
        rows
    }

    #[test]
    fn rows_read_together_share_their_text_and_fail_alone() {
        let rows = parse_all(&[br#"{"a":1}"#, b"[2]", "{\"b\":\"\u{e9}\"}".as_bytes(), br#" {"c":3}"#]);
        let json: Vec<_> = rows.iter().map(|r| r.as_ref().map(Row::json).map_err(ToString::to_string)).collect();
        assert_eq!(json[0], Ok(r#"{"a":1}"#));
        assert!(matches!(rows[1], Err(RowError::NotObject)));
        assert_eq!(json[2], Ok("{\"b\":\"\u{e9}\"}"));
        assert_eq!(json[3], Ok(r#" {"c":3}"#));
        assert_eq!(rows[3].as_ref().unwrap().get("c"), Some(&serde_json::json!(3)));
        // A row that is not UTF-8 fails alone.
        let rows = parse_all(&[br#"{"a":1}"#, b"{\"x\":\"\xff\"}", br#"{"c":3}"#]);
        assert!(rows[0].is_ok() && rows[2].is_ok());
        assert!(matches!(rows[1], Err(RowError::Utf8(_))));
        // A character cut between two rows: the text is UTF-8 as a whole, neither row is.
        let rows = parse_all(&[b"{\"x\":\"\xc3", b"\xa9\"}"]);
        assert!(rows.iter().all(|r| matches!(r, Err(RowError::Utf8(_)))));
    }

    #[test]
    fn entries_are_read_from_the_text() {
        let r = row(r#"{"a":"x\ty","b\u0041":1.5,"c":null,"d":{"e":[1,"\\"]},"f":"plain"}"#);
        let entries: Vec<_> = r.entries().collect();
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
        assert_eq!(
            r.entries().collect::<Vec<_>>(),
            [
                (Cow::Borrowed("a"), "-1.5e3"),
                (Cow::Borrowed("b"), r#"[ 1, {"c": "}]\""} ]"#),
                (Cow::Borrowed("d"), "true"),
                (Cow::Borrowed("e"), "{}")
            ]
        );
        let r = row(r#"{"f\u0041\"": 1, "g": "x\"y"}"#);
        let entries: Vec<_> = r.entries().collect();
        assert_eq!(entries, [(Cow::Owned("fA\"".into()), "1"), (Cow::Borrowed("g"), r#""x\"y""#)]);
        assert!(matches!(entries[1].0, Cow::Borrowed(_)), "a name without escapes is not copied");
        for empty in ["{}", " { } "] {
            let r = row(empty);
            assert_eq!(r.entries().count(), 0, "{empty}");
        }
    }

    #[test]
    fn a_row_from_fields_keeps_them() {
        let r = Row::from(serde_json::json!({"a": 1}).as_object().unwrap().clone());
        assert_eq!(r.json(), r#"{"a":1}"#);
        assert_eq!(r.get("a"), Some(&serde_json::json!(1)));
    }
}
