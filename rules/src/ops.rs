//! Operators with EMQX's semantics (rule SQL spec, sections 3 and 6): comparisons that coerce
//! numeric strings and treat `undefined` as a value of its own, `+` that concatenates when
//! either side is text, integer `div` and `mod` with the sign of the dividend.

use std::cmp::Ordering;

use crate::ast::BinaryOp;
use crate::value::Value;
use crate::EvalError;

/// `=`, `!=`, `<`, `<=`, `>`, `>=`. Both sides `undefined`: equal. One side `undefined`: every
/// comparison is false, `!=` included. A number against text parses the text, and text that is
/// not a number is an error, not false.
pub fn compare(op: BinaryOp, a: &Value, b: &Value) -> Result<bool, EvalError> {
    let ord = match (a, b) {
        (Value::Undefined, Value::Undefined) => Ordering::Equal,
        (Value::Undefined, _) | (_, Value::Undefined) => return Ok(false),
        _ => order(a, b)?,
    };
    holds(op, ord)
}

/// Whether comparison `op` holds between two values that compare as `ord`.
pub fn holds(op: BinaryOp, ord: Ordering) -> Result<bool, EvalError> {
    Ok(match op {
        BinaryOp::Eq => ord == Ordering::Equal,
        BinaryOp::Ne => ord != Ordering::Equal,
        BinaryOp::Lt => ord == Ordering::Less,
        BinaryOp::Le => ord != Ordering::Greater,
        BinaryOp::Gt => ord == Ordering::Greater,
        BinaryOp::Ge => ord != Ordering::Less,
        other => return Err(EvalError::BadArgument(format!("{other:?} is not a comparison"))),
    })
}

/// Exact equality (`IN` lists, simple `CASE`): like `=` but `1` and `1.0` differ.
pub fn exactly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(_), Value::Float(_)) | (Value::Float(_), Value::Int(_)) => false,
        (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| exactly_equal(p, q)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && exactly_equal(vx, vy))
        }
        _ => match (a.as_bytes(), b.as_bytes()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// Rank of a kind in Erlang's term order: number < atom < map < list < binary.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::Float(_) => 0,
        Value::Undefined | Value::Null | Value::Bool(_) => 1,
        Value::Map(_) => 2,
        Value::List(_) => 3,
        Value::Str(_) | Value::Bin(_) => 4,
    }
}

/// The name of an atom-like value: atoms compare by name in Erlang.
fn atom_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        _ => "undefined",
    }
}

fn order(a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            as_f64(a).partial_cmp(&as_f64(b)).unwrap_or(Ordering::Equal)
        }
        (Value::Int(_) | Value::Float(_), Value::Str(s)) => order(a, &parse_number(s)?)?,
        (Value::Str(s), Value::Int(_) | Value::Float(_)) => order(&parse_number(s)?, b)?,
        (Value::Bool(x), Value::Str(s)) => x.to_string().as_str().cmp(s.as_str()),
        (Value::Str(s), Value::Bool(y)) => s.as_str().cmp(y.to_string().as_str()),
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = order(p, q)?;
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            x.len().cmp(&y.len())
        }
        // Erlang orders maps by size first, then by keys, then by values.
        (Value::Map(x), Value::Map(y)) => {
            let by_size = x.len().cmp(&y.len());
            if by_size != Ordering::Equal {
                return Ok(by_size);
            }
            let by_keys = x.keys().cmp(y.keys());
            if by_keys != Ordering::Equal {
                return Ok(by_keys);
            }
            for (p, q) in x.values().zip(y.values()) {
                let o = order(p, q)?;
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            Ordering::Equal
        }
        _ if rank(a) == 1 && rank(b) == 1 => atom_name(a).cmp(atom_name(b)),
        _ => match (a.as_bytes(), b.as_bytes()) {
            (Some(x), Some(y)) => x.cmp(y),
            _ => rank(a).cmp(&rank(b)),
        },
    })
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

