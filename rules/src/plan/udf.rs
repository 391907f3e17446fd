//! Rule SQL's functions and operators as DataFusion scalar UDFs over [`variant`] columns.
//!
//! - [`CatalogueUdf`]: every built-in function of [`crate::functions`], under EMQX's name.
//! - [`OperatorUdf`]: the operators, `CASE`, `IN`, list literals and the context functions
//!   (`topic(n)`, `payload('a.b')`, `flag('retain')`), whose semantics are EMQX's, not SQL's.
//! - [`PathUdf`] reads `x.a[1]`, [`PutUdf`] writes an `AS a.b[-0]` target.
//!
//! Each works a whole batch at a time and fails row by row: a row whose argument is an error
//! gets that error back (the first one, as EMQX evaluates left to right), except where EMQX
//! stops early (`false AND <error>` is false, a `CASE` branch not taken cannot fail).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use smallvec::SmallVec;

use super::variant::{self, Builder, Cells, Ref};
use crate::ast::BinaryOp;
use crate::functions::{self, Function};
use crate::path::{self, Step};
use crate::value::Value;
use crate::{ops, EvalError};

/// Any number of variant arguments. Volatile: `now_timestamp()` and `uuid_v4()` differ per call,
/// and rules are never constant-folded anyway.
fn any_arguments() -> Signature {
    Signature::one_of(vec![TypeSignature::Nullary, TypeSignature::VariadicAny], Volatility::Volatile)
}

/// Runs `each` on every row's arguments and collects its results into a variant column. With
/// `propagate`, a row with an error argument gets the first such error without `each`.
fn by_row(
    args: &ScalarFunctionArgs,
    propagate: bool,
    mut each: impl FnMut(&[Ref<'_>], &mut Builder),
) -> DfResult<ColumnarValue> {
    let cells: SmallVec<[Cells; 4]> = args.args.iter().map(Cells::of).collect();
    let mut out = Builder::with_capacity(args.number_rows);
    let mut refs: SmallVec<[Ref; 4]> = SmallVec::new();
    for row in 0..args.number_rows {
        refs.clear();
        refs.extend(cells.iter().map(|c| c.read(row)));
        if propagate {
            if let Some(e) = refs.iter().find(|r| matches!(r, Ref::Error(_))) {
                out.push_ref(*e);
                continue;
            }
        }
        each(&refs, &mut out);
    }
    Ok(ColumnarValue::Array(out.finish()))
}

fn values(refs: &[Ref<'_>]) -> SmallVec<[Value; 4]> {
    refs.iter().map(|r| r.to_value()).collect()
}

/// A function of the catalogue, as a UDF of the same name.
#[derive(Debug)]
pub struct CatalogueUdf {
    function: &'static Function,
    signature: Signature,
}

impl PartialEq for CatalogueUdf {
    fn eq(&self, other: &Self) -> bool {
        self.function.name == other.function.name
    }
}

impl Eq for CatalogueUdf {}

impl Hash for CatalogueUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.function.name.hash(state);
    }
}

impl ScalarUDFImpl for CatalogueUdf {
    fn name(&self) -> &str {
        self.function.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = self.function.call;
        by_row(&args, true, |refs, out| {
            let args = values(refs);
            out.push_result(call(&args).map_err(|e| e.with_arguments(&args)))
        })
    }
}

/// The catalogue's UDF named `name`, built once for all rules.
pub fn catalogue(name: &str) -> Option<Arc<ScalarUDF>> {
    static ALL: OnceLock<std::collections::HashMap<&'static str, Arc<ScalarUDF>>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        functions::all()
            .map(|function| {
                let udf = CatalogueUdf { function, signature: any_arguments() };
                (function.name, Arc::new(ScalarUDF::new_from_impl(udf)))
            })
            .collect()
    });
    all.get(name).cloned()
}

/// What an [`OperatorUdf`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// Comparisons, arithmetic, `AND`, `OR`, `=~`.
    Binary(BinaryOp),
    Not,
    Negate,
    /// `x IN (a, b)`: arguments `x, a, b`.
    In {
        negated: bool,
    },
    /// `[a, b]`.
    List,
    /// `[a..b]` as a literal list of integers.
    Range,
    /// `CASE`: arguments `[subject,] when, then, ..., else`.
    Case {
        with_subject: bool,
    },
    /// `topic(n)`: arguments `topic, n`.
    TopicLevel,
    /// `payload('a.b')`: arguments `payload, path`.
    PayloadPath,
    /// `flag('retain')`: arguments `flags, name`.
    Flag,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OperatorUdf {
    operator: Operator,
    name: &'static str,
    signature: Signature,
}

