//! Conversions between kinds: `str`, `int`, `float`, `bool`, `map`, hex, JSON.

use super::{bad, integer, number, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function { name: "str", min_args: 1, max_args: 1, call: |a| Ok(Value::Str(a[0].to_text()?)) },
    Function { name: "str_utf8", min_args: 1, max_args: 1, call: |a| Ok(Value::Str(a[0].to_text()?)) },
    Function { name: "bool", min_args: 1, max_args: 1, call: to_bool },
    Function { name: "int", min_args: 1, max_args: 1, call: to_int },
    Function { name: "float", min_args: 1, max_args: 2, call: to_float },
    Function { name: "float2str", min_args: 2, max_args: 2, call: float2str },
    Function { name: "map", min_args: 1, max_args: 1, call: to_map },
    Function { name: "json_encode", min_args: 1, max_args: 1, call: |a| Ok(Value::Str(a[0].to_json()?)) },
    Function { name: "json_decode", min_args: 1, max_args: 1, call: json_decode },
    Function { name: "bin2hexstr", min_args: 1, max_args: 2, call: bin2hexstr },
    Function {
        name: "sqlserver_bin2hexstr",
        min_args: 1,
        max_args: 1,
        call: |a| bytes("sqlserver_bin2hexstr", &a[0]).map(|b| Value::Str(format!("0x{}", hex(b)))),
    },
    Function { name: "hexstr2bin", min_args: 1, max_args: 2, call: hexstr2bin },
];

fn bytes<'a>(name: &str, v: &'a Value) -> Result<&'a [u8], EvalError> {
    v.as_bytes().ok_or_else(|| bad(name, v))
}

/// Upper-case hex, as EMQX's `bin2hexstr`.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// `true`, `false`, `'true'`, `'false'`, `0`, `1`, `0.0`, `1.0`; anything else fails.
fn to_bool(a: &[Value]) -> Result<Value, EvalError> {
    Ok(Value::Bool(match &a[0] {
        Value::Bool(b) => *b,
        Value::Str(s) if s == "true" => true,
        Value::Str(s) if s == "false" => false,
        Value::Int(1) => true,
        Value::Int(0) => false,
        Value::Float(f) if *f == 1.0 => true,
        Value::Float(f) if *f == 0.0 => false,
        other => return Err(bad("bool", other)),
    }))
}

/// Integers stay, floats are floored, text is parsed (`'+200'`, `'1.0'`, `'3.1415e2'` → 314),
/// booleans are 1 and 0.
fn to_int(a: &[Value]) -> Result<Value, EvalError> {
    let floor = |f: f64| {
        if f.is_finite() && f.abs() < 9.2e18 {
            Ok(Value::Int(f.floor() as i64))
        } else {
            Err(bad("int", &Value::Float(f)))
        }
    };
    match &a[0] {
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => floor(*f),
        Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Value::Str(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => s.trim().parse::<f64>().map_err(|_| bad("int", &a[0])).and_then(floor),
        },
        other => Err(bad("int", other)),
    }
}

/// `float(x)`, or `float(x, decimals)` rounded to that many decimals.
fn to_float(a: &[Value]) -> Result<Value, EvalError> {
    let f = match &a[0] {
        Value::Str(s) => s.trim().parse::<f64>().map_err(|_| bad("float", &a[0]))?,
        other => number("float", other)?,
    };
    match a.get(1) {
        None => Ok(Value::Float(f)),
        Some(d) => {
            let decimals = integer("float", d)?;
            if !(0..=253).contains(&decimals) {
                return Err(bad("float", d));
            }
            let rounded: f64 = format!("{f:.*}", decimals as usize).parse().map_err(|_| bad("float", &a[0]))?;
            Ok(Value::Float(rounded))
        }
    }
}

/// Fixed decimals, then trailing zeros dropped: `float2str(20.2, 16)` is `20.1999999999999993`.
fn float2str(a: &[Value]) -> Result<Value, EvalError> {
    let f = number("float2str", &a[0])?;
    let decimals = integer("float2str", &a[1])?;
    if !(0..=253).contains(&decimals) {
        return Err(bad("float2str", &a[1]));
    }
    let mut s = format!("{f:.*}", decimals as usize);
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    Ok(Value::Str(s))
}

/// A map as is, or JSON text that holds an object.
fn to_map(a: &[Value]) -> Result<Value, EvalError> {
    match &a[0] {
        Value::Map(m) => Ok(Value::Map(m.clone())),
        Value::Str(s) => match Value::from_json(s.as_bytes()) {
            Some(m @ Value::Map(_)) => Ok(m),
            _ => Err(bad("map", &a[0])),
        },
        other => Err(bad("map", other)),
    }
}

fn json_decode(a: &[Value]) -> Result<Value, EvalError> {
    Value::from_json(bytes("json_decode", &a[0])?).ok_or(EvalError::DecodeJson)
}

