//! `jq(Program, JSON[, TimeoutMs])` (EMQX 5.x): the program's outputs as a list, run by jaq, a
//! jq implementation in Rust. `JSON` is JSON text, or any value (then encoded as JSON first).
//! Compiled programs are cached, so a rule pays compilation once.
//!
//! Every run has a budget: the timeout (EMQX's default is 10 s) and [`MAX_STEPS`] steps. jaq
//! has no hook for it, but it reads its look-up table once per step; ours counts (see
//! [`Steps`]) and, past the budget, unwinds out of jaq, which this module catches. So even a
//! program that never yields (`def f: f; f`) ends, with an error, and the rule goes on.
//! Programs run on a thread of their own, with a stack deep enough for the deepest value a
//! budget allows (jaq drops values recursively); callers wait for it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{unwrap_valr, Compiler, Ctx, Lut, Native, Vars};
use jaq_json::Val;

use super::{bad, integer, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[Function { name: "jq", min_args: 2, max_args: 3, call: jq }];

type Program = jaq_core::compile::Filter<Native<Budgeted>>;

/// Distinct programs kept compiled per thread; rules have few, so clearing when full is enough.
const CACHE: usize = 64;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Steps (terms evaluated) one run may take. A rule's program takes tens to thousands per
/// message; the bound also bounds what a run can build, and how deep.
pub(crate) const MAX_STEPS: u64 = 1_000_000;
/// How deeply brackets may nest in a program or its input: jaq's parsers recurse, and a
/// client's `[[[[...` must not exhaust the stack. serde_json's own limit is the same.
const MAX_NESTING: usize = 128;
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

fn jq(a: &[Value]) -> Result<Value, EvalError> {
    let code = text("jq", &a[0])?;
    if nesting(code, false) > MAX_NESTING {
        return Err(EvalError::BadArgument(format!("jq: the program nests deeper than {MAX_NESTING}")));
    }
    let input = match &a[1] {
        Value::Str(s) => s.clone(),
        Value::Bin(_) => return Err(bad("jq", &a[1])),
        other => other.to_json()?,
    };
    if nesting(&input, true) > MAX_NESTING {
        return Err(EvalError::BadArgument(format!("jq: the input nests deeper than {MAX_NESTING}")));
    }
    let timeout = match a.get(2) {
        Some(v) => Duration::from_millis(u64::try_from(integer("jq", v)?).map_err(|_| bad("jq", v))?),
        None => DEFAULT_TIMEOUT,
    };
    on_jq_thread(Job { code: code.to_string(), input, timeout })
}

/// One run of a program, for the jq thread.
struct Job {
    code: String,
    input: String,
    timeout: Duration,
}

/// The stack of the thread that runs jq. jaq writes and drops values recursively, and within its
/// budget a program can nest a value hundreds of thousands deep (`reduce range(n) as $i (0;
/// [.])`); only the pages touched are ever allocated.
const JQ_STACK: usize = 512 * 1024 * 1024;

/// Runs `job` on the jq thread, started on first use, and waits for its outputs. Every run is
/// bounded by its budget, so the wait is too.
fn on_jq_thread(job: Job) -> Result<Value, EvalError> {
    type Request = (Job, std::sync::mpsc::SyncSender<Result<Value, EvalError>>);
    static JOBS: OnceLock<Option<std::sync::mpsc::Sender<Request>>> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        let thread = std::thread::Builder::new().name("weir-jq".into()).stack_size(JQ_STACK).spawn(move || {
            for (job, reply) in rx {
                let _ = reply.send(run_job(job));
            }
        });
        thread.ok().map(|_| tx)
    });
    let unavailable = || EvalError::BadArgument("jq: cannot start its thread".into());
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    jobs.as_ref().ok_or_else(unavailable)?.send((job, reply)).map_err(|_| unavailable())?;
    answer.recv().map_err(|_| unavailable())?
}

/// Compiles (or finds) and runs a job's program within its budget. A panic in jaq fails this
/// run only.
fn run_job(job: Job) -> Result<Value, EvalError> {
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

/// The deepest nesting of brackets in `text`; with `json`, brackets inside strings do not count.
/// (In a program they do: a string's `\(...)` holds code.)
fn nesting(text: &str, json: bool) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if json => in_string = true,
            b'[' | b'{' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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

    #[test]
    fn a_program_that_never_ends_runs_out_of_budget() {
        let s = |t: &str| Value::Str(t.into());
        let started = Instant::now();
        let e = run(&[s("def f: f; f"), s("{}"), Value::Int(200)]).unwrap_err().to_string();
        assert!(e.contains("budget"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5), "the budget is 200 ms");
        let e = run(&[s("[range(1e12)]"), s("1")]).unwrap_err().to_string();
        assert!(e.contains("budget"), "by steps, long before the default 10 s: {e}");
        let e = run(&[s("last(range(1e12))"), s("1")]).unwrap_err().to_string();
        assert!(e.contains("budget"), "{e}");
        assert_eq!(run(&[s("[range(5)] | add"), s("null")]).unwrap(), "[10]", "the budget is per run");
        assert_eq!(
            run(&[s("[range(1; 10; 3)], [range(3; 0; -1)], [range(0; 1; 0)]"), s("null")]).unwrap(),
            "[[1,4,7],[3,2,1],[]]"
        );
        let e = run(&[s("reduce range(1e9) as $i (0; [.])"), s("1")]).unwrap_err().to_string();
        assert!(e.contains("budget"), "a value nested as deep as the budget allows is dropped safely: {e}");
        let e = run(&[s("reduce range(3000) as $i (0; [.])"), s("1")]).unwrap_err().to_string();
        assert!(e.contains("nested too deep"), "{e}");
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(run(&[s("."), s(&deep)]).unwrap_err().to_string().contains("deeper"));
        let deep = format!("{}.{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(run(&[s(&deep), s("1")]).unwrap_err().to_string().contains("deeper"));
        assert_eq!(run(&[s("."), s(r#"["[[[[[[[[[[[[[["]"#)]).unwrap(), r#"[["[[[[[[[[[[[[[["]]"#);
    }
}