/// Text as a number, the way EMQX compares it: an integer if it parses as one, else a float.
fn parse_number(s: &str) -> Result<Value, EvalError> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Float)
        .ok_or_else(|| EvalError::BadArgument(format!("cannot compare a number with '{s}', which is not a number")))
}

/// `+ - * / div mod`.
pub fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    if op == BinaryOp::Add && (a.as_bytes().is_some() || b.as_bytes().is_some()) {
        return Ok(Value::Str(a.to_text()? + &b.to_text()?));
    }
    let bad = || {
        let detail = format!("{} needs numbers, got {} and {}", op.symbol(), kind(a), kind(b));
        EvalError::function_argument(op.symbol(), detail).with_arguments(&[a.clone(), b.clone()])
    };
    match (op, a, b) {
        (BinaryOp::Add, Value::Int(x), Value::Int(y)) => x.checked_add(*y).map(Value::Int).ok_or(EvalError::Overflow),
        (BinaryOp::Sub, Value::Int(x), Value::Int(y)) => x.checked_sub(*y).map(Value::Int).ok_or(EvalError::Overflow),
        (BinaryOp::Mul, Value::Int(x), Value::Int(y)) => x.checked_mul(*y).map(Value::Int).ok_or(EvalError::Overflow),
        (BinaryOp::IntDiv | BinaryOp::Mod, Value::Int(_), Value::Int(0)) => Err(EvalError::DivisionByZero),
        // Rust's `/` and `%` truncate towards zero, as Erlang's `div` and `rem` do.
        (BinaryOp::IntDiv, Value::Int(x), Value::Int(y)) => {
            x.checked_div(*y).map(Value::Int).ok_or(EvalError::Overflow)
        }
        (BinaryOp::Mod, Value::Int(x), Value::Int(y)) => x.checked_rem(*y).map(Value::Int).ok_or(EvalError::Overflow),
        (BinaryOp::IntDiv | BinaryOp::Mod, _, _) => Err(bad()),
        (_, Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (as_f64(a), as_f64(b));
            match op {
                BinaryOp::Add => Ok(Value::Float(x + y)),
                BinaryOp::Sub => Ok(Value::Float(x - y)),
                BinaryOp::Mul => Ok(Value::Float(x * y)),
                BinaryOp::Div if y == 0.0 => Err(EvalError::DivisionByZero),
                BinaryOp::Div => Ok(Value::Float(x / y)),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// Unary minus.
pub fn negate(v: &Value) -> Result<Value, EvalError> {
    match v {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(EvalError::Overflow),
        Value::Float(f) => Ok(Value::Float(-f)),
        other => Err(EvalError::function_argument("-", format!("cannot negate {}", kind(other)))
            .with_arguments(std::slice::from_ref(other))),
    }
}

/// `NOT x`: true only for `false`; any value that is not a boolean gives false.
pub fn not(v: &Value) -> bool {
    matches!(v, Value::Bool(false))
}

/// An operand of `AND`/`OR`, which must be a boolean.
pub fn truth(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(EvalError::BadArgument(format!("AND/OR need booleans, got {}", kind(other)))),
    }
}

/// A short name of a value's kind, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Undefined => "undefined",
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bin(_) => "binary data",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BinaryOp::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn undefined_is_a_value_of_its_own() {
        assert!(compare(Eq, &Value::Undefined, &Value::Undefined).unwrap());
        assert!(!compare(Gt, &Value::Undefined, &Value::Undefined).unwrap());
        for op in [Eq, Ne, Lt, Le, Gt, Ge] {
            assert!(!compare(op, &Value::Undefined, &Value::Int(1)).unwrap(), "{op:?}");
            assert!(!compare(op, &s("x"), &Value::Undefined).unwrap(), "{op:?}");
        }
    }

    #[test]
    fn numbers_and_numeric_text() {
        assert!(compare(Eq, &Value::Int(1), &Value::Float(1.0)).unwrap());
        assert!(compare(Eq, &s("2"), &Value::Int(2)).unwrap());
        assert!(compare(Eq, &Value::Float(2.0), &s("2.0")).unwrap());
        assert!(compare(Gt, &Value::Int(31), &s("30")).unwrap());
        assert!(matches!(compare(Gt, &s("hello"), &Value::Int(1)), Err(EvalError::BadArgument(_))));
    }

    #[test]
    fn booleans_against_text_compare_as_text() {
        assert!(compare(Eq, &s("true"), &Value::Bool(true)).unwrap());
        assert!(!compare(Eq, &s("yes"), &Value::Bool(true)).unwrap());
    }

    #[test]
    fn erlang_term_order_across_kinds() {
        // number < atom < map < list < string
        let ladder = [Value::Int(5), Value::Bool(true), Value::Map(Default::default()), Value::List(vec![]), s("a")];
        for pair in ladder.windows(2) {
            assert!(compare(Lt, &pair[0], &pair[1]).unwrap(), "{:?} < {:?}", pair[0], pair[1]);
        }
        assert!(compare(Lt, &s("abc"), &s("abd")).unwrap());
        assert!(compare(Eq, &Value::List(vec![Value::Int(1)]), &Value::List(vec![Value::Float(1.0)])).unwrap());
    }

    #[test]
    fn exact_equality_tells_integers_from_floats() {
        assert!(!exactly_equal(&Value::Int(1), &Value::Float(1.0)));
        assert!(exactly_equal(&s("a"), &Value::Bin(b"a".to_vec())));
        assert!(exactly_equal(&Value::Undefined, &Value::Undefined));
    }

    #[test]
    fn plus_concatenates_when_either_side_is_text() {
        assert_eq!(arithmetic(Add, &s("a"), &Value::Int(1)).unwrap(), s("a1"));
        assert_eq!(arithmetic(Add, &Value::Float(2.0), &s("x")).unwrap(), s("2.0x"));
        assert_eq!(arithmetic(Add, &Value::Undefined, &s("x")).unwrap(), s("undefinedx"));
        assert_eq!(arithmetic(Add, &Value::Int(1), &Value::Int(2)).unwrap(), Value::Int(3));
        assert_eq!(arithmetic(Add, &Value::Int(1), &Value::Float(0.5)).unwrap(), Value::Float(1.5));
        assert!(arithmetic(Sub, &s("3"), &Value::Int(1)).is_err(), "only + coerces");
        assert!(arithmetic(Add, &Value::Bool(true), &Value::Int(1)).is_err());
    }

    #[test]
    fn division_and_remainder() {
        assert_eq!(arithmetic(Div, &Value::Int(7), &Value::Int(2)).unwrap(), Value::Float(3.5));
        assert_eq!(arithmetic(IntDiv, &Value::Int(7), &Value::Int(2)).unwrap(), Value::Int(3));
        assert_eq!(arithmetic(IntDiv, &Value::Int(-7), &Value::Int(2)).unwrap(), Value::Int(-3));
        assert_eq!(arithmetic(Mod, &Value::Int(-7), &Value::Int(2)).unwrap(), Value::Int(-1));
        assert_eq!(arithmetic(Mod, &Value::Int(7), &Value::Int(-2)).unwrap(), Value::Int(1));
        assert!(arithmetic(IntDiv, &Value::Float(7.0), &Value::Int(2)).is_err(), "div is for integers");
        assert_eq!(arithmetic(Div, &Value::Int(1), &Value::Int(0)), Err(EvalError::DivisionByZero));
        assert_eq!(arithmetic(Mul, &Value::Int(i64::MAX), &Value::Int(2)), Err(EvalError::Overflow));
    }

    #[test]
    fn logic_operands() {
        assert!(!not(&Value::Int(0)), "NOT of a non-boolean is false");
        assert!(not(&Value::Bool(false)));
        assert!(truth(&Value::Int(1)).is_err());
        assert_eq!(negate(&Value::Int(3)).unwrap(), Value::Int(-3));
    }
}
