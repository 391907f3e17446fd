//! A row as sinks see it: one JSON object, the rule's output, as read back from the buffer.
//!
//! The row keeps its JSON text, checked once when the row is made by [`scan_object`], a JSON
//! grammar that also reports where each top-level field is. Templates, which read fields by
//! name, decode the text once, on first use, with [`Row::fields`]; the table modes of the SQL
//! sinks read the top-level fields straight from the text with [`Row::entries`], which
//! allocates nothing per row. Decoding every row into a map took a fifth of the process's time
//! in PostgreSQL profiles, and checking it with `serde_json`, then scanning it again for its
//! fields, another tenth. The rows of one read from the buffer share one text
//! ([`Row::parse_all`]) rather than a string each, allocated by the read and freed by the sink:
//! reading, checking and dropping rows went from 23% of the runtime threads' samples to 18%.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};
use smallvec::SmallVec;

/// Why bytes are not a row.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error("not JSON: unexpected byte at offset {0}")]
    Json(usize),
    #[error("JSON but not an object")]
    NotObject,
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

    /// The rows whose JSON texts lie back to back in `data`, each ending at its entry of `ends`,
    /// each checked as [`Row::parse`] checks one and handed to `each` in order. The rows share
    /// one copy of the text.
    pub fn parse_all(data: Vec<u8>, ends: &[usize], mut each: impl FnMut(Result<Row, RowError>)) {
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

/// How deeply arrays and objects may nest, as in `serde_json`: deeper input is refused rather
/// than risking the stack.
const MAX_DEPTH: usize = 128;

/// Checks that `b` is one JSON object (RFC 8259; UTF-8 is the caller's to check) and calls
/// `entry` with each top-level field: the byte range of its quoted name, whether the name has
/// escapes, and the byte range of its value. On error, the offset of the first byte that does
/// not fit.
pub fn scan_object(b: &[u8], mut entry: impl FnMut(Range<usize>, bool, Range<usize>)) -> Result<(), usize> {
    let mut s = Scanner { b, i: 0 };
    s.ws();
    s.object(0, &mut entry)?;
    s.ws();
    match s.i == b.len() {
        true => Ok(()),
        false => Err(s.i),
    }
}

/// The bytes that end a run of plain characters in a JSON string: the closing quote, an escape,
/// and the control characters, which must be escaped.
const STRING_STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut c = 0;
    while c < 256 {
        stops[c] = c < 0x20 || c == b'"' as usize || c == b'\\' as usize;
        c += 1;
    }
    stops
};

