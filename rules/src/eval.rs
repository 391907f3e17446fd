//! Running a parsed rule on one message, with EMQX's semantics (rule SQL spec, sections 5 to 7):
//! SELECT fields left to right into an output map whose aliases later fields and WHERE can
//! read; FOREACH bindings, per-element INCASE and DO. This is the per-message core that the
//! batch engine calls.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use smallvec::SmallVec;

use crate::ast::{BinaryOp, Expr, Field, Literal, Path, Projection, Rule, Segment, UnaryOp};
use crate::path::{self, Step};
use crate::value::Value;
use crate::{functions, ops, EvalError};

/// The columns of one input message (`clientid`, `topic`, `payload` raw, ...).
pub type Columns = BTreeMap<String, Value>;

/// What an expression can read: layers of names, innermost first, the message's columns last;
/// and the message's payload, decoded at most once per evaluation, when a path first goes into it.
///
/// At most three layers exist (a SELECT's output so far, a FOREACH's aliases and element, the
/// message), so they live in an array: no allocation per field or per element.
#[derive(Clone, Copy)]
struct Scope<'a> {
    layers: [&'a Columns; MAX_LAYERS],
    len: usize,
    payload: &'a OnceCell<Option<Value>>,
    /// The only top-level payload keys the rule reads, if it reads only keys.
    payload_keys: Option<&'a [String]>,
    /// The message's raw payload, when no alias can hide it (looked up once per message);
    /// `None` also when one can, and then each read checks the layers.
    raw_payload: Option<&'a [u8]>,
    payload_aliased: bool,
}

const MAX_LAYERS: usize = 3;
static NO_COLUMNS: Columns = BTreeMap::new();

impl<'a> Scope<'a> {
    fn message(rule: &'a Rule, columns: &'a Columns, payload: &'a OnceCell<Option<Value>>) -> Scope<'a> {
        let payload_keys = rule.payload_keys.as_deref();
        let payload_aliased = rule.payload_aliased;
        let raw_payload = if payload_aliased { None } else { columns.get("payload").and_then(Value::as_bytes) };
        let layers = [columns, &NO_COLUMNS, &NO_COLUMNS];
        Scope { layers, len: 1, payload, payload_keys, raw_payload, payload_aliased }
    }

    fn layers(&self) -> &[&'a Columns] {
        &self.layers[..self.len]
    }

    /// This scope with one more layer in front.
    fn inner<'b>(&self, layer: &'b Columns) -> Scope<'b>
    where
        'a: 'b,
    {
        assert!(self.len < MAX_LAYERS, "rule scopes are at most {MAX_LAYERS} deep");
        let mut layers: [&'b Columns; MAX_LAYERS] = [&NO_COLUMNS; MAX_LAYERS];
        layers[0] = layer;
        layers[1..=self.len].copy_from_slice(self.layers());
        Scope { layers, len: self.len + 1, ..*self }
    }

    /// The message's own columns.
    fn columns(&self) -> Option<&'a Columns> {
        self.layers().last().copied()
    }
}

/// What a rule made of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// WHERE was false: no output (EMQX counts it as `failed.no_result`).
    NoMatch,
    /// A SELECT's output map.
    Row(Value),
    /// A FOREACH's outputs, one per element kept (possibly none).
    Rows(Vec<Value>),
}

