//! Reading and writing paths into values (rule SQL spec, sections 4 and 5.5).
//!
//! Reading: keys into maps, 1-based indexes into lists (negative from the end, `0` is nothing),
//! inclusive ranges; text on the way is decoded as JSON when the path goes deeper. Writing (`AS`
//! targets): maps are created or patched, anything else on the way is replaced.

use std::collections::BTreeMap;

use crate::value::Value;
use crate::EvalError;

/// One step of a path, its index expressions already evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    Key(&'a str),
    /// 1-based; negative counts from the end; `0` means "before the first" when writing.
    Index(i64),
    /// `[-0]`: after the last, when writing.
    Append,
    /// Inclusive, 1-based, negative ends from the end.
    Range(i64, i64),
}

/// Reads `steps` from `value`. With `strict`, text that must be decoded to go on but is not JSON
/// is an error (that is the payload's rule); otherwise it reads as `undefined`.
pub fn get(value: &Value, steps: &[Step], strict: bool) -> Result<Value, EvalError> {
    walk(value, steps, strict)
}

/// Follows the steps by reference and clones only what is found.
fn walk(current: &Value, steps: &[Step], strict: bool) -> Result<Value, EvalError> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(current.clone());
    };
    if let Some(bytes) = current.as_bytes() {
        return match Value::from_json(bytes) {
            Some(decoded) => walk(&decoded, steps, false),
            None if strict => Err(EvalError::DecodeJson),
            None => Ok(Value::Undefined),
        };
    }
    // Nothing found goes on as `undefined`: a later range step must still fail on it.
    let nothing = || walk(&Value::Undefined, rest, false);
    match (step, current) {
        (Step::Key(k), Value::Map(m)) => m.get(*k).map_or_else(nothing, |v| walk(v, rest, false)),
        (Step::Index(i), Value::List(l)) => position(l.len(), *i).map_or_else(nothing, |p| walk(&l[p], rest, false)),
        (Step::Range(a, b), Value::List(l)) => walk(&Value::List(range(l, *a, *b).to_vec()), rest, false),
        (Step::Range(..), _) => Err(EvalError::RangeOnNonList),
        _ => nothing(),
    }
}

/// The 0-based position of a 1-based (or negative) index in a list of `len`.
pub(crate) fn position(len: usize, index: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let p = match index {
        i if i > 0 => i - 1,
        i if i < 0 => len + i,
        _ => return None,
    };
    (0..len).contains(&p).then_some(p as usize)
}

fn range(l: &[Value], from: i64, to: i64) -> &[Value] {
    let len = l.len() as i64;
    let norm = |i: i64| if i < 0 { len + i + 1 } else { i };
    let (start, end) = (norm(from).max(1), norm(to).min(len));
    if start > end {
        return &[];
    }
    &l[(start - 1) as usize..end as usize]
}

