//! The variant column: how EMQX's dynamically typed values travel through DataFusion.
//!
//! Arrow's column types are static, but a rule's `payload.x` may be a number in one message and
//! text in the next, and `undefined` must stay apart from JSON `null`. So every column a rule
//! reads or computes is an Arrow `Binary` column whose cells are values in this encoding: a tag
//! byte, then the value. Scalars are read in place without allocating; nested lists and maps are
//! length-prefixed so that a path can step into them without decoding the rest.
//!
//! A failure is a value too ([`TAG_ERROR`]): a bad argument in one row fails that row only, and
//! a `CASE` branch that is not taken cannot fail the message, as in EMQX.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, Int64Array, StringArray};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;

use crate::value::{NotJson, Value};
use crate::EvalError;

const TAG_UNDEFINED: u8 = 0;
const TAG_NULL: u8 = 1;
const TAG_FALSE: u8 = 2;
const TAG_TRUE: u8 = 3;
const TAG_INT: u8 = 4;
const TAG_FLOAT: u8 = 5;
const TAG_STR: u8 = 6;
const TAG_BIN: u8 = 7;
/// A `u32` count, then each element as a `u32` length and its encoding.
const TAG_LIST: u8 = 8;
/// A `u32` count, then each entry as a `u32` key length, the key, a `u32` length and the value.
const TAG_MAP: u8 = 9;
/// An [`EvalError`]: a kind byte, then its text.
const TAG_ERROR: u8 = 10;

/// A value read in place from its encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ref<'a> {
    Undefined,
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Bin(&'a [u8]),
    /// The encoded elements (count first).
    List(&'a [u8]),
    /// The encoded entries (count first).
    Map(&'a [u8]),
    /// An encoded error (kind first).
    Error(&'a [u8]),
}

/// Reads one encoded value. Bytes this module did not write read as `undefined`.
pub fn read(bytes: &[u8]) -> Ref<'_> {
    let Some((&tag, rest)) = bytes.split_first() else {
        return Ref::Undefined;
    };
    let word = || rest.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok());
    match tag {
        TAG_NULL => Ref::Null,
        TAG_FALSE => Ref::Bool(false),
        TAG_TRUE => Ref::Bool(true),
        TAG_INT => word().map_or(Ref::Undefined, |w| Ref::Int(i64::from_le_bytes(w))),
        TAG_FLOAT => word().map_or(Ref::Undefined, |w| Ref::Float(f64::from_le_bytes(w))),
        // Written from a `String`, so valid UTF-8; checked again rather than trusted.
        TAG_STR => std::str::from_utf8(rest).map_or(Ref::Bin(rest), Ref::Str),
        TAG_BIN => Ref::Bin(rest),
        TAG_LIST => Ref::List(rest),
        TAG_MAP => Ref::Map(rest),
        TAG_ERROR => Ref::Error(rest),
        _ => Ref::Undefined,
    }
}

/// A value as JSON for a sink's row: text escaped as JSON, bytes that are not UTF-8 with
/// replacement characters, non-finite floats as null, a map's `undefined` fields left out, and
/// `undefined` (or an error) in a list as the text `"undefined"`, as EMQX prints it.
pub fn write_json(r: Ref<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    match r {
        Ref::Undefined | Ref::Error(_) => out.extend_from_slice(b"\"undefined\""),
        Ref::Null => out.extend_from_slice(b"null"),
        Ref::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Ref::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Ref::Float(f) => match serde_json::Number::from_f64(f) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.extend_from_slice(b"null"),
        },
        Ref::Str(s) => write_json_str(s, out),
        Ref::Bin(b) => write_json_str(&String::from_utf8_lossy(b), out),
        Ref::List(l) => {
            out.push(b'[');
            for (i, e) in elements(l).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(read(e), out);
            }
            out.push(b']');
        }
        Ref::Map(m) => write_json_object(entries(m).map(|(k, v)| (k, read(v))), out),
    }
}

/// A string as JSON text. Most need no escape: they are copied as they are between quotes,
/// without going through `serde_json`'s formatter.
fn write_json_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A value (a map, for a row) as JSON for a sink; see [`write_json`].
pub fn value_json(v: &Value, out: &mut Vec<u8>) {
    let mut encoded = Vec::new();
    write(v, &mut encoded);
    write_json(read(&encoded), out);
}

/// Fields as a JSON object; `undefined` ones (and errors) are left out, as missing.
pub fn write_json_object<'a>(fields: impl Iterator<Item = (&'a str, Ref<'a>)>, out: &mut Vec<u8>) {
    write_members(fields, out, |k, out| {
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
    });
}