impl OperatorUdf {
    pub fn udf(operator: Operator) -> Arc<ScalarUDF> {
        let name = match operator {
            Operator::Binary(op) => op.symbol(),
            Operator::Not => "not",
            Operator::Negate => "negate",
            Operator::In { negated: false } => "in",
            Operator::In { negated: true } => "not in",
            Operator::List => "list",
            Operator::Range => "range",
            Operator::Case { .. } => "case",
            Operator::TopicLevel => "topic",
            Operator::PayloadPath => "payload",
            Operator::Flag => "flag",
        };
        Arc::new(ScalarUDF::new_from_impl(OperatorUdf { operator, name, signature: any_arguments() }))
    }
}

impl ScalarUDFImpl for OperatorUdf {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match self.operator {
            Operator::Binary(op @ (BinaryOp::And | BinaryOp::Or)) => {
                by_row(&args, false, |refs, out| match logic(op, refs) {
                    Ok(b) => out.push_bool(b),
                    Err(Stop::Error(e)) => out.push_error(&e),
                    Err(Stop::Argument(i)) => out.push_ref(refs[i]),
                })
            }
            Operator::In { negated } => by_row(&args, false, |refs, out| match member(refs) {
                Ok(found) => out.push_bool(found != negated),
                Err(i) => out.push_ref(refs[i]),
            }),
            Operator::Case { with_subject } => by_row(&args, false, |refs, out| match case(refs, with_subject) {
                Ok(i) | Err(i) => out.push_ref(refs.get(i).copied().unwrap_or(Ref::Undefined)),
            }),
            operator => by_row(&args, true, |refs, out| out.push_result(apply(operator, refs))),
        }
    }
}

/// Why `AND`/`OR` stopped without a boolean: an error of its own, or argument `i`'s.
enum Stop {
    Error(EvalError),
    Argument(usize),
}