/// A cursor over JSON text; each method consumes one piece of the grammar or fails with the
/// offset where it stopped.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), usize> {
        match self.peek() == Some(c) {
            true => {
                self.i += 1;
                Ok(())
            }
            false => Err(self.i),
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), usize> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.object(depth + 1, &mut |_, _, _| {}),
            Some(b'[') => self.array(depth + 1),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn object(&mut self, depth: usize, entry: &mut impl FnMut(Range<usize>, bool, Range<usize>)) -> Result<(), usize> {
        let mut more = self.open(b'{', b'}', depth)?;
        while more {
            let key = self.i;
            if self.peek() != Some(b'"') {
                return Err(self.i);
            }
            let escaped = self.string()?;
            let key = key..self.i;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value = self.i;
            self.value(depth)?;
            entry(key, escaped, value..self.i);
            more = self.next_member(b'}')?;
        }
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), usize> {
        let mut more = self.open(b'[', b']', depth)?;
        while more {
            self.value(depth)?;
            more = self.next_member(b']')?;
        }
        Ok(())
    }

    /// The opening of an object or array; whether it has members (an empty one is consumed
    /// whole).
    fn open(&mut self, open: u8, close: u8, depth: usize) -> Result<bool, usize> {
        if depth >= MAX_DEPTH {
            return Err(self.i);
        }
        self.expect(open)?;
        self.ws();
        let empty = self.peek() == Some(close);
        if empty {
            self.i += 1;
        }
        Ok(!empty)
    }

    /// What follows a member: a comma and another member (true), or the closing bracket.
    fn next_member(&mut self, close: u8) -> Result<bool, usize> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(false)
            }
            _ => Err(self.i),
        }
    }

    /// A string, from its opening quote to past its closing one; whether it has escapes.
    fn string(&mut self) -> Result<bool, usize> {
        self.i += 1;
        let mut escaped = false;
        loop {
            // Most bytes are plain: skip them with one table lookup each.
            let plain = self.b.get(self.i..).unwrap_or_default().iter().position(|&c| STRING_STOPS[c as usize]);
            self.i = plain.map_or(self.b.len(), |n| self.i + n);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            // As `serde_json` decodes: a surrogate must come as a high-low pair.
                            match self.hex4()? {
                                0xd800..=0xdbff => {
                                    self.expect(b'\\')?;
                                    if !(0xdc00..=0xdfff).contains(&self.hex4()?) {
                                        return Err(self.i);
                                    }
                                }
                                0xdc00..=0xdfff => return Err(self.i),
                                _ => {}
                            }
                        }
                        _ => return Err(self.i),
                    }
                }
                _ => return Err(self.i),
            }
        }
    }

    /// `u` and four hex digits, as a code unit.
    fn hex4(&mut self) -> Result<u32, usize> {
        self.expect(b'u')?;
        let digits = self.b.get(self.i..self.i + 4).and_then(|d| std::str::from_utf8(d).ok());
        match digits.filter(|d| d.bytes().all(|c| c.is_ascii_hexdigit())).map(|d| u32::from_str_radix(d, 16)) {
            Some(Ok(unit)) => {
                self.i += 4;
                Ok(unit)
            }
            _ => Err(self.i),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), usize> {
        match self.b[self.i..].starts_with(word) {
            true => {
                self.i += word.len();
                Ok(())
            }
            false => Err(self.i),
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), usize> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.i),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), usize> {
        let start = self.i;
        self.digits();
        match self.i > start {
            true => Ok(()),
            false => Err(self.i),
        }
    }
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
        let (mut data, mut ends) = (Vec::new(), Vec::new());
        for t in texts {
            data.extend_from_slice(t);
            ends.push(data.len());
        }
        let mut rows = Vec::new();
        Row::parse_all(data, &ends, |r| rows.push(r));
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
    fn the_grammar_agrees_with_serde_json() {
        let cases = [
            r#"{}"#,
            r#" { "a" : 1 } "#,
            r#"{"a":-0.5e+10,"b":0,"c":1E5,"d":-12}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":1e}"#,
            r#"{"a":+1}"#,
            r#"{"a":[1,2,]}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":tru}"#,
            r#"{"a":true,"b":false,"c":null,"d":[[],{}]}"#,
            r#"{"a":"\u00e9\n\"\\\/\b\f\r\t"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"é ☃"}"#,
            r#"{"a":1} {}"#,
            r#"{"a":1"#,
            r#"{"a":"#,
            r#"{"#,
            r#"{"a":[1,{"b":"}"}]}"#,
        ];
        for case in cases {
            let ours = scan_object(case.as_bytes(), |_, _, _| {}).is_ok();
            let serde = serde_json::from_str::<Map<String, Value>>(case).is_ok();
            assert_eq!(ours, serde, "{case}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(scan_object(deep.as_bytes(), |_, _, _| {}).is_err());
        assert!(matches!(Row::parse(br#"{"a":01}"#.to_vec()), Err(RowError::Json(6))));
    }

    #[test]
    fn a_row_from_fields_keeps_them() {
        let r = Row::from(serde_json::json!({"a": 1}).as_object().unwrap().clone());
        assert_eq!(r.json(), r#"{"a":1}"#);
        assert_eq!(r.get("a"), Some(&serde_json::json!(1)));
    }
}
