//! The data of one `COPY ... FROM STDIN` for the PostgreSQL table mode, in either format.
//!
//! Binary is tried first: the server then parses no text, which costs it much for some types
//! (floats; docs/BENCHMARKS.md, "Binary `COPY`"). A batch goes in binary
//! only when each column's type has an encoding here and each value converts exactly as the
//! server's own text input would read it; anything else (a `timestamptz` column, `" 42"` or
//! `1e3` for an integer, `"yes"` for a boolean) sends the whole batch as text, so PostgreSQL
//! decides about those values as it always did, and a refused row is explained the same way.

use crate::row::raw_text;

/// A column's type, as far as this module writes its binary form.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Binary {
    Text,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Json,
    Jsonb,
}

impl Binary {
    /// The encoding for a type as `format_type` names it, if there is one here.
    pub fn of(ty: &str) -> Option<Binary> {
        Some(match ty {
            "text" | "character varying" | "character" | "name" => Binary::Text,
            "smallint" => Binary::Int2,
            "integer" => Binary::Int4,
            "bigint" => Binary::Int8,
            "real" => Binary::Float4,
            "double precision" => Binary::Float8,
            "boolean" => Binary::Bool,
            "json" => Binary::Json,
            "jsonb" => Binary::Jsonb,
            _ => return None,
        })
    }

    /// Appends the value whose JSON text is `json` (not null); `None` if it is not one this
    /// encoding takes exactly as the server's text input would.
    fn encode(self, json: &str, out: &mut Vec<u8>) -> Option<()> {
        let text = raw_text(json)?;
        match self {
            Binary::Text | Binary::Json => out.extend_from_slice(text.as_bytes()),
            Binary::Jsonb => {
                // jsonb's binary form: a version byte, then the text.
                out.push(1);
                out.extend_from_slice(text.as_bytes());
            }
            Binary::Int2 => out.extend_from_slice(&text.parse::<i16>().ok()?.to_be_bytes()),
            Binary::Int4 => out.extend_from_slice(&text.parse::<i32>().ok()?.to_be_bytes()),
            Binary::Int8 => out.extend_from_slice(&text.parse::<i64>().ok()?.to_be_bytes()),
            Binary::Float4 => {
                let v = text.parse::<f32>().ok()?;
                as_written(v.is_finite(), v == 0.0, &text)?;
                out.extend_from_slice(&v.to_be_bytes());
            }
            Binary::Float8 => {
                let v = text.parse::<f64>().ok()?;
                as_written(v.is_finite(), v == 0.0, &text)?;
                out.extend_from_slice(&v.to_be_bytes());
            }
            Binary::Bool => match json {
                "true" => out.push(1),
                "false" => out.push(0),
                _ => return None,
            },
        }
        Some(())
    }
}

/// Whether a parsed float is what the server reads from `text`: PostgreSQL refuses values out
/// of range (which Rust reads as infinite, or as zero when too small), and `Infinity` and `NaN`
/// are left to it.
fn as_written(finite: bool, zero: bool, text: &str) -> Option<()> {
    let mantissa_is_zero =
        || text.bytes().take_while(|c| !matches!(c, b'e' | b'E')).all(|c| !c.is_ascii_digit() || c == b'0');
    (finite && (!zero || mantissa_is_zero())).then_some(())
}

