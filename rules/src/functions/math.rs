//! Arithmetic helpers and the `math` module's functions. Trigonometry and logarithms return
//! floats; `ceil`, `floor` and `round` return integers (Erlang's BIFs); `abs` takes integers only.

use super::{bad, integer, number, Function};
use crate::value::Value;
use crate::EvalError;

macro_rules! float_fn {
    ($name:literal, $f:expr) => {
        Function { name: $name, min_args: 1, max_args: 1, call: |a| finite($name, $f(number($name, &a[0])?)) }
    };
}

pub(super) const FUNCTIONS: &[Function] = &[
    Function {
        name: "abs",
        min_args: 1,
        max_args: 1,
        call: |a| integer("abs", &a[0])?.checked_abs().map(Value::Int).ok_or(EvalError::Overflow),
    },
    float_fn!("acos", f64::acos),
    float_fn!("acosh", f64::acosh),
    float_fn!("asin", f64::asin),
    float_fn!("asinh", f64::asinh),
    float_fn!("atan", f64::atan),
    float_fn!("atanh", f64::atanh),
    float_fn!("cos", f64::cos),
    float_fn!("cosh", f64::cosh),
    float_fn!("sin", f64::sin),
    float_fn!("sinh", f64::sinh),
    float_fn!("tan", f64::tan),
    float_fn!("tanh", f64::tanh),
    float_fn!("exp", f64::exp),
    float_fn!("sqrt", f64::sqrt),
    float_fn!("log", |x: f64| if x > 0.0 { x.ln() } else { f64::NAN }),
    float_fn!("log10", |x: f64| if x > 0.0 { x.log10() } else { f64::NAN }),
    float_fn!("log2", |x: f64| if x > 0.0 { x.log2() } else { f64::NAN }),
    Function { name: "ceil", min_args: 1, max_args: 1, call: |a| to_integer("ceil", number("ceil", &a[0])?.ceil()) },
    Function {
        name: "floor",
        min_args: 1,
        max_args: 1,
        call: |a| to_integer("floor", number("floor", &a[0])?.floor()),
    },
    // Erlang rounds halves away from zero, as Rust's `round` does.
    Function {
        name: "round",
        min_args: 1,
        max_args: 1,
        call: |a| to_integer("round", number("round", &a[0])?.round()),
    },
    Function {
        name: "fmod",
        min_args: 2,
        max_args: 2,
        call: |a| finite("fmod", number("fmod", &a[0])? % number("fmod", &a[1])?),
    },
    Function {
        name: "power",
        min_args: 2,
        max_args: 2,
        call: |a| finite("power", number("power", &a[0])?.powf(number("power", &a[1])?)),
    },
    Function { name: "random", min_args: 0, max_args: 0, call: |_| Ok(Value::Float(random_unit())) },
    Function {
        name: "div",
        min_args: 2,
        max_args: 2,
        call: |a| crate::ops::arithmetic(crate::ast::BinaryOp::IntDiv, &a[0], &a[1]),
    },
    Function {
        name: "mod",
        min_args: 2,
        max_args: 2,
        call: |a| crate::ops::arithmetic(crate::ast::BinaryOp::Mod, &a[0], &a[1]),
    },
    Function {
        name: "eq",
        min_args: 2,
        max_args: 2,
        call: |a| crate::ops::compare(crate::ast::BinaryOp::Eq, &a[0], &a[1]).map(Value::Bool),
    },
];

/// Math domain errors (`sqrt(-1)`, `log(0)`) fail the rule, as Erlang's `badarith` does.
fn finite(name: &str, f: f64) -> Result<Value, EvalError> {
    if f.is_finite() {
        Ok(Value::Float(f))
    } else {
        Err(EvalError::BadArgument(format!("{name}() is undefined for this argument")))
    }
}

fn to_integer(name: &str, f: f64) -> Result<Value, EvalError> {
    if f.is_finite() && f.abs() < 9.2e18 {
        Ok(Value::Int(f as i64))
    } else {
        Err(bad(name, &Value::Float(f)))
    }
}

/// A number in [0, 1) from the standard library's randomly seeded hasher: good enough for
/// sampling in rules, and no dependency.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    #[test]
    fn examples_of_the_emqx_docs() {
        assert_eq!(call("round", &[Value::Float(4.5)]).unwrap(), Value::Int(5));
        assert_eq!(call("power", &[Value::Int(2), Value::Int(3)]).unwrap(), Value::Float(8.0));
        assert_eq!(call("log2", &[Value::Int(8)]).unwrap(), Value::Float(3.0));
        assert_eq!(call("fmod", &[Value::Float(6.5), Value::Float(2.5)]).unwrap(), Value::Float(1.5));
        assert_eq!(call("ceil", &[Value::Float(1.2)]).unwrap(), Value::Int(2));
        assert_eq!(call("floor", &[Value::Float(-1.2)]).unwrap(), Value::Int(-2));
        assert_eq!(call("abs", &[Value::Int(-3)]).unwrap(), Value::Int(3));
        assert!(call("abs", &[Value::Float(-1.2)]).is_err(), "abs takes integers, as in EMQX");
        assert!(call("sqrt", &[Value::Int(-1)]).is_err());
        assert!(call("log", &[Value::Int(0)]).is_err());
        assert_eq!(call("div", &[Value::Int(7), Value::Int(2)]).unwrap(), Value::Int(3));
        assert_eq!(call("mod", &[Value::Int(3), Value::Int(2)]).unwrap(), Value::Int(1));
        assert_eq!(call("eq", &[Value::Int(1), Value::Float(1.0)]).unwrap(), Value::Bool(true));
        let Value::Float(r) = call("random", &[]).unwrap() else { panic!() };
        assert!((0.0..1.0).contains(&r));
    }
}
