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
}