/// `AND`/`OR` as EMQX's `andalso`/`orelse`: the right side only matters if the left did not
/// decide, so its error does not either.
fn logic(op: BinaryOp, refs: &[Ref<'_>]) -> Result<bool, Stop> {
    let operand = |i: usize| match refs.get(i).copied().unwrap_or(Ref::Undefined) {
        Ref::Error(_) => Err(Stop::Argument(i)),
        r => ops::truth(&r.to_value()).map_err(Stop::Error),
    };
    let left = operand(0)?;
    match (op, left) {
        (BinaryOp::And, false) => Ok(false),
        (BinaryOp::Or, true) => Ok(true),
        _ => operand(1),
    }
}

/// `IN`: whether the first argument exactly equals one of the others, looked at in order;
/// `Err(i)` if argument `i` is an error met first.
fn member(refs: &[Ref<'_>]) -> Result<bool, usize> {
    let Some((subject, items)) = refs.split_first() else {
        return Ok(false);
    };
    if matches!(subject, Ref::Error(_)) {
        return Err(0);
    }
    let subject = subject.to_value();
    for (i, item) in items.iter().enumerate() {
        if matches!(item, Ref::Error(_)) {
            return Err(i + 1);
        }
        if ops::exactly_equal(&subject, &item.to_value()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `CASE`: the index of the argument that is the result (a `THEN`, the `ELSE`, or an error met
/// on the way: `Err`).
fn case(refs: &[Ref<'_>], with_subject: bool) -> Result<usize, usize> {
    let start = usize::from(with_subject);
    let subject = if with_subject {
        match refs.first() {
            Some(Ref::Error(_)) => return Err(0),
            s => s.map(|s| s.to_value()),
        }
    } else {
        None
    };
    let branches = (refs.len() - start - 1) / 2;
    for b in 0..branches {
        let when = start + 2 * b;
        let hit = match refs[when] {
            Ref::Error(_) => return Err(when),
            w => match &subject {
                Some(s) => ops::exactly_equal(s, &w.to_value()),
                None => w == Ref::Bool(true),
            },
        };
        if hit {
            return Ok(when + 1);
        }
    }
    Ok(refs.len() - 1)
}

/// Everything that fails on its first error argument.
fn apply(operator: Operator, refs: &[Ref<'_>]) -> Result<Value, EvalError> {
    if let Some(compared) = compare_numbers(operator, refs) {
        return compared;
    }
    let v = values(refs);
    let arg = |i: usize| v.get(i).unwrap_or(&Value::Undefined);
    Ok(match operator {
        Operator::Binary(BinaryOp::TopicMatch) => match (arg(0), arg(1)) {
            (Value::Str(t), Value::Str(f)) => Value::Bool(weir_types::topic::matches(f, t)),
            _ => Value::Bool(false),
        },
        Operator::Binary(
            op @ (BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge),
        ) => Value::Bool(ops::compare(op, arg(0), arg(1))?),
        Operator::Binary(BinaryOp::And | BinaryOp::Or) | Operator::In { .. } | Operator::Case { .. } => {
            unreachable!("handled before: they stop at their own errors")
        }
        Operator::Binary(op) => ops::arithmetic(op, arg(0), arg(1))?,
        Operator::Not => Value::Bool(ops::not(arg(0))),
        Operator::Negate => ops::negate(arg(0))?,
        Operator::List => Value::List(v.into_vec()),
        Operator::Range => range(arg(0), arg(1))?,
        Operator::TopicLevel => topic_level(arg(0), arg(1))?,
        Operator::PayloadPath => match arg(1) {
            Value::Str(p) => {
                let steps: Vec<Step> = p.split('.').map(Step::Key).collect();
                path::get(arg(0), &steps, true)?
            }
            other => functions::call("payload", std::slice::from_ref(other))?,
        },
        Operator::Flag => match arg(1) {
            Value::Str(f) => path::get(arg(0), &[Step::Key(f)], false)?,
            other => functions::call("flag", std::slice::from_ref(other))?,
        },
    })
}

/// A comparison of two numbers, the common filter, done in place without building values;
/// `None` for anything else.
fn compare_numbers(operator: Operator, refs: &[Ref<'_>]) -> Option<Result<Value, EvalError>> {
    let (
        Operator::Binary(
            op @ (BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge),
        ),
        [a, b],
    ) = (operator, refs)
    else {
        return None;
    };
    let ord = match (a, b) {
        (Ref::Int(x), Ref::Int(y)) => x.cmp(y),
        (Ref::Int(_) | Ref::Float(_), Ref::Int(_) | Ref::Float(_)) => {
            number(*a).partial_cmp(&number(*b)).unwrap_or(std::cmp::Ordering::Equal)
        }
        _ => return None,
    };
    Some(ops::holds(op, ord).map(Value::Bool))
}

/// `[a..b]`: the integers from `a` to `b`, at most a million of them.
fn range(from: &Value, to: &Value) -> Result<Value, EvalError> {
    let (from, to) = (index(from)?, index(to)?);
    if to.saturating_sub(from) > 1_000_000 {
        return Err(EvalError::BadArgument("range literal too large".into()));
    }
    Ok(Value::List((from..=to).map(Value::Int).collect()))
}

/// Level `n` (from 1) of a topic; undefined past its last level.
fn topic_level(topic: &Value, n: &Value) -> Result<Value, EvalError> {
    Ok(match (topic, n) {
        (Value::Str(t), Value::Int(n)) => usize::try_from(*n)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| t.split('/').nth(i))
            .map_or(Value::Undefined, |l| Value::Str(l.to_string())),
        (_, Value::Int(_)) => Value::Undefined,
        (_, other) => {
            let shown = other.to_json().unwrap_or_default();
            let detail = format!("topic(N): the level N must be an integer, not {shown}");
            return Err(EvalError::function_argument("topic", detail).with_arguments(std::slice::from_ref(n)));
        }
    })
}

fn number(r: Ref<'_>) -> f64 {
    match r {
        Ref::Int(i) => i as f64,
        Ref::Float(f) => f,
        _ => f64::NAN,
    }
}

/// An index or range bound, which must be an integer.
fn index(v: &Value) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(EvalError::BadArgument(format!("an index must be an integer, got {}", ops::kind(other)))),
    }
}

/// One step of a path as compiled: keys are known, indexes come from arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StepSpec {
    Key(String),
    /// Takes one argument.
    Index,
    /// `[-0]` in an `AS` target.
    Append,
    /// Takes two arguments.
    Range,
}

/// The steps with their index arguments filled in.
fn steps<'a>(specs: &'a [StepSpec], indexes: &[Ref<'_>]) -> Result<SmallVec<[Step<'a>; 4]>, EvalError> {
    let mut args = indexes.iter().map(|r| index(&r.to_value()));
    let mut next = || args.next().unwrap_or(Ok(0));
    specs
        .iter()
        .map(|s| {
            Ok(match s {
                StepSpec::Key(k) => Step::Key(k),
                StepSpec::Index => Step::Index(next()?),
                StepSpec::Append => Step::Append,
                StepSpec::Range => Step::Range(next()?, next()?),
            })
        })
        .collect()
}

/// `base.a[i]...`: arguments `base, indexes...`. With `strict`, a base that is text but not
/// JSON is an error (the payload's rule).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PathUdf {
    steps: Vec<StepSpec>,
    strict: bool,
    signature: Signature,
}

impl PathUdf {
    pub fn udf(steps: Vec<StepSpec>, strict: bool) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(PathUdf { steps, strict, signature: any_arguments() }))
    }
}

/// What a path found: a value of the input, passed on as it is, or a value made on the way.
enum Found<'a> {
    Read(Ref<'a>),
    Made(Result<Value, EvalError>),
}

/// Follows keys and indexes through encoded maps and lists in place; anything else (text to
/// decode, ranges, nothing found) goes through [`path::get`] on a decoded value.
fn walk<'a>(current: Ref<'a>, steps: &[Step], strict: bool) -> Found<'a> {
    let Some((step, rest)) = steps.split_first() else {
        return Found::Read(current);
    };
    let next = match (step, current) {
        (Step::Key(k), Ref::Map(m)) => variant::entries(m).find(|(key, _)| key == k).map(|(_, v)| v),
        (Step::Index(i), Ref::List(l)) => {
            let count = variant::elements(l).count();
            path::position(count, *i).and_then(|p| variant::elements(l).nth(p))
        }
        (_, r) => return Found::Made(path::get(&r.to_value(), steps, strict)),
    };
    match next {
        Some(v) => walk(variant::read(v), rest, false),
        None => Found::Made(path::get(&Value::Undefined, rest, false)),
    }
}