/// The binary `COPY` data of `rows` (each the JSON text of one value per column, `None` when
/// missing) for columns of the types `kinds`; `None` if some value is not for binary.
/// `capacity` is the expected size: a batch's data grown from small was copied at each doubling.
pub fn binary<'a>(
    kinds: &[Binary],
    rows: impl Iterator<Item = impl Iterator<Item = Option<&'a str>>>,
    capacity: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    // Signature, flags, header extension length.
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&[0; 8]);
    // PostgreSQL tables have at most 1,600 columns.
    let width = i16::try_from(kinds.len()).ok()?;
    for row in rows {
        out.extend_from_slice(&width.to_be_bytes());
        for (kind, value) in kinds.iter().zip(row) {
            match value.filter(|v| *v != "null") {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(json) => {
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    kind.encode(json, &mut out)?;
                    let len = i32::try_from(out.len() - at - 4).ok()?;
                    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Some(out)
}

/// The text `COPY` data of `rows`: each value as [`raw_text`] reads it, escaped; NULL as `\N`.
/// `capacity` as for [`binary`].
pub fn text<'a>(rows: impl Iterator<Item = impl Iterator<Item = Option<&'a str>>>, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    for row in rows {
        for (i, value) in row.enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            match value.and_then(raw_text) {
                None => out.extend_from_slice(b"\\N"),
                Some(text) => escape(&mut out, text.as_bytes()),
            }
        }
        out.push(b'\n');
    }
    out
}

/// Appends `text` with what `COPY`'s text format treats specially escaped: backslash, tab,
/// newline and carriage return.
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    let mut rest = text;
    while let Some(at) = rest.iter().position(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => b"\\\\",
        });
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Binary, json: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        kind.encode(json, &mut out).map(|_| out)
    }

    #[test]
    fn values_go_binary_only_when_the_server_would_read_them_the_same() {
        assert_eq!(one(Binary::Int8, "42"), Some(42i64.to_be_bytes().to_vec()));
        assert_eq!(one(Binary::Int8, r#""-7""#), Some((-7i64).to_be_bytes().to_vec()));
        assert_eq!(one(Binary::Int2, "40000"), None);
        for not_exact in [r#"" 42""#, "1e3", "1.5", r#""0x10""#] {
            assert_eq!(one(Binary::Int4, not_exact), None, "{not_exact}");
        }
        assert_eq!(one(Binary::Float8, "21.5"), Some(21.5f64.to_be_bytes().to_vec()));
        assert_eq!(one(Binary::Float8, "-0.0e5"), Some((-0.0f64).to_be_bytes().to_vec()));
        for out_of_range in ["1e400", "1e-400", r#""Infinity""#, r#""NaN""#] {
            assert_eq!(one(Binary::Float8, out_of_range), None, "{out_of_range}");
        }
        assert_eq!(one(Binary::Float4, "1e39"), None);
        assert_eq!(one(Binary::Bool, "true"), Some(vec![1]));
        assert_eq!(one(Binary::Bool, r#""yes""#), None);
        assert_eq!(one(Binary::Text, r#""a\tb""#), Some(b"a\tb".to_vec()));
        assert_eq!(one(Binary::Text, "21.5"), Some(b"21.5".to_vec()));
        assert_eq!(one(Binary::Jsonb, r#"{"a":1}"#), Some(b"\x01{\"a\":1}".to_vec()));
    }

    #[test]
    fn a_batch_goes_binary_only_if_all_its_values_do() {
        let kinds = [Binary::Text, Binary::Int8];
        let rows = |rows: &[[Option<&'static str>; 2]]| binary(&kinds, rows.iter().map(|r| r.iter().copied()), 0);
        let data = rows(&[[Some(r#""d1""#), Some("7")], [None, Some("null")]]).unwrap();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(b"\0\x02\0\0\0\x02d1\0\0\0\x08\0\0\0\0\0\0\0\x07");
        want.extend_from_slice(b"\0\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
        assert_eq!(data, want);
        assert!(rows(&[[Some(r#""d1""#), Some("7")], [None, Some(r#"" 7""#)]]).is_none());
    }

    #[test]
    fn text_escapes_what_copy_reads_specially() {
        let rows = [[Some(r#""a\tb\\c\nd""#), None, Some("null"), Some("7")]];
        assert_eq!(text(rows.iter().map(|r| r.iter().copied()), 0), b"a\\tb\\\\c\\nd\t\\N\t\\N\t7\n");
    }
}
