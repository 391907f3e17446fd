//! EMQX's built-in rule functions (emqx-5.md, section 2.5), each a plain function on values.
//! Names are case-sensitive, as in EMQX. A wrong argument is an [`EvalError`]: the rule fails
//! for that message, it never returns a made-up value.
//!
//! One file per family: `logic` (null handling and type tests), `math`, `convert`,
//! `strings`, `regex`, `collections` (maps and arrays), `bits`, `encoding` (hashes,
//! base64, compression, UUIDs), `time`, `misc` (escapes, subscription lists, environment,
//! UTF-16), [`format`] (`sprintf`), `jq`.

mod bits;
mod collections;
mod convert;
mod encoding;
mod format;
#[cfg(any(test, feature = "testing"))]
pub mod hostile;
pub mod jq;
mod logic;
mod math;
mod misc;
mod regex;
mod strings;
mod time;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::value::Value;
use crate::EvalError;

/// The largest text or binary a function makes, in bytes. A client's payload must not make a
/// rule allocate without bound (`pad` takes its length from its arguments, `replace` multiplies),
/// and 16 MiB is far past the largest packet Weir takes by default.
pub const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// How deep a path a function builds may go (`map_put('a.b.c...')`): values are dropped and
/// written out recursively, and serde_json reads JSON no deeper either.
pub const MAX_DEPTH: usize = 128;

/// A built-in function: its name, how many arguments it takes, and its body.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// Its name, as rules call it (EMQX's).
    pub name: &'static str,
    /// The fewest arguments it takes.
    pub min_args: usize,
    /// The most arguments it takes; `usize::MAX` for "any number".
    pub max_args: usize,
    /// Its body, on the evaluated arguments.
    pub call: fn(&[Value]) -> Result<Value, EvalError>,
}

/// Every family's table.
const FAMILIES: &[&[Function]] = &[
    logic::FUNCTIONS,
    math::FUNCTIONS,
    convert::FUNCTIONS,
    strings::FUNCTIONS,
    collections::FUNCTIONS,
    bits::FUNCTIONS,
    encoding::FUNCTIONS,
    regex::FUNCTIONS,
    time::FUNCTIONS,
    misc::FUNCTIONS,
    format::FUNCTIONS,
    jq::FUNCTIONS,
];

/// Every function Weir implements.
pub fn all() -> impl Iterator<Item = &'static Function> {
    #[cfg(test)]
    let families = FAMILIES.iter().chain([&TEST_ONLY]);
    #[cfg(not(test))]
    let families = FAMILIES.iter();
    families.copied().flatten()
}

/// A function that panics on `'boom'`, for the tests of what catches a rule's panic: no function
/// of the catalogue is meant to panic, so none can stand in.
#[cfg(test)]
const TEST_ONLY: &[Function] = &[Function {
    name: "panic_in_test",
    min_args: 1,
    max_args: 1,
    call: |a| match &a[0] {
        Value::Str(s) if s == "boom" => panic!("panic_in_test('boom')"),
        other => Ok(other.clone()),
    },
}];

/// The function called `name`, if EMQX has one by that name that Weir implements.
pub fn lookup(name: &str) -> Option<&'static Function> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static Function>> = OnceLock::new();
    BY_NAME.get_or_init(|| all().map(|f| (f.name, f)).collect()).get(name).copied()
}

/// Calls `name` with `args`, checking the number of arguments.
pub fn call(name: &str, args: &[Value]) -> Result<Value, EvalError> {
    let f = lookup(name).ok_or_else(|| EvalError::UnknownFunction(name.to_string()))?;
    check_arity(f, args.len())?;
    (f.call)(args).map_err(|e| e.with_arguments(args))
}

/// Whether `f` takes `n` arguments; the error says how many it does take.
pub fn check_arity(f: &Function, n: usize) -> Result<(), EvalError> {
    if n < f.min_args || n > f.max_args {
        return Err(EvalError::Arity(format!("{}() takes {}, got {n}", f.name, arity(f))));
    }
    Ok(())
}

fn arity(f: &Function) -> String {
    match (f.min_args, f.max_args) {
        (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
        (a, usize::MAX) => format!("at least {a} arguments"),
        (a, b) => format!("{a} to {b} arguments"),
    }
}

/// `Ok` if a result of `len` bytes (`None`: more than fits in memory) is within [`MAX_OUTPUT`].
fn within_bound(function: &str, len: Option<usize>) -> Result<(), EvalError> {
    match len {
        Some(n) if n <= MAX_OUTPUT => Ok(()),
        _ => Err(EvalError::BadArgument(format!("{function}(): the result would be larger than 16 MiB"))),
    }
}

/// An error for an argument of the wrong kind (EMQX: a clause guard refuses it); the call site
/// adds the arguments.
fn bad(function: &str, v: &Value) -> EvalError {
    EvalError::function_argument(function, format!("{function}() cannot take {}", crate::ops::kind(v)))
}

/// The text of a string argument.
fn text<'a>(function: &str, v: &'a Value) -> Result<&'a str, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(bad(function, other)),
    }
}

/// An integer argument.
fn integer(function: &str, v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(bad(function, other)),
    }
}

/// A numeric argument, as a float.
fn number(function: &str, v: &Value) -> Result<f64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(bad(function, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_case_sensitive() {
        let all: Vec<&str> = super::all().map(|f| f.name).collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a function is registered twice");
        assert!(lookup("upper").is_some());
        assert!(lookup("UPPER").is_none());
    }

    #[test]
    fn arity_and_unknown_names_are_errors() {
        assert!(matches!(call("nope", &[]), Err(EvalError::UnknownFunction(_))));
        let e = call("upper", &[]).unwrap_err().to_string();
        assert!(e.contains("upper() takes 1 argument, got 0"), "{e}");
    }
}
