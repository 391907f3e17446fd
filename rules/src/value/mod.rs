//! Values as EMQX's rule engine sees them: dynamically typed, with `undefined` (a missing value,
//! not SQL NULL) apart from JSON `null`, and maps ordered by key as Erlang prints them.
//! [`json`] decodes JSON text into values.

pub mod json;

use std::collections::BTreeMap;
use std::fmt::Write;

/// A message's or a row's named values: a column's name → its value.
pub type Columns = BTreeMap<String, Value>;

/// A rule value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A missing column, key or index; `undefined = undefined` is true.
    Undefined,
    /// JSON `null`, a value of its own (`is_null` is false for it).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text; EMQX strings are binaries, and most are UTF-8.
    Str(String),
    /// Bytes that are not UTF-8 (a binary payload, a hash, a compressed buffer).
    Bin(Vec<u8>),
    /// A list of values.
    List(Vec<Value>),
    /// Keys in order, as EMQX emits them (Erlang maps).
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Text or bytes as bytes; `None` for other kinds.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s.as_bytes()),
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// A value from raw bytes: text when they are UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Value {
        match std::str::from_utf8(bytes) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bin(bytes.to_vec()),
        }
    }

    /// Decodes JSON text; `None` if the bytes are not JSON.
    pub fn from_json(bytes: &[u8]) -> Option<Value> {
        json::decode(bytes, None)
    }

    /// Compact JSON, as EMQX's `json_encode` and rule outputs; floats in their shortest form
    /// that reads back exactly. `undefined` becomes `"undefined"`
    /// as EMQX prints the atom; bytes that are not UTF-8 cannot be JSON (EMQX fails too).
    pub fn to_json(&self) -> Result<String, NotJson> {
        let mut out = String::new();
        self.write_json(&mut out)?;
        Ok(out)
    }

    fn write_json(&self, out: &mut String) -> Result<(), NotJson> {
        match self {
            Value::Undefined => out.push_str("\"undefined\""),
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                if !f.is_finite() {
                    return Err(NotJson);
                }
                // The shortest text that reads back as the same number, as EMQX's JSON writes it;
                // `str()`'s 10 decimals would turn 1.5e-12 into 0.0.
                out.push_str(ryu::Buffer::new().format_finite(*f));
            }
            Value::Str(s) => write_json_str(s, out),
            Value::Bin(_) => return Err(NotJson),
            Value::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out)?;
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(k, out);
                    out.push(':');
                    v.write_json(out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }

    /// The text EMQX's `str()` gives (and `+` uses to concatenate): floats with at most 10
    /// decimals and at least one, maps and lists as compact JSON.
    pub fn to_text(&self) -> Result<String, NotJson> {
        Ok(match self {
            Value::Undefined => "undefined".into(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Str(s) => s.clone(),
            Value::Bin(b) => String::from_utf8_lossy(b).into_owned(),
            Value::List(_) | Value::Map(_) => self.to_json()?,
        })
    }
}

/// A value with bytes that are not UTF-8 (or a non-finite float) cannot be written as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the value is not representable as JSON (binary data or a non-finite number)")]
pub struct NotJson;

/// Erlang's `float_to_binary(F, [{decimals, 10}, compact])`: `2.0`, `3.1415926536`, `0.1`.
pub fn format_float(f: f64) -> String {
    let mut s = format!("{f:.10}");
    while s.ends_with('0') && !s.ends_with(".0") {
        s.pop();
    }
    s
}

/// A JSON string literal, escaped as serde_json escapes it.
fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_emqx_does() {
        assert_eq!(format_float(2.0), "2.0");
        // 11 decimals in, 10 out, rounded (the spec's example is pi to 11 decimals).
        assert_eq!(format_float(1.23456789016), "1.2345678902");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(-1.5), "-1.5");
        assert_eq!(format_float(100.0), "100.0");
    }

    #[test]
    fn json_round_trip_keeps_kinds_and_sorts_keys() {
        let v = Value::from_json(br#"{"b":1,"a":[1.5,"x",null,true],"c":{}}"#).unwrap();
        assert_eq!(v.to_json().unwrap(), r#"{"a":[1.5,"x",null,true],"b":1,"c":{}}"#);
        assert!(Value::from_json(b"{nope").is_none());
        assert_eq!(Value::Undefined.to_json().unwrap(), "\"undefined\"");
        assert!(Value::Bin(vec![0xff]).to_json().is_err());
        assert_eq!(Value::Str("a\"b".into()).to_json().unwrap(), r#""a\"b""#);
        let nasty = "q\"b\\n\n\t\u{1}\u{8}\u{c}é";
        assert_eq!(Value::Str(nasty.into()).to_json().unwrap(), serde_json::to_string(nasty).unwrap());
    }

    #[test]
    fn json_keeps_every_digit_of_a_float() {
        for (text, json) in [
            ("1.5e-12", "1.5e-12"),
            ("39.904199899999991", "39.90419989999999"),
            ("0.1", "0.1"),
            ("2.0", "2.0"),
            ("1e300", "1e300"),
            ("-0.0", "-0.0"),
            ("123456789.12345678", "123456789.12345678"),
        ] {
            let v = Value::from_json(text.as_bytes()).unwrap();
            assert_eq!(v.to_json().unwrap(), json, "{text}");
            assert_eq!(Value::from_json(json.as_bytes()), Some(v), "{json} reads back as the same number");
        }
        assert_eq!(Value::Float(1.5e-12).to_text().unwrap(), "0.0", "str() keeps EMQX's 10 decimals");
    }

    #[test]
    fn text_of_values() {
        assert_eq!(Value::Undefined.to_text().unwrap(), "undefined");
        assert_eq!(Value::Float(2.0).to_text().unwrap(), "2.0");
        assert_eq!(Value::List(vec![Value::Int(1)]).to_text().unwrap(), "[1]");
        assert_eq!(Value::from_bytes(&[0xff, 0x00]), Value::Bin(vec![0xff, 0x00]));
    }
}
