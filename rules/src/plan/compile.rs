//! A parsed rule to DataFusion: each expression becomes a DataFusion logical expression over
//! the batch's columns (calls to the UDFs of [`super::udf`]), then a physical expression.
//!
//! EMQX's scoping is resolved here, once, instead of per message: a name is looked up in the
//! SELECT's output so far, then in FOREACH's aliases and element, then in the message's columns.
//! Every field's value becomes a column of its own, so a later field or WHERE that names an
//! alias reads that column instead of computing it again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use datafusion::common::{Column, DFSchema, Result as DfResult};
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{binary_expr, Expr as DfExpr, Operator as NativeOperator, ScalarUDF};
use datafusion::physical_expr::create_physical_expr;
use datafusion::prelude::lit;

use super::input::PayloadColumns;
use super::stage::{Clauses, Stage, Step};
use super::udf::{self, Operator, OperatorUdf, PathUdf, PutUdf, StepSpec};
use super::variant;
use crate::ast::{BinaryOp, Expr, Field, Literal, Path, Rule, Segment, UnaryOp};
use crate::value::Value;
use crate::{functions, EvalError};

/// Where a name leads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Column(usize),
    Undefined,
}

/// Names in scope at one level (SELECT's output so far, FOREACH's bindings).
pub type Layer = HashMap<String, Bound>;

/// Compiles the stages of one rule for one input shape.
pub struct Planner<'r> {
    rule: &'r Rule,
    /// The input's column names, by position.
    shape: Vec<String>,
    payload: PayloadColumns,
    /// Every column so far: the input's, the decoded payload's, then computed ones.
    fields: Vec<ArrowField>,
    /// Computed columns of the current stage, not yet physical.
    pending: Vec<(usize, DfExpr)>,
    /// The input columns the rule reads or outputs: the others are not built.
    used: Vec<bool>,
}

impl<'r> Planner<'r> {
    /// A planner for inputs laid out as `input` (names and types).
    pub fn new(rule: &'r Rule, input: &Schema) -> Planner<'r> {
        let shape: Vec<String> = input.fields().iter().map(|f| f.name().clone()).collect();
        let payload = match (&rule.payload_keys, shape.iter().any(|c| c == "payload")) {
            (_, false) => PayloadColumns::None,
            (Some(keys), true) if keys.is_empty() => PayloadColumns::None,
            (Some(keys), true) => PayloadColumns::Keys(keys.clone()),
            (None, true) => PayloadColumns::Whole,
        };
        let fields = super::input::schema(input, &payload).fields().iter().map(|f| f.as_ref().clone()).collect();
        let used = vec![false; shape.len()];
        Planner { rule, shape, payload, fields, pending: Vec::new(), used }
    }

    pub fn payload(&self) -> &PayloadColumns {
        &self.payload
    }

    /// Per input column, whether the rule reads or outputs it.
    pub fn used(&self) -> &[bool] {
        &self.used
    }

    /// The schema of everything so far.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.fields.clone()))
    }

    /// Adds a column that a later stage fills by itself (FOREACH's element).
    pub fn add_filled(&mut self) -> usize {
        let index = self.fields.len();
        self.fields.push(ArrowField::new(format!("#{index}"), DataType::Binary, true));
        index
    }

    /// Adds a computed column: a variant one, a native comparison's booleans, or a copy.
    fn add(&mut self, expr: DfExpr) -> usize {
        let data_type = match &expr {
            DfExpr::BinaryExpr(_) => DataType::Boolean,
            DfExpr::Column(c) => {
                let field = self.fields.iter().find(|f| *f.name() == c.name);
                field.map_or(DataType::Binary, |f| f.data_type().clone())
            }
            _ => DataType::Binary,
        };
        let index = self.fields.len();
        self.fields.push(ArrowField::new(format!("#{index}"), data_type, true));
        self.pending.push((index, expr));
        index
    }

    /// The column holding `expr`: an input column it merely names (those hold no errors, and
    /// need no step), or a new computed one.
    fn column(&mut self, expr: DfExpr) -> usize {
        if let DfExpr::Column(c) = &expr {
            if let Some(i) = self.shape.iter().position(|name| *name == c.name) {
                return i;
            }
        }
        self.add(expr)
    }

