//! `jq(Program, JSON[, TimeoutMs])` (EMQX 5.x): the program's outputs as a list, run by jaq, a
//! jq implementation in Rust. `JSON` is JSON text, or any value (then encoded as JSON first).
//!
//! - `program`: one run within its budget of time and steps, so that even a program that never
//!   yields (`def f: f; f`) ends with an error and the rule goes on.
//! - [`worker`]: in a broker, runs happen in a worker process with an address-space limit, so
//!   that a program asking for a petabyte at once (`"x" * 1e15`) ends the worker, not the broker.
//!
//! Either way, a run happens on a thread of its own, with a stack deep enough for the deepest
//! value a budget allows (jaq drops values recursively); callers wait for it.

mod program;
pub mod worker;

use std::sync::OnceLock;
use std::time::Duration;

use super::{bad, integer, text, Function};
use crate::value::Value;
use crate::EvalError;

pub(super) const FUNCTIONS: &[Function] = &[Function { name: "jq", min_args: 2, max_args: 3, call: jq }];

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout a call may ask for: every wait has a bound.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// How deeply brackets may nest in a program or its input: jaq's parsers recurse, and a
/// client's `[[[[...` must not exhaust the stack. serde_json's own limit is the same.
const MAX_NESTING: usize = 128;

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
    let job = Job { code: code.to_string(), input, timeout: timeout.min(MAX_TIMEOUT) };
    worker::run(&job).unwrap_or_else(|| on_jq_thread(job))
}

/// One run of a program.
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
                let _ = reply.send(program::run_job(job));
            }
        });
        thread.ok().map(|_| tx)
    });
    let unavailable = || EvalError::BadArgument("jq: cannot start its thread".into());
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    jobs.as_ref().ok_or_else(unavailable)?.send((job, reply)).map_err(|_| unavailable())?;
    answer.recv().map_err(|_| unavailable())?
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

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