/// [`write_json_object`] for keys quoted once ([`quoted_key`]) and written for many rows.
pub fn write_json_object_quoted<'a>(fields: impl Iterator<Item = (&'a [u8], Ref<'a>)>, out: &mut Vec<u8>) {
    write_members(fields, out, |k, out| out.extend_from_slice(k));
}

/// A key as JSON text with its colon: `"key":`.
pub fn quoted_key(key: &str) -> Vec<u8> {
    let mut quoted = Vec::with_capacity(key.len() + 3);
    let _ = serde_json::to_writer(&mut quoted, key);
    quoted.push(b':');
    quoted
}

fn write_members<'a, K>(
    fields: impl Iterator<Item = (K, Ref<'a>)>,
    out: &mut Vec<u8>,
    write_key: impl Fn(K, &mut Vec<u8>),
) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in fields {
        if matches!(v, Ref::Undefined | Ref::Error(_)) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_key(k, out);
        write_json(v, out);
    }
    out.push(b'}');
}

/// Splits a `u32` length (or count) off the front.
fn take_u32(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*n) as usize, rest))
}

/// Splits a length-prefixed slice off the front.
fn take_sized(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_u32(bytes)?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The elements of an encoded list.
pub fn elements(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (count, mut rest) = take_u32(list).unwrap_or((0, &[]));
    (0..count).map_while(move |_| {
        let (item, after) = take_sized(rest)?;
        rest = after;
        Some(item)
    })
}

/// The entries of an encoded map, in key order.
pub fn entries(map: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    let (count, mut rest) = take_u32(map).unwrap_or((0, &[]));
    (0..count).map_while(move |_| {
        let (key, after) = take_sized(rest)?;
        let (value, after) = take_sized(after)?;
        rest = after;
        Some((std::str::from_utf8(key).ok()?, value))
    })
}

impl Ref<'_> {
    /// The owned value (an error reads as `undefined`; see [`Ref::error`]).
    pub fn to_value(self) -> Value {
        match self {
            Ref::Undefined | Ref::Error(_) => Value::Undefined,
            Ref::Null => Value::Null,
            Ref::Bool(b) => Value::Bool(b),
            Ref::Int(i) => Value::Int(i),
            Ref::Float(f) => Value::Float(f),
            Ref::Str(s) => Value::Str(s.to_string()),
            Ref::Bin(b) => Value::Bin(b.to_vec()),
            Ref::List(l) => Value::List(elements(l).map(|e| read(e).to_value()).collect()),
            Ref::Map(m) => {
                Value::Map(entries(m).map(|(k, v)| (k.to_string(), read(v).to_value())).collect::<BTreeMap<_, _>>())
            }
        }
    }

    /// The error this value carries, if it is one.
    pub fn error(self) -> Option<EvalError> {
        let Ref::Error(bytes) = self else {
            return None;
        };
        let (kind, text) = bytes.split_first().map_or((0, &[][..]), |(k, t)| (*k, t));
        let text = String::from_utf8_lossy(text).into_owned();
        Some(match kind {
            0 => EvalError::DecodeJson,
            1 => EvalError::RangeOnNonList,
            3 => EvalError::DivisionByZero,
            4 => EvalError::Overflow,
            5 => EvalError::NotJson(NotJson),
            6 => EvalError::UnknownFunction(text),
            7 => EvalError::Panicked,
            8 => EvalError::Arity(text),
            9 => function_argument(&text),
            _ => EvalError::BadArgument(text),
        })
    }
}

/// A [`EvalError::FunctionArgument`] from its encoding, `[function, arguments, detail]`.
fn function_argument(text: &str) -> EvalError {
    match serde_json::from_str::<[String; 3]>(text) {
        Ok([function, arguments, detail]) => EvalError::FunctionArgument { function, arguments, detail },
        Err(_) => EvalError::BadArgument(text.to_string()),
    }
}

/// Appends the encoding of `v` to `out`.
pub fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Undefined => out.push(TAG_UNDEFINED),
        Value::Null => out.push(TAG_NULL),
        Value::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        Value::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => write_str(s, out),
        Value::Bin(b) => {
            out.push(TAG_BIN);
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            out.push(TAG_LIST);
            push_u32(items.len(), out);
            for item in items {
                write_sized(out, |out| write(item, out));
            }
        }
        Value::Map(m) => {
            out.push(TAG_MAP);
            push_u32(m.len(), out);
            for (k, item) in m {
                push_u32(k.len(), out);
                out.extend_from_slice(k.as_bytes());
                write_sized(out, |out| write(item, out));
            }
        }
    }
}