/// Runs `rule` on a message whose FROM already matched.
pub fn evaluate(rule: &Rule, columns: &Columns) -> Result<Outcome, EvalError> {
    let payload = OnceCell::new();
    let message = Scope::message(rule, columns, &payload);
    match &rule.projection {
        Projection::Select(fields) => {
            let out = select(fields, &message)?;
            let Value::Map(selected) = &out else { unreachable_map() };
            if !condition(rule.filter.as_ref(), &message.inner(selected))? {
                return Ok(Outcome::NoMatch);
            }
            Ok(Outcome::Row(out))
        }
        Projection::Foreach { bindings, each, incase } => {
            let (collection_expr, aliases_exprs) = bindings.split_last().ok_or_else(no_collection)?;
            let mut aliases = Columns::new();
            for field in aliases_exprs {
                let Field::Expr { expr, alias } = field else {
                    return Err(no_collection());
                };
                let v = eval(expr, &message.inner(&aliases))?;
                let name = alias.as_ref().map_or_else(|| "item".to_string(), |p| p.root.clone());
                aliases.insert(name, v);
            }
            let Field::Expr { expr, alias } = collection_expr else {
                return Err(no_collection());
            };
            let element_name = alias.as_ref().map_or("item", |p| p.root.as_str());
            let collection = eval(expr, &message.inner(&aliases))?;
            if !condition(rule.filter.as_ref(), &message.inner(&aliases))? {
                return Ok(Outcome::NoMatch);
            }
            let Value::List(elements) = collection else {
                return Ok(Outcome::Rows(Vec::new()));
            };
            let mut rows = Vec::new();
            for element in elements {
                let mut scope = aliases.clone();
                scope.insert(element_name.to_string(), element);
                if !condition(incase.as_ref(), &message.inner(&scope))? {
                    continue;
                }
                rows.push(if each.is_empty() {
                    let mut all = columns.clone();
                    all.extend(scope);
                    Value::Map(all)
                } else {
                    select(each, &message.inner(&scope))?
                });
            }
            Ok(Outcome::Rows(rows))
        }
    }
}

/// Expressions evaluated one by one on a message, its payload decoded at most once for all of
/// them (a windowed rule's WHERE, keys and aggregate arguments; a join's key).
pub struct MessageEval<'a> {
    rule: &'a Rule,
    columns: &'a Columns,
    payload: OnceCell<Option<Value>>,
}

impl<'a> MessageEval<'a> {
    pub fn new(rule: &'a Rule, columns: &'a Columns) -> MessageEval<'a> {
        MessageEval { rule, columns, payload: OnceCell::new() }
    }

    pub fn eval(&self, e: &Expr) -> Result<Value, EvalError> {
        eval(e, &Scope::message(self.rule, self.columns, &self.payload))
    }

    /// A WHERE: absent means true; only `true` passes.
    pub fn condition(&self, e: Option<&Expr>) -> Result<bool, EvalError> {
        condition(e, &Scope::message(self.rule, self.columns, &self.payload))
    }
}

fn no_collection() -> EvalError {
    EvalError::BadArgument("FOREACH needs an expression to iterate over".into())
}

fn unreachable_map() -> ! {
    unreachable!("select() always returns a map")
}

/// A WHERE or INCASE: absent means true; only `true` passes.
fn condition(cond: Option<&Expr>, scope: &Scope) -> Result<bool, EvalError> {
    match cond {
        None => Ok(true),
        Some(e) => Ok(matches!(eval(e, scope)?, Value::Bool(true))),
    }
}

