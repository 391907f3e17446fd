//! One run of a jq program within its budget: the timeout and [`MAX_STEPS`] steps. jaq has no
//! hook for it, but it reads its look-up table once per step; ours counts (see [`Steps`]) and,
//! past the budget, unwinds out of jaq, which this module catches. So even a program that never
//! yields (`def f: f; f`) ends, with an error. Compiled programs are cached, so a rule pays
//! compilation once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Instant;

use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{unwrap_valr, Compiler, Ctx, Lut, Native, Vars};
use jaq_json::Val;

use super::Job;
use crate::value::Value;
use crate::EvalError;

type Program = jaq_core::compile::Filter<Native<Budgeted>>;

/// Distinct programs kept compiled per thread; rules have few, so clearing when full is enough.
const CACHE: usize = 64;
/// Steps (terms evaluated) one run may take. A rule's program takes tens to thousands per
/// message; the bound also bounds what a run can build, and how deep.
pub(super) const MAX_STEPS: u64 = 1_000_000;
/// Steps between two looks at the clock.
const CLOCK_EVERY: u64 = 1024;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Rc<Program>>> = RefCell::new(HashMap::new());
    /// The running program's budget: steps left, and the deadline.
    static BUDGET: Cell<(u64, Option<Instant>)> = const { Cell::new((0, None)) };
}

/// jaq's data for Weir: JSON values, and a look-up table that counts steps.
struct Budgeted;

impl DataT for Budgeted {
    type V<'a> = Val;
    type Data<'a> = Steps<'a>;
}

/// The look-up table, handed out once per step: past the budget, it unwinds with [`OutOfBudget`].
#[derive(Clone)]
struct Steps<'a>(&'a Lut<Budgeted>);

impl<'a> HasLut<'a, Budgeted> for Steps<'a> {
    fn lut(&self) -> &'a Lut<Budgeted> {
        let (left, deadline) = BUDGET.get();
        let out_of_time = left % CLOCK_EVERY == 0 && deadline.is_some_and(|d| Instant::now() >= d);
        if left == 0 || out_of_time {
            // Not `panic!`: no panic message, as this is the budget working, not a bug.
            resume_unwind(Box::new(OutOfBudget));
        }
        BUDGET.set((left - 1, deadline));
        self.0
    }
}

/// The payload of the unwind that ends a run past its budget.
struct OutOfBudget;

/// Compiles (or finds) and runs a job's program within its budget. A panic in jaq fails this
/// run only.
pub(super) fn run_job(job: Job) -> Result<Value, EvalError> {
    let program = compiled(&job.code)?;
    let input = jaq_json::read::parse_single(job.input.as_bytes())
        .map_err(|e| EvalError::BadArgument(format!("jq: the input is not JSON: {e}")))?;
    BUDGET.set((MAX_STEPS, Instant::now().checked_add(job.timeout)));
    let ran = catch_unwind(AssertUnwindSafe(|| run(&program, input)));
    BUDGET.set((0, None));
    match ran {
        Ok(outputs) => outputs,
        Err(payload) if payload.is::<OutOfBudget>() => Err(EvalError::BadArgument(format!(
            "jq: the program ran out of its budget ({} ms or {MAX_STEPS} steps)",
            job.timeout.as_millis()
        ))),
        Err(_) => Err(EvalError::BadArgument("jq: the program failed on an internal error".into())),
    }
}

/// Runs `program` on `input`, within the budget set in [`BUDGET`].
fn run(program: &Program, input: Val) -> Result<Value, EvalError> {
    let ctx = Ctx::<Budgeted>::new(Steps(&program.lut), Vars::new([]));
    let mut results = Vec::new();
    for out in program.id.run((ctx, input)).map(unwrap_valr) {
        let out = out.map_err(|e| EvalError::BadArgument(format!("jq: {e}")))?;
        let decoded = Value::from_json(out.to_string().as_bytes())
            .ok_or_else(|| EvalError::BadArgument("jq: an output is not JSON, or is nested too deep".into()))?;
        results.push(decoded);
    }
    Ok(Value::List(results))
}

/// Definitions that replace jaq's native `range`, which yields its numbers without a step jaq
/// counts: `[range(1e12)]` would fill memory within the time budget. These take a step per
/// number. `range/1` and `range/2` are defined again so that they call this `range/3`.
const BUDGETED_DEFS: &str = "
def range($from; $upto; $by):
  if $by > 0 then $from | while(. < $upto; . + $by)
  elif $by < 0 then $from | while(. > $upto; . + $by)
  else empty end;
def range($from; $upto): range($from; $upto; 1);
def range($upto): range(0; $upto);
";

fn budgeted_defs() -> impl Iterator<Item = jaq_core::load::parse::Def<&'static str>> {
    jaq_core::load::parse(BUDGETED_DEFS, |p| p.defs()).unwrap_or_default().into_iter()
}

/// The compiled program, from the cache or compiled now.
fn compiled(code: &str) -> Result<Rc<Program>, EvalError> {
    if let Some(p) = COMPILED.with(|c| c.borrow().get(code).cloned()) {
        return Ok(p);
    }
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs()).chain(budgeted_defs());
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
