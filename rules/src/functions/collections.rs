//! Maps and arrays. Map functions take a map or JSON text holding one; `map_get`/`map_put` read
//! the key as a dotted path, `mget`/`mput` take it literally (or a list of keys as a path).

use std::collections::BTreeMap;

use super::{bad, integer, text, Function, MAX_DEPTH};
use crate::path::{self, Step};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[
    Function { name: "map_new", min_args: 0, max_args: 0, call: |_| Ok(Value::Map(BTreeMap::new())) },
    Function {
        name: "map_get",
        min_args: 2,
        max_args: 3,
        call: |a| get("map_get", &dotted("map_get", text("map_get", &a[0])?)?, &a[1], a.get(2)),
    },
    Function {
        name: "map_put",
        min_args: 3,
        max_args: 3,
        call: |a| put("map_put", &dotted("map_put", text("map_put", &a[0])?)?, &a[1], &a[2]),
    },
    Function {
        name: "mget",
        min_args: 2,
        max_args: 3,
        call: |a| get("mget", &literal_keys("mget", &a[0])?, &a[1], a.get(2)),
    },
    Function {
        name: "mput",
        min_args: 3,
        max_args: 3,
        call: |a| put("mput", &literal_keys("mput", &a[0])?, &a[1], &a[2]),
    },
    Function {
        name: "map_keys",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::List(map("map_keys", &a[0])?.into_keys().map(Value::Str).collect())),
    },
    Function {
        name: "map_values",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::List(map("map_values", &a[0])?.into_values().collect())),
    },
    Function {
        name: "map_size",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Int(map("map_size", &a[0])?.len() as i64)),
    },
    Function { name: "map_to_entries", min_args: 1, max_args: 1, call: map_to_entries },
    Function { name: "map_to_redis_hset_args", min_args: 1, max_args: 1, call: map_to_redis_hset_args },
    Function { name: "nth", min_args: 2, max_args: 2, call: nth },
    Function {
        name: "length",
        min_args: 1,
        max_args: 1,
        call: |a| Ok(Value::Int(list("length", &a[0])?.len() as i64)),
    },
    Function { name: "sublist", min_args: 2, max_args: 3, call: sublist },
    Function {
        name: "first",
        min_args: 1,
        max_args: 1,
        call: |a| list("first", &a[0])?.first().cloned().ok_or_else(|| bad("first", &a[0])),
    },
    Function {
        name: "last",
        min_args: 1,
        max_args: 1,
        call: |a| list("last", &a[0])?.last().cloned().ok_or_else(|| bad("last", &a[0])),
    },
    Function {
        name: "contains",
        min_args: 2,
        max_args: 2,
        call: |a| Ok(Value::Bool(list("contains", &a[1])?.iter().any(|v| crate::ops::exactly_equal(v, &a[0])))),
    },
];

/// A map argument, or JSON text that holds an object.
fn map(name: &str, v: &Value) -> Result<BTreeMap<String, Value>, EvalError> {
    match v {
        Value::Map(m) => Ok(m.clone()),
        Value::Str(s) => match Value::from_json(s.as_bytes()) {
            Some(Value::Map(m)) => Ok(m),
            _ => Err(bad(name, v)),
        },
        other => Err(bad(name, other)),
    }
}

fn list<'a>(name: &str, v: &'a Value) -> Result<&'a [Value], EvalError> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(bad(name, other)),
    }
}

fn dotted(name: &str, key: &str) -> Result<Vec<String>, EvalError> {
    shallow(name, key.split('.').map(str::to_string).collect())
}

fn literal_keys(name: &str, v: &Value) -> Result<Vec<String>, EvalError> {
    shallow(
        name,
        match v {
            Value::List(keys) => keys.iter().map(|k| text(name, k).map(str::to_string)).collect::<Result<_, _>>()?,
            other => vec![text(name, other)?.to_string()],
        },
    )
}

/// `keys`, if the path is no deeper than [`MAX_DEPTH`].
fn shallow(name: &str, keys: Vec<String>) -> Result<Vec<String>, EvalError> {
    if keys.len() > MAX_DEPTH {
        return Err(EvalError::BadArgument(format!("{name}(): a path deeper than {MAX_DEPTH} keys")));
    }
    Ok(keys)
}

fn get(name: &str, keys: &[String], m: &Value, default: Option<&Value>) -> Result<Value, EvalError> {
    let m = Value::Map(map(name, m)?);
    let steps: Vec<Step> = keys.iter().map(|k| Step::Key(k)).collect();
    let found = path::get(&m, &steps, false)?;
    Ok(match (found, default) {
        (Value::Undefined, Some(d)) => d.clone(),
        (found, _) => found,
    })
}

fn put(name: &str, keys: &[String], value: &Value, m: &Value) -> Result<Value, EvalError> {
    let mut m = Value::Map(map(name, m)?);
    let steps: Vec<Step> = keys.iter().map(|k| Step::Key(k)).collect();
    path::put(&mut m, &steps, value.clone());
    Ok(m)
}

fn map_to_entries(a: &[Value]) -> Result<Value, EvalError> {
    Ok(Value::List(
        map("map_to_entries", &a[0])?
            .into_iter()
            .map(|(k, v)| Value::Map(BTreeMap::from([("key".to_string(), Value::Str(k)), ("value".to_string(), v)])))
            .collect(),
    ))
}