impl ScalarUDFImpl for PathUdf {
    fn name(&self) -> &str {
        "path"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        by_row(&args, true, |refs, out| match steps(&self.steps, refs.get(1..).unwrap_or_default()) {
            Ok(steps) => match walk(refs.first().copied().unwrap_or(Ref::Undefined), &steps, self.strict) {
                Found::Read(r) => out.push_ref(r),
                Found::Made(r) => out.push_result(r),
            },
            Err(e) => out.push_error(&e),
        })
    }
}

/// An `AS` target below its root: arguments `current value of the root, new value, indexes...`.
/// With `decode`, a current value that is JSON text is decoded first, so that
/// `SELECT *, 1 AS payload.x` patches the payload's object (EMQX does the same).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PutUdf {
    steps: Vec<StepSpec>,
    decode: bool,
    signature: Signature,
}

impl PutUdf {
    pub fn udf(steps: Vec<StepSpec>, decode: bool) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(PutUdf { steps, decode, signature: any_arguments() }))
    }
}

impl ScalarUDFImpl for PutUdf {
    fn name(&self) -> &str {
        "put"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        by_row(&args, true, |refs, out| {
            let mut target = refs.first().map_or(Value::Undefined, |r| r.to_value());
            if self.decode {
                if let Some(decoded) = target.as_bytes().and_then(Value::from_json) {
                    target = decoded;
                }
            }
            let new = refs.get(1).map_or(Value::Undefined, |r| r.to_value());
            match steps(&self.steps, refs.get(2..).unwrap_or_default()) {
                Ok(steps) => {
                    path::put(&mut target, &steps, new);
                    out.push(&target);
                }
                Err(e) => out.push_error(&e),
            }
        })
    }
}
