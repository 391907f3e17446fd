//! `jq(Program, JSON[, TimeoutMs])` (EMQX 5.x): the program's outputs as a list, run by jaq, a
//! jq implementation in Rust. `JSON` is JSON text, or any value (then encoded as JSON first).
//! Compiled programs are cached per thread, so a rule pays compilation once.
//!
//! The timeout is checked between the program's outputs: a program that never yields one (an
//! infinite loop without output) cannot be stopped. EMQX's default is 10 s.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Native, Vars};
use jaq_json::Val;

use super::{bad, integer, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[Function { name: "jq", min_args: 2, max_args: 3, call: jq }];

type Program = jaq_core::compile::Filter<Native<data::JustLut<Val>>>;

/// Distinct programs kept compiled per thread; rules have few, so clearing when full is enough.
const CACHE: usize = 64;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

thread_local! {
    static COMPILED: RefCell<HashMap<String, Rc<Program>>> = RefCell::new(HashMap::new());
}

fn jq(a: &[Value]) -> Result<Value, EvalError> {
    let program = compiled(text("jq", &a[0])?)?;
    let input = match &a[1] {
        Value::Str(s) => s.clone(),
        Value::Bin(_) => return Err(bad("jq", &a[1])),
        other => other.to_json()?,
    };
    let timeout = match a.get(2) {
        Some(v) => Duration::from_millis(u64::try_from(integer("jq", v)?).map_err(|_| bad("jq", v))?),
        None => DEFAULT_TIMEOUT,
    };
    let input = jaq_json::read::parse_single(input.as_bytes())
        .map_err(|e| EvalError::BadArgument(format!("jq: the input is not JSON: {e}")))?;
    let started = Instant::now();
    let ctx = Ctx::<data::JustLut<Val>>::new(&program.lut, Vars::new([]));
    let mut results = Vec::new();
    for out in program.id.run((ctx, input)).map(unwrap_valr) {
        let out = out.map_err(|e| EvalError::BadArgument(format!("jq: {e}")))?;
        let decoded = Value::from_json(out.to_string().as_bytes())
            .ok_or_else(|| EvalError::BadArgument(format!("jq: output {out} is not JSON")))?;
        results.push(decoded);
        if started.elapsed() > timeout {
            return Err(EvalError::BadArgument(format!("jq: timed out after {} ms", timeout.as_millis())));
        }
    }
    Ok(Value::List(results))
}

/// The compiled program, from the cache or compiled now.
fn compiled(code: &str) -> Result<Rc<Program>, EvalError> {
    if let Some(p) = COMPILED.with(|c| c.borrow().get(code).cloned()) {
        return Ok(p);
    }
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let arena = Arena::default();
    let invalid = || EvalError::BadArgument(format!("jq: invalid program {code:?}"));
    let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|_| invalid())?;
    let program = Rc::new(Compiler::default().with_funs(funs).compile(modules).map_err(|_| invalid())?);
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE {
            cache.clear();
        }
        cache.insert(code.to_string(), program.clone());
    });
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[Value]) -> Result<String, EvalError> {
        jq(args).map(|v| v.to_json().unwrap())
    }

    #[test]
    fn outputs_come_as_a_list() {
        let s = |t: &str| Value::Str(t.into());
        assert_eq!(run(&[s(".a"), s(r#"{"a": 1}"#)]).unwrap(), "[1]");
        assert_eq!(run(&[s(".[] | . * 2"), s("[1, 2, 3]")]).unwrap(), "[2,4,6]");
        // The EMQX documentation's example shape: a map in, objects out.
        let input = Value::from_json(br#"{"r": [{"v": 1}, {"v": 5}]}"#).unwrap();
        assert_eq!(run(&[s("[.r[] | select(.v > 2)]"), input]).unwrap(), r#"[[{"v":5}]]"#);
        assert_eq!(run(&[s("empty"), s("1")]).unwrap(), "[]");
    }

    #[test]
    fn bad_programs_and_inputs_are_errors() {
        let s = |t: &str| Value::Str(t.into());
        assert!(run(&[s(".a |"), s("{}")]).unwrap_err().to_string().contains("invalid program"));
        assert!(run(&[s("."), s("{nope")]).unwrap_err().to_string().contains("not JSON"));
        assert!(run(&[s("error(\"boom\")"), s("1")]).unwrap_err().to_string().contains("jq:"));
        assert!(run(&[s("."), s("1"), Value::Int(-1)]).is_err());
    }
}
