//! The JSON grammar that checks a row and finds its top-level fields in one pass
//! ([`scan_object`]), so that a row's fields are read from its text without decoding it.

use std::ops::Range;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Row, RowError};
    use serde_json::{Map, Value};

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
}