/// `[field1, value1, field2, value2, ...]` for Redis `HSET`, keys in order, every value as its
/// text (maps and lists as JSON), as EMQX renders them into the command.
fn map_to_redis_hset_args(a: &[Value]) -> Result<Value, EvalError> {
    let mut args = Vec::new();
    for (k, v) in map("map_to_redis_hset_args", &a[0])? {
        args.push(Value::Str(k));
        args.push(Value::Str(v.to_text()?));
    }
    Ok(Value::List(args))
}

/// `nth(n, list)`, 1-based; out of range fails.
fn nth(a: &[Value]) -> Result<Value, EvalError> {
    let n = integer("nth", &a[0])?;
    let l = list("nth", &a[1])?;
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=l.len()).contains(n))
        .map(|n| l[n - 1].clone())
        .ok_or_else(|| bad("nth", &a[0]))
}

/// `sublist(len, list)` or `sublist(start, len, list)` (1-based), clamped to the list.
fn sublist(a: &[Value]) -> Result<Value, EvalError> {
    let (start, len, l) = match a {
        [len, l] => (1, integer("sublist", len)?, list("sublist", l)?),
        [start, len, l] => (integer("sublist", start)?, integer("sublist", len)?, list("sublist", l)?),
        _ => return Err(bad("sublist", &Value::Undefined)),
    };
    if start < 1 || len < 0 {
        return Err(bad("sublist", &a[0]));
    }
    let from = (start as usize - 1).min(l.len());
    let to = from.saturating_add(len as usize).min(l.len());
    Ok(Value::List(l[from..to].to_vec()))
}

#[cfg(test)]
mod tests {
    use crate::functions::call;
    use crate::value::Value;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn json(x: &str) -> Value {
        Value::from_json(x.as_bytes()).unwrap()
    }

    fn ints(r: std::ops::RangeInclusive<i64>) -> Value {
        Value::List(r.map(Value::Int).collect())
    }

    #[test]
    fn maps() {
        let deep = ".".repeat(500_000);
        assert!(
            call("map_put", &[s(&deep), Value::Int(1), s("{}")]).is_err(),
            "500,000 levels would overflow the stack"
        );
        let m = s(r#"{"a":{"b":1},"a.b":2,"z":0}"#);
        assert_eq!(call("map_get", &[s("a.b"), m.clone()]).unwrap(), Value::Int(1), "dotted path");
        assert_eq!(call("mget", &[s("a.b"), m.clone()]).unwrap(), Value::Int(2), "literal key");
        assert_eq!(call("mget", &[Value::List(vec![s("a"), s("b")]), m.clone()]).unwrap(), Value::Int(1));
        assert_eq!(call("map_get", &[s("nope"), m.clone(), s("dflt")]).unwrap(), s("dflt"));
        assert_eq!(
            call("map_put", &[s("a.c"), Value::Int(3), json(r#"{"a":{"b":1}}"#)]).unwrap(),
            json(r#"{"a":{"b":1,"c":3}}"#)
        );
        assert_eq!(
            call("map_keys", std::slice::from_ref(&m)).unwrap(),
            Value::List(vec![s("a"), s("a.b"), s("z")]),
            "sorted"
        );
        assert_eq!(call("map_size", &[m]).unwrap(), Value::Int(3));
        assert_eq!(call("map_to_entries", &[json(r#"{"x":1}"#)]).unwrap(), json(r#"[{"key":"x","value":1}]"#));
        assert_eq!(call("map_new", &[]).unwrap(), json("{}"));
        assert!(call("map_keys", &[Value::Int(1)]).is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(call("nth", &[Value::Int(2), ints(1..=4)]).unwrap(), Value::Int(2));
        assert!(call("nth", &[Value::Int(0), ints(1..=4)]).is_err());
        assert_eq!(call("length", &[ints(1..=4)]).unwrap(), Value::Int(4));
        assert_eq!(call("sublist", &[Value::Int(2), ints(1..=4)]).unwrap(), ints(1..=2));
        assert_eq!(call("sublist", &[Value::Int(2), Value::Int(2), ints(1..=4)]).unwrap(), ints(2..=3));
        assert_eq!(call("sublist", &[Value::Int(5), Value::Int(2), ints(1..=4)]).unwrap(), Value::List(vec![]));
        assert!(call("first", &[Value::List(vec![])]).is_err());
        assert_eq!(call("last", &[ints(1..=4)]).unwrap(), Value::Int(4));
        assert_eq!(call("contains", &[json(r#"{"a":1}"#), json(r#"[1,{"a":1}]"#)]).unwrap(), Value::Bool(true));
        assert_eq!(call("contains", &[Value::Float(1.0), ints(1..=2)]).unwrap(), Value::Bool(false));
    }

    #[test]
    fn redis_hset_args_are_flat_text_pairs() {
        let out = call("map_to_redis_hset_args", &[json(r#"{"b": {"x": 1}, "a": 1.5, "c": "t"}"#)]).unwrap();
        assert_eq!(out.to_json().unwrap(), r#"["a","1.5","b","{\"x\":1}","c","t"]"#);
        assert!(call("map_to_redis_hset_args", &[s("x")]).is_err());
    }
}