/// A SELECT (or DO) list: each field evaluated with the output so far in scope, then stored
/// under its alias, its own path, or a generated key.
fn select(fields: &[Field], scope: &Scope) -> Result<Value, EvalError> {
    let mut out = Value::Map(Columns::new());
    for (index, field) in fields.iter().enumerate() {
        let Field::Expr { expr, alias } = field else {
            // `*`: every column, the payload raw.
            if let (Value::Map(m), Some(columns)) = (&mut out, scope.columns()) {
                if m.is_empty() {
                    // Cloning the whole tree is much cheaper than inserting key by key.
                    m.clone_from(columns);
                } else {
                    m.extend(columns.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            continue;
        };
        let value = {
            let Value::Map(selected) = &out else { unreachable_map() };
            eval(expr, &scope.inner(selected))?
        };
        let target = match (alias, expr) {
            (Some(p), _) => Some(p),
            (None, Expr::Path(p)) if !p.segments.iter().any(|s| matches!(s, Segment::Range(..))) => Some(p),
            _ => None,
        };
        match target {
            Some(p) => {
                // An AS path into a selected raw payload decodes it first, keeping its siblings.
                if p.root == "payload" && !p.segments.is_empty() {
                    if let Value::Map(m) = &mut out {
                        if let Some(decoded) = m.get("payload").and_then(Value::as_bytes).and_then(Value::from_json) {
                            m.insert("payload".into(), decoded);
                        }
                    }
                }
                let steps = assignment_steps(p, scope)?;
                path::put(&mut out, &steps, value);
            }
            None => {
                let key = match expr {
                    Expr::Literal(Literal::Str(s)) => s.clone(),
                    _ => format!("_v_{}_{index}", expr_kind(expr)),
                };
                if let Value::Map(m) = &mut out {
                    m.insert(key, value);
                }
            }
        }
    }
    Ok(out)
}

/// A short name for generated output keys of unaliased expressions (EMQX's are random; always
/// alias such fields).
fn expr_kind(e: &Expr) -> &'static str {
    match e {
        Expr::Literal(_) => "const",
        Expr::Path(_) => "path",
        Expr::Call { .. } => "call",
        Expr::Unary(..) | Expr::Binary(..) => "expr",
        Expr::In { .. } => "in",
        Expr::Case { .. } => "case",
        Expr::List(_) | Expr::Range(..) => "list",
    }
}

/// The steps of an AS target, root included; `[-0]` means append.
fn assignment_steps<'p>(p: &'p Path, scope: &Scope) -> Result<SmallVec<[Step<'p>; 4]>, EvalError> {
    let mut steps = SmallVec::new();
    steps.push(Step::Key(&p.root));
    for seg in &p.segments {
        steps.push(match seg {
            Segment::Key(k) => Step::Key(k),
            Segment::Index(e) if is_negative_zero(e) => Step::Append,
            Segment::Index(e) => Step::Index(index_value(e, scope)?),
            Segment::Range(..) => return Err(EvalError::BadArgument("a range cannot be assigned to".into())),
        });
    }
    Ok(steps)
}

fn is_negative_zero(e: &Expr) -> bool {
    matches!(e, Expr::Unary(UnaryOp::Neg, inner) if **inner == Expr::Literal(Literal::Int(0)))
}

fn index_value(e: &Expr, scope: &Scope) -> Result<i64, EvalError> {
    match eval(e, scope)? {
        Value::Int(i) => Ok(i),
        other => Err(EvalError::BadArgument(format!("an index must be an integer, got {}", ops::kind(&other)))),
    }
}

/// The value of a name: the first scope layer that has it, else `undefined`.
fn lookup(name: &str, scope: &Scope) -> Value {
    scope.layers().iter().find_map(|layer| layer.get(name)).cloned().unwrap_or(Value::Undefined)
}

/// Evaluates an expression in `scope`.
fn eval(e: &Expr, scope: &Scope) -> Result<Value, EvalError> {
    Ok(match e {
        Expr::Literal(l) => match l {
            Literal::Int(i) => Value::Int(*i),
            Literal::Float(f) => Value::Float(*f),
            Literal::Str(s) => Value::Str(s.clone()),
            Literal::Bool(b) => Value::Bool(*b),
        },
        Expr::Path(p) => {
            let mut steps: SmallVec<[Step; 4]> = SmallVec::new();
            for seg in &p.segments {
                steps.push(match seg {
                    Segment::Key(k) => Step::Key(k),
                    Segment::Index(i) => Step::Index(index_value(i, scope)?),
                    Segment::Range(a, b) => Step::Range(index_value(a, scope)?, index_value(b, scope)?),
                });
            }
            if p.root == "payload" && !steps.is_empty() {
                if let Some(raw) = message_payload(scope) {
                    return match scope.payload.get_or_init(|| crate::json::decode(raw, scope.payload_keys)) {
                        Some(decoded) => path::get(decoded, &steps, false),
                        None => Err(EvalError::DecodeJson),
                    };
                }
            }
            // Only the payload itself must be JSON when a path goes into it.
            path::get(&lookup(&p.root, scope), &steps, p.root == "payload")?
        }
        Expr::Call { module: Some(m), name, .. } => return Err(EvalError::UnknownFunction(format!("{m}.{name}"))),
        Expr::Call { module: None, name, args } => {
            let values = args.iter().map(|a| eval(a, scope)).collect::<Result<SmallVec<[Value; 4]>, _>>()?;
            match context_function(name, &values, scope) {
                Some(v) => v?,
                None => functions::call(name, &values)?,
            }
        }
        Expr::Unary(UnaryOp::Neg, inner) => ops::negate(&eval(inner, scope)?)?,
        Expr::Unary(UnaryOp::Not, inner) => Value::Bool(ops::not(&eval(inner, scope)?)),
        Expr::Binary(BinaryOp::And, l, r) => {
            Value::Bool(ops::truth(&eval(l, scope)?)? && ops::truth(&eval(r, scope)?)?)
        }
        Expr::Binary(BinaryOp::Or, l, r) => Value::Bool(ops::truth(&eval(l, scope)?)? || ops::truth(&eval(r, scope)?)?),
        Expr::Binary(BinaryOp::TopicMatch, l, r) => {
            let (topic, filter) = (eval(l, scope)?, eval(r, scope)?);
            match (&topic, &filter) {
                (Value::Str(t), Value::Str(f)) => Value::Bool(crate::topic::matches(f, t)),
                _ => Value::Bool(false),
            }
        }
        Expr::Binary(
            op @ (BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge),
            l,
            r,
        ) => Value::Bool(ops::compare(*op, &eval(l, scope)?, &eval(r, scope)?)?),
        Expr::Binary(op, l, r) => ops::arithmetic(*op, &eval(l, scope)?, &eval(r, scope)?)?,
        Expr::In { expr, list, negated } => {
            let v = eval(expr, scope)?;
            let mut found = false;
            for item in list {
                if ops::exactly_equal(&v, &eval(item, scope)?) {
                    found = true;
                    break;
                }
            }
            Value::Bool(found != *negated)
        }
        Expr::Case { operand, branches, otherwise } => {
            let subject = operand.as_ref().map(|o| eval(o, scope)).transpose()?;
            for (when, then) in branches {
                let w = eval(when, scope)?;
                let hit = match &subject {
                    Some(s) => ops::exactly_equal(s, &w),
                    None => matches!(w, Value::Bool(true)),
                };
                if hit {
                    return eval(then, scope);
                }
            }
            match otherwise {
                Some(o) => eval(o, scope)?,
                None => Value::Undefined,
            }
        }
        Expr::List(items) => Value::List(items.iter().map(|i| eval(i, scope)).collect::<Result<_, _>>()?),
        Expr::Range(a, b) => {
            let (from, to) = (index_value(a, scope)?, index_value(b, scope)?);
            if to.saturating_sub(from) > 1_000_000 {
                return Err(EvalError::BadArgument("range literal too large".into()));
            }
            Value::List((from..=to).map(Value::Int).collect())
        }
    })
}

/// The raw bytes of the message's own payload, when `payload` is not shadowed by an alias.
fn message_payload<'a>(scope: &Scope<'a>) -> Option<&'a [u8]> {
    if !scope.payload_aliased {
        return scope.raw_payload;
    }
    let holder = scope.layers().iter().find(|layer| layer.contains_key("payload"))?;
    let columns = scope.columns()?;
    if !std::ptr::eq(*holder, columns) {
        return None;
    }
    columns.get("payload").and_then(Value::as_bytes)
}