    /// Turns the pending columns into physical steps.
    pub fn stage(
        &mut self,
        checks: Vec<usize>,
        filter: Option<usize>,
        clauses: Clauses,
        output: Vec<(String, usize)>,
    ) -> DfResult<Stage> {
        for (_, column) in &output {
            if let Some(u) = self.used.get_mut(*column) {
                *u = true;
            }
        }
        let schema = self.schema();
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let props = ExecutionProps::new();
        let context = PhysicalPlanningContext::default();
        let steps = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(index, expr)| {
                Ok(Step {
                    expr: create_physical_expr(&expr, &df_schema, &props, &context)?,
                    schema: Arc::new(Schema::new(self.fields[..=index].to_vec())),
                })
            })
            .collect::<DfResult<_>>()?;
        Ok(Stage { steps, checks, filter, clauses, output })
    }

    /// A SELECT or DO list in front of `layers`: each field a column, and the output's keys.
    pub fn select(&mut self, fields: &[Field], layers: &[&Layer]) -> (Vec<usize>, Vec<(String, usize)>) {
        let mut out = Layer::new();
        let mut columns = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            let Field::Expr { expr, alias } = field else {
                // `*`: every column of the message, the payload raw.
                for (i, name) in self.shape.iter().enumerate() {
                    out.insert(name.clone(), Bound::Column(i));
                }
                continue;
            };
            let value = {
                let inner: Vec<&Layer> = std::iter::once(&out).chain(layers.iter().copied()).collect();
                self.expr(expr, &inner)
            };
            let unranged;
            let target = match (alias, expr) {
                (Some(p), _) => Some(p),
                (None, Expr::Path(p)) => {
                    // `payload.a[1..4]` goes where `payload.a` would (EMQX's `alias/1` of a
                    // `get_range`): the range names no key of its own.
                    unranged = unranged_path(p);
                    unranged.as_ref()
                }
                _ => None,
            };
            let (key, column) = match target {
                Some(p) if p.segments.is_empty() => (p.root.clone(), self.column(value)),
                Some(p) => {
                    let current = out.get(&p.root).copied().unwrap_or(Bound::Undefined);
                    let put = self.assignment(p, current, value, layers);
                    (p.root.clone(), self.add(put))
                }
                None => {
                    let key = match expr {
                        Expr::Literal(Literal::Str(s)) => s.clone(),
                        _ => format!("_v_{}_{index}", expr_kind(expr)),
                    };
                    (key, self.column(value))
                }
            };
            out.insert(key, Bound::Column(column));
            if column >= self.shape.len() {
                columns.push(column);
            }
        }
        (columns, sorted(&out))
    }

    /// FOREACH's bindings: each alias a column, then the collection (see [`Bindings`]).
    pub fn bindings(&mut self, bindings: &[Field]) -> Bindings {
        let mut made = Bindings { scope: Layer::new(), selected: Layer::new(), columns: Vec::new(), collection: 0 };
        let Some((collection, others)) = bindings.split_last() else {
            made.collection = self.add(no_collection());
            return made;
        };
        for field in others {
            let Field::Expr { expr, alias } = field else {
                made.collection = self.add(no_collection());
                return made;
            };
            let value = self.expr(expr, &[&made.scope]);
            let column = self.add(value);
            self.select_binding(&mut made, expr, alias.is_some(), column);
            let name = alias.as_ref().map_or_else(|| "item".to_string(), |p| p.root.clone());
            made.scope.insert(name, Bound::Column(column));
            made.columns.push(column);
        }
        let Field::Expr { expr, alias } = collection else {
            made.collection = self.add(no_collection());
            return made;
        };
        let value = self.expr(expr, &[&made.scope]);
        let column = self.add(value);
        made.collection = column;
        self.select_binding(&mut made, expr, alias.is_some(), column);
        made
    }

    /// EMQX writes an unaliased path binding into the output where the path points, over the
    /// message's column (`FOREACH payload.sensors` without DO gives rows whose `payload` is
    /// `{"sensors": [...]}`).
    fn select_binding(&mut self, made: &mut Bindings, expr: &Expr, aliased: bool, column: usize) {
        let Expr::Path(p) = expr else { return };
        let Some(target) = unranged_path(p).filter(|t| !aliased && !t.segments.is_empty()) else { return };
        let current = made.selected.get(&target.root).copied().unwrap_or(Bound::Undefined);
        let value = self.bound(Bound::Column(column));
        let put = self.assignment(&target, current, value, &[&made.scope]);
        let written = self.add(put);
        made.selected.insert(target.root.clone(), Bound::Column(written));
        made.columns.push(written);
    }

    /// FOREACH's element name.
    pub fn element_name(bindings: &[Field]) -> String {
        match bindings.last() {
            Some(Field::Expr { alias: Some(p), .. }) => p.root.clone(),
            _ => "item".into(),
        }
    }

    /// A condition (WHERE, INCASE) as a column.
    pub fn condition(&mut self, e: Option<&Expr>, layers: &[&Layer]) -> Option<usize> {
        e.map(|e| {
            let value = self.expr(e, layers);
            self.add(value)
        })
    }

    /// Columns for expressions read in the message's scope alone (a JOIN's key, a window's
    /// grouping keys and aggregate arguments).
    pub fn message_exprs(&mut self, exprs: &[&Expr]) -> Vec<usize> {
        exprs
            .iter()
            .map(|e| {
                let value = self.expr(e, &[]);
                self.add(value)
            })
            .collect()
    }

    /// Output keys of a FOREACH without DO: the message's columns, then the bindings.
    pub fn everything(&self, selected: &Layer, scope: &Layer) -> Vec<(String, usize)> {
        let mut out: Layer = self.shape.iter().enumerate().map(|(i, n)| (n.clone(), Bound::Column(i))).collect();
        out.extend(selected.iter().map(|(k, v)| (k.clone(), *v)));
        out.extend(scope.iter().map(|(k, v)| (k.clone(), *v)));
        sorted(&out)
    }

    /// `current` (the target root's value so far) with `value` written at the target's path.
    fn assignment(&mut self, p: &Path, current: Bound, value: DfExpr, layers: &[&Layer]) -> DfExpr {
        let mut specs = Vec::new();
        let mut args = vec![self.bound(current), value];
        for seg in &p.segments {
            match seg {
                Segment::Key(k) => specs.push(StepSpec::Key(k.clone())),
                Segment::Index(e) if is_negative_zero(e) => specs.push(StepSpec::Append),
                Segment::Index(e) => {
                    specs.push(StepSpec::Index);
                    args.push(self.expr(e, layers));
                }
                Segment::Range(..) => return error(&EvalError::BadArgument("a range cannot be assigned to".into())),
            }
        }
        PutUdf::udf(specs, p.root == "payload").call(args)
    }

    fn lookup(&self, name: &str, layers: &[&Layer]) -> Bound {
        layers
            .iter()
            .find_map(|layer| layer.get(name).copied())
            .or_else(|| self.shape.iter().position(|c| c == name).map(Bound::Column))
            .unwrap_or(Bound::Undefined)
    }

    fn bound(&mut self, b: Bound) -> DfExpr {
        match b {
            Bound::Column(i) => {
                if let Some(u) = self.used.get_mut(i) {
                    *u = true;
                }
                DfExpr::Column(Column::new_unqualified(self.fields[i].name()))
            }
            Bound::Undefined => lit(variant::scalar(&Value::Undefined)),
        }
    }

    fn column_of(&mut self, name: &str, layers: &[&Layer]) -> DfExpr {
        self.bound(self.lookup(name, layers))
    }

    fn call(&mut self, udf: Arc<ScalarUDF>, args: &[&Expr], layers: &[&Layer]) -> DfExpr {
        let args = args.iter().map(|a| self.expr(a, layers)).collect();
        udf.call(args)
    }

    fn expr(&mut self, e: &Expr, layers: &[&Layer]) -> DfExpr {
        let op = |o| OperatorUdf::udf(o);
        match e {
            Expr::Literal(l) => lit(variant::scalar(&literal(l))),
            Expr::Path(p) => self.path(p, layers),
            Expr::Call { module: Some(m), name, .. } => error(&EvalError::UnknownFunction(format!("{m}.{name}"))),
            Expr::Call { module: None, name, args } => self.function(name, args, layers),
            Expr::Unary(UnaryOp::Neg, x) => self.call(op(Operator::Negate), &[x], layers),
            Expr::Unary(UnaryOp::Not, x) => self.call(op(Operator::Not), &[x], layers),
            Expr::Binary(o, l, r) => match self.native_comparison(*o, l, r, layers) {
                Some(native) => native,
                None => self.call(op(Operator::Binary(*o)), &[l, r], layers),
            },
            Expr::In { expr, list, negated } => {
                let args: Vec<&Expr> = std::iter::once(&**expr).chain(list).collect();
                self.call(op(Operator::In { negated: *negated }), &args, layers)
            }
            Expr::Case { operand, branches, otherwise } => {
                let mut args: Vec<DfExpr> = operand.iter().map(|o| self.expr(o, layers)).collect();
                for (when, then) in branches {
                    args.push(self.expr(when, layers));
                    args.push(self.expr(then, layers));
                }
                args.push(match otherwise {
                    Some(o) => self.expr(o, layers),
                    None => lit(variant::scalar(&Value::Undefined)),
                });
                op(Operator::Case { with_subject: operand.is_some() }).call(args)
            }
            Expr::List(items) => {
                let items: Vec<&Expr> = items.iter().collect();
                self.call(op(Operator::List), &items, layers)
            }
            Expr::Range(a, b) => self.call(op(Operator::Range), &[a, b], layers),
        }
    }

    /// A comparison of two integers or two texts that are natively typed columns (a publish's
    /// `qos`, `topic`, ...) or literals: Arrow's own kernel, whose result is EMQX's (integers
    /// compare as numbers, text byte by byte, and these columns are never undefined).
    fn native_comparison(&mut self, o: BinaryOp, l: &Expr, r: &Expr, layers: &[&Layer]) -> Option<DfExpr> {
        let operator = match o {
            BinaryOp::Eq => NativeOperator::Eq,
            BinaryOp::Ne => NativeOperator::NotEq,
            BinaryOp::Lt => NativeOperator::Lt,
            BinaryOp::Le => NativeOperator::LtEq,
            BinaryOp::Gt => NativeOperator::Gt,
            BinaryOp::Ge => NativeOperator::GtEq,
            _ => return None,
        };
        let (lt, rt) = (self.native_type(l, layers)?, self.native_type(r, layers)?);
        if lt != rt {
            return None;
        }
        let (l, r) = (self.native_operand(l, layers), self.native_operand(r, layers));
        Some(binary_expr(l, operator, r))
    }

    /// The native type of a literal or a natively typed input column (integers and text only).
    fn native_type(&self, e: &Expr, layers: &[&Layer]) -> Option<DataType> {
        match e {
            Expr::Literal(Literal::Int(_)) => Some(DataType::Int64),
            Expr::Literal(Literal::Str(_)) => Some(DataType::Utf8),
            Expr::Path(p) if p.segments.is_empty() => match self.lookup(&p.root, layers) {
                Bound::Column(i) => match self.fields[i].data_type() {
                    t @ (DataType::Int64 | DataType::Utf8) => Some(t.clone()),
                    _ => None,
                },
                Bound::Undefined => None,
            },
            _ => None,
        }
    }

    fn native_operand(&mut self, e: &Expr, layers: &[&Layer]) -> DfExpr {
        match e {
            Expr::Literal(Literal::Int(i)) => lit(*i),
            Expr::Literal(Literal::Str(s)) => lit(s.clone()),
            Expr::Path(p) => {
                let at = self.lookup(&p.root, layers);
                self.bound(at)
            }
            other => self.expr(other, layers),
        }
    }

    /// A path read. Into the message's own payload, it starts from the decoded payload columns;
    /// elsewhere from whatever the root names (text on the way is decoded).
    fn path(&mut self, p: &Path, layers: &[&Layer]) -> DfExpr {
        let payload_column = self.shape.iter().position(|c| c == "payload");
        let own_payload = p.root == "payload"
            && !p.segments.is_empty()
            && payload_column.is_some()
            && (!self.rule.payload_aliased
                || self.lookup("payload", layers) == payload_column.map_or(Bound::Undefined, Bound::Column));
        let (base, segments, strict) = if own_payload {
            let decoded_at = self.shape.len();
            match (&self.payload, p.segments.first()) {
                (PayloadColumns::Keys(keys), Some(Segment::Key(k))) => {
                    let at = keys
                        .iter()
                        .position(|key| key == k)
                        .map_or(Bound::Undefined, |i| Bound::Column(decoded_at + i));
                    (self.bound(at), &p.segments[1..], false)
                }
                _ => (self.bound(Bound::Column(decoded_at)), &p.segments[..], false),
            }
        } else {
            (self.column_of(&p.root, layers), &p.segments[..], p.root == "payload")
        };
        if segments.is_empty() {
            return base;
        }
        let mut specs = Vec::new();
        let mut args = vec![base];
        for seg in segments {
            match seg {
                Segment::Key(k) => specs.push(StepSpec::Key(k.clone())),
                Segment::Index(e) => {
                    specs.push(StepSpec::Index);
                    args.push(self.expr(e, layers));
                }
                Segment::Range(a, b) => {
                    specs.push(StepSpec::Range);
                    args.push(self.expr(a, layers));
                    args.push(self.expr(b, layers));
                }
            }
        }
        PathUdf::udf(specs, strict).call(args)
    }

    /// A function call: the context functions read the message (`topic()`, `topic(2)`,
    /// `payload('a.b')`, `clientid()`, ...), every other name is the catalogue's.
    fn function(&mut self, name: &str, args: &[Expr], layers: &[&Layer]) -> DfExpr {
        let op = |o| OperatorUdf::udf(o);
        let context = |planner: &mut Planner, column: &str, o: Operator| {
            let arg = planner.expr(&args[0], layers);
            op(o).call(vec![planner.column_of(column, layers), arg])
        };
        match (name, args.len()) {
            ("topic", 0) => self.column_of("topic", layers),
            ("topic", 1) => context(self, "topic", Operator::TopicLevel),
            ("payload", 1) => context(self, "payload", Operator::PayloadPath),
            ("flag", 1) => context(self, "flags", Operator::Flag),
            ("clientid" | "username" | "payload" | "qos" | "flags", 0) => self.column_of(name, layers),
            ("msgid", 0) => self.column_of("id", layers),
            ("clientip" | "peerhost", 0) => self.column_of("peerhost", layers),
            _ => match (functions::lookup(name), udf::catalogue(name)) {
                (Some(f), Some(udf)) => match functions::check_arity(f, args.len()) {
                    Ok(()) => {
                        let args: Vec<&Expr> = args.iter().collect();
                        self.call(udf, &args, layers)
                    }
                    Err(e) => error(&e),
                },
                _ => error(&EvalError::UnknownFunction(name.to_string())),
            },
        }
    }
}