/// Appends the encoding of a value read in place.
pub fn write_ref(r: Ref<'_>, out: &mut Vec<u8>) {
    let (tag, rest) = match r {
        Ref::Undefined => (TAG_UNDEFINED, &[][..]),
        Ref::Null => (TAG_NULL, &[][..]),
        Ref::Bool(b) => (if b { TAG_TRUE } else { TAG_FALSE }, &[][..]),
        Ref::Int(i) => return write(&Value::Int(i), out),
        Ref::Float(f) => return write(&Value::Float(f), out),
        Ref::Str(s) => (TAG_STR, s.as_bytes()),
        Ref::Bin(b) => (TAG_BIN, b),
        Ref::List(l) => (TAG_LIST, l),
        Ref::Map(m) => (TAG_MAP, m),
        Ref::Error(e) => (TAG_ERROR, e),
    };
    out.push(tag);
    out.extend_from_slice(rest);
}

/// Appends text, without making a [`Value`] first.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(TAG_STR);
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of an error.
pub fn write_error(e: &EvalError, out: &mut Vec<u8>) {
    out.push(TAG_ERROR);
    let (kind, text) = match e {
        EvalError::DecodeJson => (0, String::new()),
        EvalError::RangeOnNonList => (1, String::new()),
        EvalError::BadArgument(m) => (2, m.clone()),
        EvalError::DivisionByZero => (3, String::new()),
        EvalError::Overflow => (4, String::new()),
        EvalError::NotJson(_) => (5, String::new()),
        EvalError::UnknownFunction(f) => (6, f.clone()),
        EvalError::Panicked => (7, String::new()),
        EvalError::Arity(m) => (8, m.clone()),
        EvalError::FunctionArgument { function, arguments, detail } => {
            (9, serde_json::json!([function, arguments, detail]).to_string())
        }
    };
    out.push(kind);
    out.extend_from_slice(text.as_bytes());
}