/// Hex text to bytes; an odd number of digits reads as if led by a `0`. With a prefix
/// argument, the text must start with exactly that prefix.
/// Upper-case hex, after the prefix if one is given (EMQX 5.8's `bin2hexstr(Bin, Prefix)`, the
/// inverse of `hexstr2bin(Str, Prefix)`).
fn bin2hexstr(a: &[Value]) -> Result<Value, EvalError> {
    let digits = hex(bytes("bin2hexstr", &a[0])?);
    match a.get(1) {
        Some(prefix) => Ok(Value::Str(format!("{}{digits}", text("bin2hexstr", prefix)?))),
        None => Ok(Value::Str(digits)),
    }
}

fn hexstr2bin(a: &[Value]) -> Result<Value, EvalError> {
    let mut s = text("hexstr2bin", &a[0])?;
    if let Some(prefix) = a.get(1) {
        let prefix = text("hexstr2bin", prefix)?;
        s = s.strip_prefix(prefix).ok_or_else(|| bad("hexstr2bin", &a[0]))?;
    }
    // Bytes, not characters: text that is not all hex digits (`"éa"`) fails here, whole.
    let nibble = |b: u8| char::from(b).to_digit(16).map(|d| d as u8).ok_or_else(|| bad("hexstr2bin", &a[0]));
    let (odd, pairs) = s.as_bytes().split_at(s.len() % 2);
    let mut out = Vec::with_capacity(s.len() / 2 + 1);
    if let [digit] = odd {
        out.push(nibble(*digit)?);
    }
    for pair in pairs.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Ok(Value::from_bytes(&out))
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    #[allow(clippy::approx_constant)] // EMQX's documented examples use these very numbers
    fn examples_of_the_emqx_docs() {
        assert_eq!(call("str", &[Value::Float(3.14159265359)]).unwrap(), s("3.1415926536"));
        assert_eq!(call("str", &[Value::Float(2.0)]).unwrap(), s("2.0"));
        assert_eq!(call("int", &[s("3.1415e2")]).unwrap(), Value::Int(314));
        assert_eq!(call("int", &[s("+200")]).unwrap(), Value::Int(200));
        assert_eq!(call("int", &[s("1.0")]).unwrap(), Value::Int(1));
        assert_eq!(call("int", &[Value::Bool(true)]).unwrap(), Value::Int(1));
        assert_eq!(call("int", &[Value::Float(-1.5)]).unwrap(), Value::Int(-2));
        assert!(call("int", &[s("a")]).is_err());
        assert_eq!(call("float", &[s("3.1415926"), Value::Int(3)]).unwrap(), Value::Float(3.142));
        assert_eq!(call("float2str", &[Value::Float(0.1), Value::Int(20)]).unwrap(), s("0.10000000000000000555"));
        assert_eq!(call("float2str", &[Value::Float(20.2), Value::Int(16)]).unwrap(), s("20.1999999999999993"));
        assert_eq!(call("bool", &[s("true")]).unwrap(), Value::Bool(true));
        assert_eq!(call("bool", &[Value::Float(0.0)]).unwrap(), Value::Bool(false));
        assert!(call("bool", &[Value::Int(3)]).is_err());
    }

    #[test]
    fn hex_and_json() {
        assert_eq!(call("bin2hexstr", &[s("hello")]).unwrap(), s("68656C6C6F"));
        assert_eq!(call("sqlserver_bin2hexstr", &[s("hi")]).unwrap(), s("0x6869"));
        assert_eq!(call("hexstr2bin", &[s("68656c6c6f")]).unwrap(), s("hello"));
        assert_eq!(call("hexstr2bin", &[s("0x41"), s("0x")]).unwrap(), s("A"));
        assert_eq!(call("hexstr2bin", &[s("141")]).unwrap(), s("\u{1}A"), "odd length: a leading 0");
        assert_eq!(call("hexstr2bin", &[s("ff")]).unwrap(), Value::Bin(vec![0xff]));
        assert!(call("hexstr2bin", &[s("0x41"), s("0X")]).is_err(), "the prefix must match exactly");
        assert!(call("hexstr2bin", &[s("éa")]).is_err(), "not hex, and no panic");
        assert!(call("hexstr2bin", &[s("aé")]).is_err());
        assert!(call("hexstr2bin", &[s("+1")]).is_err(), "from_str_radix would take the sign");
        assert_eq!(
            call("json_encode", &[call("json_decode", &[s(r#"{"b":[1,2],"a":null}"#)]).unwrap()]).unwrap(),
            s(r#"{"a":null,"b":[1,2]}"#)
        );
        assert!(call("json_decode", &[s("{")]).is_err());
        assert_eq!(call("map", &[s(r#"{"a":1}"#)]).unwrap(), call("json_decode", &[s(r#"{"a":1}"#)]).unwrap());
        assert!(call("map", &[s("[1]")]).is_err());
    }
}
