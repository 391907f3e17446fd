//! Bitwise operations on signed integers (shifts are arithmetic) and sizes of binaries.

use super::{bad, integer, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function { name: "bitnot", min_args: 1, max_args: 1, call: |a| Ok(Value::Int(!integer("bitnot", &a[0])?)) },
    Function {
        name: "bitand",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Int(integer("bitand", &a[0])? & integer("bitand", &a[1])?)),
    },
    Function {
        name: "bitor",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Int(integer("bitor", &a[0])? | integer("bitor", &a[1])?)),
    },
    Function {
        name: "bitxor",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Int(integer("bitxor", &a[0])? ^ integer("bitxor", &a[1])?)),
    },
    Function { name: "bitsl", min_args: 2, max_args: 2, call: bitsl },
    Function {
        name: "bitsr",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Int(integer("bitsr", &a[0])? >> integer("bitsr", &a[1])?.clamp(0, 63))),
    },
    Function {
        name: "bitsize",
        min_args: 1,
        max_args: 1,
        call: |a| a[0].as_bytes().map(|b| Value::Int(b.len() as i64 * 8)).ok_or_else(|| bad("bitsize", &a[0])),
    },
    Function {
        name: "bytesize",
        min_args: 1,
        max_args: 1,
        call: |a| a[0].as_bytes().map(|b| Value::Int(b.len() as i64)).ok_or_else(|| bad("bytesize", &a[0])),
    },
    Function { name: "subbits", min_args: 2, max_args: 6, call: subbits },
];

/// Left shift; a result that does not fit 64 bits is an overflow (EMQX would grow a bignum).
fn bitsl(a: &[Value]) -> Result<Value, EvalError> {
    let x = integer("bitsl", &a[0])?;
    let n = integer("bitsl", &a[1])?;
    let n = u32::try_from(n).map_err(|_| bad("bitsl", &a[1]))?;
    let shifted = x.checked_shl(n).ok_or(EvalError::Overflow)?;
    if shifted >> n != x {
        return Err(EvalError::Overflow);
    }
    Ok(Value::Int(shifted))
}

/// `subbits(bin, len)`, `subbits(bin, start, len)` (1-based bit offset; unsigned big-endian
/// integer), or `subbits(bin, start, len, 'integer'|'float'|'bits', 'signed'|'unsigned',
/// 'big'|'little')`. Reading past the end takes the bits that remain; floats are 16 (half
/// precision), 32 or 64 bits; little-endian needs whole bytes.
fn subbits(a: &[Value]) -> Result<Value, EvalError> {
    let data = a[0].as_bytes().ok_or_else(|| bad("subbits", &a[0]))?;
    let (start, len) = match a.len() {
        2 => (1, integer("subbits", &a[1])?),
        _ => (integer("subbits", &a[1])?, integer("subbits", &a[2])?),
    };
    let word = |i: usize, default: &'static str| -> Result<&str, EvalError> {
        a.get(i).map_or(Ok(default), |v| super::text("subbits", v))
    };
    let (kind, sign, order) = (word(3, "integer")?, word(4, "unsigned")?, word(5, "big")?);
    let total = data.len() as i64 * 8;
    if start < 1 || len < 0 {
        return Err(bad("subbits", &a[1]));
    }
    let len = len.min((total - (start - 1)).max(0));
    let bit = |i: i64| (data[(i / 8) as usize] >> (7 - i % 8)) & 1;
    let bits: Vec<u8> = (start - 1..start - 1 + len).map(bit).collect();
    if kind == "bits" {
        let bytes: Vec<u8> =
            bits.chunks(8).map(|c| c.iter().fold(0u8, |acc, b| (acc << 1) | b) << (8 - c.len())).collect();
        return Ok(Value::from_bytes(&bytes));
    }
    if len > 64 {
        return Err(EvalError::BadArgument("subbits(): at most 64 bits for a number".into()));
    }
    let mut raw = bits.iter().fold(0u64, |acc, b| (acc << 1) | u64::from(*b));
    match order {
        "big" => {}
        "little" if len % 8 == 0 => {
            let n = (len / 8) as usize;
            let be = raw.to_be_bytes();
            let mut le = [0u8; 8];
            le[8 - n..].copy_from_slice(&be[8 - n..]);
            le[8 - n..].reverse();
            raw = u64::from_be_bytes(le);
        }
        _ => return Err(bad("subbits", &a[5])),
    }
    match (kind, sign) {
        ("integer", "unsigned") => i64::try_from(raw).map(Value::Int).map_err(|_| EvalError::Overflow),
        ("integer", "signed") => {
            let shift = 64 - len as u32;
            Ok(Value::Int(if len == 0 { 0 } else { ((raw << shift) as i64) >> shift }))
        }
        ("float", _) => match len {
            16 => Ok(Value::Float(half_to_f64(raw as u16))),
            32 => Ok(Value::Float(f64::from(f32::from_bits(raw as u32)))),
            64 => Ok(Value::Float(f64::from_bits(raw))),
            _ => Err(EvalError::BadArgument("subbits(): floats are 16, 32 or 64 bits".into())),
        },
        _ => Err(bad("subbits", &a[3])),
    }
}

/// IEEE 754 half precision to f64.
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    #[test]
    fn bit_operations() {
        assert_eq!(call("bitand", &[Value::Int(-10), Value::Int(-8)]).unwrap(), Value::Int(-16));
        assert_eq!(call("bitor", &[Value::Int(1), Value::Int(2)]).unwrap(), Value::Int(3));
        assert_eq!(call("bitxor", &[Value::Int(3), Value::Int(1)]).unwrap(), Value::Int(2));
        assert_eq!(call("bitnot", &[Value::Int(0)]).unwrap(), Value::Int(-1));
        assert_eq!(call("bitsl", &[Value::Int(1), Value::Int(4)]).unwrap(), Value::Int(16));
        assert_eq!(call("bitsr", &[Value::Int(-16), Value::Int(2)]).unwrap(), Value::Int(-4), "arithmetic shift");
        assert!(call("bitsl", &[Value::Int(i64::MAX), Value::Int(1)]).is_err());
        assert_eq!(call("bitsize", &[Value::Str("你好".into())]).unwrap(), Value::Int(48));
        assert_eq!(call("bytesize", &[Value::Str("abc".into())]).unwrap(), Value::Int(3));
    }

    #[test]
    fn subbits_as_documented() {
        let s = |x: &str| Value::Str(x.into());
        let bin = call("hexstr2bin", &[s("9F4E58")]).unwrap();
        let signed = [bin.clone(), Value::Int(1), Value::Int(16), s("integer"), s("signed"), s("big")];
        assert_eq!(call("subbits", &signed).unwrap(), Value::Int(-24754));
        assert_eq!(call("subbits", &[bin.clone(), Value::Int(8)]).unwrap(), Value::Int(0x9F));
        assert_eq!(call("subbits", &[bin.clone(), Value::Int(9), Value::Int(8)]).unwrap(), Value::Int(0x4E));
        let little = [bin.clone(), Value::Int(1), Value::Int(16), s("integer"), s("unsigned"), s("little")];
        assert_eq!(call("subbits", &little).unwrap(), Value::Int(0x4E9F));
        assert_eq!(
            call("subbits", &[bin.clone(), Value::Int(17), Value::Int(16)]).unwrap(),
            Value::Int(0x58),
            "past the end"
        );
        let half = call("hexstr2bin", &[s("3C00")]).unwrap();
        let float = [half, Value::Int(1), Value::Int(16), s("float"), s("unsigned"), s("big")];
        assert_eq!(call("subbits", &float).unwrap(), Value::Float(1.0));
    }
}