/// Writes `new` at `steps` inside `target`, the way an `AS` path does: missing maps are created,
/// a value that is not a map where a key is wanted is replaced by a map, an index into a list
/// replaces that element (out of range: nothing changes), and an index into anything else makes
/// a one-element list.
pub fn put(target: &mut Value, steps: &[Step], new: Value) {
    let Some((step, rest)) = steps.split_first() else {
        *target = new;
        return;
    };
    match step {
        Step::Key(k) => {
            if !matches!(target, Value::Map(_)) {
                *target = Value::Map(BTreeMap::new());
            }
            if let Value::Map(m) = target {
                put(m.entry((*k).to_string()).or_insert(Value::Undefined), rest, new);
            }
        }
        Step::Index(_) | Step::Append => {
            let Value::List(l) = target else {
                let mut element = Value::Undefined;
                put(&mut element, rest, new);
                *target = Value::List(vec![element]);
                return;
            };
            match step {
                Step::Append => {
                    let mut element = Value::Undefined;
                    put(&mut element, rest, new);
                    l.push(element);
                }
                Step::Index(0) => {
                    let mut element = Value::Undefined;
                    put(&mut element, rest, new);
                    l.insert(0, element);
                }
                Step::Index(i) => {
                    if let Some(p) = position(l.len(), *i) {
                        put(&mut l[p], rest, new);
                    }
                }
                Step::Key(_) | Step::Range(..) => {}
            }
        }
        // Not a valid assignment target; the compiler refuses it before it gets here.
        Step::Range(..) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Value {
        Value::from_json(s.as_bytes()).unwrap()
    }

    fn text(s: &str) -> Value {
        Value::Str(s.into())
    }

    #[test]
    fn reads_keys_indexes_and_ranges() {
        let v = json(r#"{"a":{"b":[10,20,30,40]},"s":"x"}"#);
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Index(1)], false).unwrap(), Value::Int(10));
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Index(-1)], false).unwrap(), Value::Int(40));
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Index(-2)], false).unwrap(), Value::Int(30));
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Index(0)], false).unwrap(), Value::Undefined);
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Index(9)], false).unwrap(), Value::Undefined);
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Range(2, -1)], false).unwrap(), json("[20,30,40]"));
        assert_eq!(get(&v, &[Step::Key("a"), Step::Key("b"), Step::Range(1, 2)], false).unwrap(), json("[10,20]"));
        assert_eq!(get(&v, &[Step::Key("nope"), Step::Key("x")], false).unwrap(), Value::Undefined);
        assert_eq!(get(&v, &[Step::Key("a"), Step::Index(1)], false).unwrap(), Value::Undefined, "index on a map");
        assert_eq!(get(&v, &[Step::Key("missing"), Step::Range(1, 2)], false), Err(EvalError::RangeOnNonList));
    }

    #[test]
    fn text_is_decoded_on_the_way_and_only_the_payload_is_strict() {
        let payload = text(r#"{"temp": 31.5, "inner": "{\"deep\": 1}"}"#);
        assert_eq!(get(&payload, &[Step::Key("temp")], true).unwrap(), Value::Float(31.5));
        assert_eq!(get(&payload, &[Step::Key("inner"), Step::Key("deep")], true).unwrap(), Value::Int(1));
        let bad = text("not json");
        assert_eq!(get(&bad, &[Step::Key("x")], true), Err(EvalError::DecodeJson));
        assert_eq!(get(&bad, &[Step::Key("x")], false).unwrap(), Value::Undefined);
        assert_eq!(get(&bad, &[], true).unwrap(), bad, "no path: the raw value, undecoded");
    }

    #[test]
    fn writes_build_and_patch_like_emqx() {
        // `select 0 as payload.x[2].y` with nothing selected before.
        let mut out = Value::Map(BTreeMap::new());
        put(&mut out, &[Step::Key("payload"), Step::Key("x"), Step::Index(2), Step::Key("y")], Value::Int(0));
        assert_eq!(out, json(r#"{"payload":{"x":[{"y":0}]}}"#));

        // A raw JSON string in the way is replaced, its siblings lost.
        let mut out = json(r#"{"p":"{\"keep\":1}"}"#);
        put(&mut out, &[Step::Key("p"), Step::Key("answer")], Value::Int(42));
        assert_eq!(out, json(r#"{"p":{"answer":42}}"#));

        // A real map is patched in place.
        let mut out = json(r#"{"p":{"a":1,"b":"2"}}"#);
        put(&mut out, &[Step::Key("p"), Step::Key("z")], Value::Int(1));
        assert_eq!(out, json(r#"{"p":{"a":1,"b":"2","z":1}}"#));

        // Lists: replace, out of range, head, tail.
        let mut out = json(r#"{"c":[1,2,3]}"#);
        put(&mut out, &[Step::Key("c"), Step::Index(-2)], Value::Int(20));
        put(&mut out, &[Step::Key("c"), Step::Index(7)], Value::Int(70));
        put(&mut out, &[Step::Key("c"), Step::Index(0)], Value::Int(0));
        put(&mut out, &[Step::Key("c"), Step::Append], Value::Int(4));
        assert_eq!(out, json(r#"{"c":[0,1,20,3,4]}"#));

        // Last write wins.
        let mut out = Value::Map(BTreeMap::new());
        put(&mut out, &[Step::Key("p")], Value::Int(42));
        put(&mut out, &[Step::Key("p")], Value::Int(51));
        assert_eq!(out, json(r#"{"p":51}"#));
    }
}