fn push_u32(n: usize, out: &mut Vec<u8>) {
    // Lengths come from values already in memory; beyond 4 GiB a rule value is not sensible.
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Writes with `f`, preceded by the length it wrote.
fn write_sized(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    f(out);
    let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The encoding of `v`, as a DataFusion literal.
pub fn scalar(v: &Value) -> ScalarValue {
    let mut out = Vec::new();
    write(v, &mut out);
    ScalarValue::Binary(Some(out))
}

/// The encoding of an error, as a DataFusion literal.
pub fn error_scalar(e: &EvalError) -> ScalarValue {
    let mut out = Vec::new();
    write_error(e, &mut out);
    ScalarValue::Binary(Some(out))
}

/// Builds a variant column row by row.
pub struct Builder {
    column: BinaryBuilder,
    /// Reused for each row's encoding.
    scratch: Vec<u8>,
}

impl Builder {
    pub fn with_capacity(rows: usize) -> Builder {
        Builder { column: BinaryBuilder::with_capacity(rows, rows * 16), scratch: Vec::new() }
    }

    pub fn push(&mut self, v: &Value) {
        self.scratch.clear();
        write(v, &mut self.scratch);
        self.column.append_value(&self.scratch);
    }

    pub fn push_result(&mut self, r: Result<Value, EvalError>) {
        match r {
            Ok(v) => self.push(&v),
            Err(e) => self.push_error(&e),
        }
    }

    pub fn push_error(&mut self, e: &EvalError) {
        self.scratch.clear();
        write_error(e, &mut self.scratch);
        self.column.append_value(&self.scratch);
    }

    /// Appends bytes that are already an encoding (a value passed through).
    pub fn push_encoded(&mut self, bytes: &[u8]) {
        self.column.append_value(bytes);
    }

    /// Appends a value read in place (a value passed through).
    pub fn push_ref(&mut self, r: Ref<'_>) {
        self.scratch.clear();
        write_ref(r, &mut self.scratch);
        self.column.append_value(&self.scratch);
    }

    /// Appends text, copied once.
    pub fn push_str(&mut self, s: &str) {
        // Writing into the builder's value buffer cannot fail; append_value ends the cell.
        let _ = self.column.write_all(&[TAG_STR]);
        self.column.append_value(s.as_bytes());
    }

    pub fn push_bool(&mut self, b: bool) {
        self.column.append_value([if b { TAG_TRUE } else { TAG_FALSE }]);
    }

    pub fn finish(mut self) -> ArrayRef {
        Arc::new(self.column.finish())
    }
}

/// A column as rule values: a variant column, one of the natively typed columns of a publish
/// (integers, text) or a native comparison's booleans, or one literal for every row.
#[derive(Clone, Copy)]
pub enum Cells<'a> {
    Variant(&'a BinaryArray),
    Int(&'a Int64Array),
    Text(&'a StringArray),
    Bool(&'a BooleanArray),
    Constant(Ref<'a>),
}

impl<'a> Cells<'a> {
    /// Reads an array; a type rules never make reads as `undefined`.
    pub fn of_array(a: &'a dyn Array) -> Cells<'a> {
        let any = a.as_any();
        if let Some(b) = any.downcast_ref::<BinaryArray>() {
            Cells::Variant(b)
        } else if let Some(i) = any.downcast_ref::<Int64Array>() {
            Cells::Int(i)
        } else if let Some(t) = any.downcast_ref::<StringArray>() {
            Cells::Text(t)
        } else if let Some(b) = any.downcast_ref::<BooleanArray>() {
            Cells::Bool(b)
        } else {
            Cells::Constant(Ref::Undefined)
        }
    }

    /// Reads a DataFusion argument.
    pub fn of(arg: &'a ColumnarValue) -> Cells<'a> {
        match arg {
            ColumnarValue::Array(a) => Cells::of_array(a.as_ref()),
            ColumnarValue::Scalar(ScalarValue::Binary(Some(b))) => Cells::Constant(read(b)),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(i))) => Cells::Constant(Ref::Int(*i)),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(s))) => Cells::Constant(Ref::Str(s)),
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(b))) => Cells::Constant(Ref::Bool(*b)),
            ColumnarValue::Scalar(_) => Cells::Constant(Ref::Undefined),
        }
    }

    /// The value of `row`; a null cell is `undefined`.
    pub fn read(&self, row: usize) -> Ref<'a> {
        match *self {
            Cells::Variant(a) if a.is_valid(row) => read(a.value(row)),
            Cells::Int(a) if a.is_valid(row) => Ref::Int(a.value(row)),
            Cells::Text(a) if a.is_valid(row) => Ref::Str(a.value(row)),
            Cells::Bool(a) if a.is_valid(row) => Ref::Bool(a.value(row)),
            Cells::Constant(r) => r,
            _ => Ref::Undefined,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_json_objects_without_undefined_fields() {
        let row = Value::Map(BTreeMap::from([
            ("a".to_string(), Value::Int(1)),
            ("gone".to_string(), Value::Undefined),
            ("bin".to_string(), Value::Bin(vec![0xff, b'x'])),
            ("s".to_string(), Value::Str("q\"\n".into())),
            (
                "nested".to_string(),
                Value::List(vec![Value::Float(1.5), Value::Null, Value::Undefined, Value::Float(f64::NAN)]),
            ),
        ]));
        let mut out = Vec::new();
        value_json(&row, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "{\"a\":1,\"bin\":\"\u{fffd}x\",\"nested\":[1.5,null,\"undefined\",null],\"s\":\"q\\\"\\n\"}");
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in ["", "plain", "héllo \u{7f} ✓", "tab\there", "q\"", "back\\slash", "\u{1}"] {
            let mut out = Vec::new();
            write_json_str(s, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn values_round_trip_and_scalars_read_in_place() {
        let json = r#"{"a":[1,2.5,"x",null,true],"b":{"c":"d"},"e":false}"#;
        let v = Value::from_json(json.as_bytes()).unwrap();
        let mut out = Vec::new();
        write(&v, &mut out);
        assert_eq!(read(&out).to_value(), v);
        write(&Value::Undefined, &mut out);
        let mut s = Vec::new();
        write_str("héllo", &mut s);
        assert_eq!(read(&s), Ref::Str("héllo"));
        assert_eq!(read(&[]), Ref::Undefined, "no bytes: undefined, never a panic");
        assert_eq!(read(&[TAG_INT, 1]), Ref::Undefined, "a truncated cell: undefined");
    }

    #[test]
    fn errors_keep_their_kind_and_text() {
        let clause = EvalError::function_argument("upper", "no \"quotes\"".into()).with_arguments(&[Value::Int(1)]);
        for e in [
            EvalError::DecodeJson,
            EvalError::BadArgument("no".into()),
            EvalError::UnknownFunction("f".into()),
            EvalError::Arity("f() takes 1 argument, got 2".into()),
            clause,
        ] {
            let mut out = Vec::new();
            write_error(&e, &mut out);
            assert_eq!(read(&out).error(), Some(e));
        }
    }
}
