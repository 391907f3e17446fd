//! `undefined` and JSON null, `coalesce`, and the type tests.

use super::Function;
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function { name: "null", min_args: 0, max_args: 0, call: |_| Ok(Value::Undefined) },
    Function { name: "is_null", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::Undefined))) },
    Function {
        name: "is_not_null",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Bool(!matches!(a[0], Value::Undefined))),
    },
    Function { name: "is_null_var", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(is_nullish(&a[0]))) },
    Function { name: "is_not_null_var", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(!is_nullish(&a[0]))) },
    Function { name: "is_str", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(a[0].as_bytes().is_some())) },
    Function { name: "is_bool", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::Bool(_)))) },
    Function { name: "is_int", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::Int(_)))) },
    Function { name: "is_float", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::Float(_)))) },
    Function {
        name: "is_num",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Bool(matches!(a[0], Value::Int(_) | Value::Float(_)))),
    },
    Function { name: "is_map", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::Map(_)))) },
    Function { name: "is_array", min_args: 1, max_args: 1, call: |a| Ok(Value::Bool(matches!(a[0], Value::List(_)))) },
    Function { name: "is_empty", min_args: 1, max_args: 1, call: is_empty },
    Function {
        name: "coalesce",
        min_args: 1,
        max_args: usize::MAX,
        call: |a| Ok(coalesce(a, |v| matches!(v, Value::Undefined))),
    },
    Function {
        name: "coalesce_ne",
        min_args: 1,
        max_args: usize::MAX,
        call: |a| Ok(coalesce(a, |v| matches!(v, Value::Undefined) || matches!(v, Value::Str(s) if s.is_empty()))),
    },
];

fn is_nullish(v: &Value) -> bool {
    matches!(v, Value::Undefined | Value::Null)
}

/// `[]`, `''`, `{}`; text is read as JSON first (`is_empty('{}')` is true).
fn is_empty(a: &[Value]) -> Result<Value, EvalError> {
    let decoded;
    let v = match &a[0] {
        Value::Str(s) if s.is_empty() => return Ok(Value::Bool(true)),
        Value::Str(s) => {
            decoded = Value::from_json(s.as_bytes()).unwrap_or(Value::Undefined);
            &decoded
        }
        other => other,
    };
    Ok(Value::Bool(match v {
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        _ => false,
    }))
}

/// The first argument that `skip` does not reject; a single list argument is searched instead.
fn coalesce(args: &[Value], skip: impl Fn(&Value) -> bool) -> Value {
    let candidates = match args {
        [Value::List(items)] => items.as_slice(),
        _ => args,
    };
    candidates.iter().find(|v| !skip(v)).cloned().unwrap_or(Value::Undefined)
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn null_tests_tell_undefined_from_json_null() {
        assert_eq!(call("is_null", &[Value::Undefined]).unwrap(), Value::Bool(true));
        assert_eq!(call("is_null", &[Value::Null]).unwrap(), Value::Bool(false));
        assert_eq!(call("is_null_var", &[Value::Null]).unwrap(), Value::Bool(true));
        assert_eq!(call("is_not_null", &[Value::Int(0)]).unwrap(), Value::Bool(true));
        assert_eq!(call("null", &[]).unwrap(), Value::Undefined);
    }

    #[test]
    fn coalesce_forms() {
        assert_eq!(call("coalesce", &[Value::Undefined, Value::Int(0)]).unwrap(), Value::Int(0));
        assert_eq!(call("coalesce", &[Value::List(vec![Value::Undefined, s("x")])]).unwrap(), s("x"));
        assert_eq!(call("coalesce_ne", &[s(""), Value::Undefined, s("y")]).unwrap(), s("y"));
        assert_eq!(call("coalesce", &[Value::Undefined, Value::Undefined]).unwrap(), Value::Undefined);
    }

    #[test]
    fn type_tests() {
        assert_eq!(call("is_empty", &[s("{}")]).unwrap(), Value::Bool(true));
        assert_eq!(call("is_empty", &[s("")]).unwrap(), Value::Bool(true));
        assert_eq!(call("is_empty", &[Value::List(vec![Value::Int(1)])]).unwrap(), Value::Bool(false));
        assert_eq!(call("is_num", &[Value::Float(1.0)]).unwrap(), Value::Bool(true));
        assert_eq!(call("is_int", &[Value::Float(1.0)]).unwrap(), Value::Bool(false));
        assert_eq!(call("is_map", &[s("{}")]).unwrap(), Value::Bool(false), "text is not a map");
    }
}