/// Functions that read the message itself: `topic()`, `topic(n)`, `clientid()`, `payload()`,
/// `payload('a.b')`, ...; `None` for every other name.
fn context_function(name: &str, args: &[Value], scope: &Scope) -> Option<Result<Value, EvalError>> {
    let column = match (name, args) {
        ("topic", []) => "topic",
        ("topic", [Value::Int(n)]) => {
            let topic = lookup("topic", scope);
            let level = match &topic {
                Value::Str(t) => usize::try_from(*n)
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|i| t.split('/').nth(i))
                    .map_or(Value::Undefined, |l| Value::Str(l.to_string())),
                _ => Value::Undefined,
            };
            return Some(Ok(level));
        }
        ("payload", [Value::Str(p)]) => {
            let keys: Vec<&str> = p.split('.').collect();
            let steps: Vec<Step> = keys.iter().map(|k| Step::Key(k)).collect();
            return Some(path::get(&lookup("payload", scope), &steps, true));
        }
        ("clientid" | "username" | "payload" | "qos" | "flags", []) => name,
        ("msgid", []) => "id",
        ("clientip" | "peerhost", []) => "peerhost",
        ("flag", [Value::Str(f)]) => {
            let steps = [Step::Key(f.as_str())];
            return Some(path::get(&lookup("flags", scope), &steps, false));
        }
        _ => return None,
    };
    Some(Ok(lookup(column, scope)))
}