/// The output's keys in order, with their columns.
fn sorted(out: &Layer) -> Vec<(String, usize)> {
    let ordered: BTreeMap<&String, &Bound> = out.iter().collect();
    ordered
        .into_iter()
        .filter_map(|(k, b)| match b {
            Bound::Column(c) => Some((k.clone(), *c)),
            Bound::Undefined => None,
        })
        .collect()
}

fn literal(l: &Literal) -> Value {
    match l {
        Literal::Int(i) => Value::Int(*i),
        Literal::Float(f) => Value::Float(*f),
        Literal::Str(s) => Value::Str(s.clone()),
        Literal::Bool(b) => Value::Bool(*b),
    }
}

/// A value that fails every row with `e`.
fn error(e: &EvalError) -> DfExpr {
    lit(variant::error_scalar(e))
}

fn no_collection() -> DfExpr {
    error(&EvalError::BadArgument("FOREACH needs an expression to iterate over".into()))
}

fn is_negative_zero(e: &Expr) -> bool {
    matches!(e, Expr::Unary(UnaryOp::Neg, inner) if **inner == Expr::Literal(Literal::Int(0)))
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

/// What FOREACH's bindings make.
pub struct Bindings {
    /// The names they bind, for WHERE, INCASE and DO: aliases, and the element's name.
    pub scope: Layer,
    /// Output keys that unaliased path bindings write (FOREACH without DO).
    pub selected: Layer,
    /// Columns the first stage computes for them.
    pub columns: Vec<usize>,
    /// The collection's column.
    pub collection: usize,
}

/// The key an unaliased path is written under: the path itself, or, if it ends in a range, the
/// path before the range. A range anywhere else names no key: the column gets a made-up name.
fn unranged_path(p: &Path) -> Option<Path> {
    let is_range = |s: &Segment| matches!(s, Segment::Range(..));
    let (last, before) = match p.segments.split_last() {
        Some((last, before)) => (Some(last), before),
        None => (None, &[][..]),
    };
    if before.iter().any(is_range) {
        return None;
    }
    let keep = if last.is_some_and(is_range) { before } else { &p.segments[..] };
    Some(Path { root: p.root.clone(), segments: keep.to_vec() })
}
