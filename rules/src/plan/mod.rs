//! Rules compiled onto Apache DataFusion and run on micro-batches of messages.
//!
//! A rule is compiled once per input shape (the column names of a publish, or of one event
//! kind): its expressions become DataFusion logical expressions over the batch's columns, calls
//! to scalar UDFs that carry EMQX's semantics, then physical expressions. A batch of messages
//! becomes one Arrow record batch; each physical expression adds one column to it; the WHERE
//! column picks the rows; the output is a record batch with one column per top-level key of the
//! JSON-shaped output row.
//!
//! - `variant`: the column encoding of EMQX's dynamic values (and of per-row errors).
//! - `udf`: the function catalogue and the operators as DataFusion UDFs.
//! - `compile`: rule syntax to DataFusion expressions, with EMQX's name scoping, into `stage`s.
//! - `input`: input rows to the batch, the payload decoded once per message (`payload`: the
//!   keys a rule reads, straight into their columns' encoding).
//! - [`publish_batch`]: the input of a batch of published messages, built straight from them.
//!
//! FOREACH runs in two stages: the bindings and WHERE on the messages, then INCASE and DO on a
//! batch with one row per element (the message's columns taken for each of its elements).

mod compile;
mod input;
mod payload;
pub mod publish_batch;
mod stage;
pub(crate) mod udf;
pub(crate) mod variant;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::{Field as ArrowField, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::DataFusionError;
use parking_lot::Mutex;
use weir_connectors::row::RowBatch;

use self::compile::Planner;
pub(crate) use self::input::nulls;
pub use self::input::Input;
use self::input::{PayloadColumns, Reads};
use self::stage::{Clauses, Stage};
use self::variant::{Builder, Cells, Ref};
use crate::ast::{Expr, Projection, Rule};
use crate::value::Value;
use crate::{Clause, EvalError, Failure};

/// What a rule made of one input row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// WHERE was not true (EMQX counts it as `failed.no_result`).
    NoMatch,
    /// An error (EMQX: `failed.exception`); the rule goes on with the next row.
    Failed(Failure),
    /// Its output rows in [`BatchOutcome::output`]: one for SELECT, any number for FOREACH.
    Rows(Range<usize>),
}

/// A batch's outcome: per input row, and the output rows, JSON-shaped (one column per
/// top-level key), in input order.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Each input row's outcome, in order.
    pub rows: Vec<RowOutcome>,
    /// Several batches when the input had several shapes (publishes and events).
    pub output: Vec<RecordBatch>,
}

impl BatchOutcome {
    /// `rows` rows that all failed with `error`, and no output.
    pub fn failed(rows: usize, error: Failure) -> BatchOutcome {
        BatchOutcome { rows: vec![RowOutcome::Failed(error); rows], output: Vec::new() }
    }

    /// The batch holding output row `i`, and the row's place in it.
    fn locate(&self, mut i: usize) -> Option<(&RecordBatch, usize)> {
        for batch in &self.output {
            if i < batch.num_rows() {
                return Some((batch, i));
            }
            i -= batch.num_rows();
        }
        None
    }

    /// Output row `i`'s fields, read in place.
    fn fields(&self, i: usize) -> Option<impl Iterator<Item = (&str, Ref<'_>)>> {
        let (batch, row) = self.locate(i)?;
        let names = batch.schema_ref().fields().iter().map(|f| f.name().as_str());
        Some(names.zip(batch.columns()).map(move |(name, column)| (name, Cells::of_array(column.as_ref()).read(row))))
    }

    /// Output row `i` as a map value.
    pub fn value(&self, i: usize) -> Value {
        match self.fields(i) {
            Some(fields) => Value::Map(fields.map(|(k, v)| (k.to_string(), v.to_value())).collect()),
            None => Value::Undefined,
        }
    }

    /// Every output row as a JSON object, added to `rows` without building their values: the
    /// form sinks take. `undefined` fields are left out. Each batch's keys are quoted, and its columns' readers
    /// made, once for all its rows.
    pub fn write_json_rows(&self, rows: &mut RowBatch) {
        for batch in &self.output {
            let columns: Vec<(Vec<u8>, Cells)> = batch
                .schema_ref()
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(f, c)| (variant::quoted_key(f.name()), Cells::of_array(c.as_ref())))
                .collect();
            for row in 0..batch.num_rows() {
                rows.push_with(|out| {
                    variant::write_json_object_quoted(columns.iter().map(|(k, c)| (k.as_slice(), c.read(row))), out)
                });
            }
        }
    }

    /// The output rows in `range` as map values.
    pub fn values(&self, range: Range<usize>) -> Vec<Value> {
        range.map(|i| self.value(i)).collect()
    }
}

/// A rule compiled for one input shape.
struct Program {
    used: Vec<bool>,
    payload: PayloadColumns,
    input_schema: SchemaRef,
    first: Stage,
    output_schema: SchemaRef,
    foreach: Option<Foreach>,
}

/// FOREACH's second stage.
struct Foreach {
    /// The first stage's column holding the collection.
    collection: usize,
    /// The first stage's columns plus the element's.
    schema: SchemaRef,
    each: Stage,
}

/// The output's schema: each key with the type of the column that holds it.
fn output_schema(output: &[(String, usize)], all: &Schema) -> SchemaRef {
    let fields: Vec<ArrowField> =
        output.iter().map(|(k, c)| ArrowField::new(k, all.field(*c).data_type().clone(), true)).collect();
    Arc::new(Schema::new(fields))
}

impl Program {
    fn compile(rule: &Rule, input: &Schema) -> Result<Program, DataFusionError> {
        let mut planner = Planner::new(rule, input);
        let (first, foreach, output) = match &rule.projection {
            Projection::Select(fields) => {
                let (columns, output) = planner.select(fields, &[]);
                let selected: compile::Layer =
                    output.iter().map(|(k, c)| (k.clone(), compile::Bound::Column(*c))).collect();
                let filter = planner.condition(rule.filter.as_ref(), &[&selected]);
                (planner.stage(columns, filter, Clauses::Select, output.clone())?, None, output)
            }
            Projection::Foreach { bindings, each, incase } => {
                let compile::Bindings { scope: aliases, selected, columns: mut checks, collection } =
                    planner.bindings(bindings);
                checks.push(collection);
                let filter = planner.condition(rule.filter.as_ref(), &[&aliases]);
                let first = planner.stage(checks, filter, Clauses::Foreach, Vec::new())?;
                let element = planner.add_filled();
                let mut scope = aliases;
                scope.insert(Planner::element_name(bindings), compile::Bound::Column(element));
                let schema = planner.schema();
                let incase = planner.condition(incase.as_ref(), &[&scope]);
                let (columns, output) = if each.is_empty() {
                    (Vec::new(), planner.everything(&selected, &scope))
                } else {
                    planner.select(each, &[&scope])
                };
                let each = planner.stage(columns, incase, Clauses::Each, output.clone())?;
                (first, Some(Foreach { collection, schema, each }), output)
            }
        };
        let (payload, used) = (planner.payload().clone(), planner.used().to_vec());
        let input_schema = input::schema(input, &payload);
        Ok(Program {
            used,
            payload,
            input_schema,
            first,
            output_schema: output_schema(&output, &planner.schema()),
            foreach,
        })
    }

    fn reads(&self) -> Reads<'_> {
        Reads { used: &self.used, payload: &self.payload, schema: &self.input_schema }
    }

    /// Runs on `rows` of `input` (all if `None`).
    fn run(&self, input: &Input, rows: Option<&UInt32Array>, out: &mut BatchOutcome) -> Result<(), DataFusionError> {
        let batch = execute(&self.first, input::batch(input, rows, &self.reads())?)?;
        let decisions = decide(&self.first, &batch);
        match &self.foreach {
            None => self.select(&batch, &decisions, out),
            Some(foreach) => self.foreach(foreach, &batch, &decisions, out),
        }
    }

    /// SELECT: one output row per kept message.
    fn select(
        &self,
        batch: &RecordBatch,
        decisions: &[Decision],
        out: &mut BatchOutcome,
    ) -> Result<(), DataFusionError> {
        let mut next = 0;
        for d in decisions {
            out.rows.push(match d {
                Decision::Keep => {
                    next += 1;
                    RowOutcome::Rows(next - 1..next)
                }
                Decision::Skip => RowOutcome::NoMatch,
                Decision::Fail(e) => RowOutcome::Failed(e.clone()),
            });
        }
        let keep: Vec<bool> = decisions.iter().map(|d| matches!(d, Decision::Keep)).collect();
        out.output.push(self.output(&self.first, batch, &keep)?);
        Ok(())
    }

    /// FOREACH: one row per element of the kept messages' collections, through INCASE and DO.
    fn foreach(
        &self,
        foreach: &Foreach,
        batch: &RecordBatch,
        decisions: &[Decision],
        out: &mut BatchOutcome,
    ) -> Result<(), DataFusionError> {
        let first_row = out.rows.len();
        let (parents, exploded) = explode(foreach, batch, decisions, out)?;
        let exploded = execute(&foreach.each, exploded)?;
        let per_element = decide(&foreach.each, &exploded);
        // A failing element fails its message, and none of that message's rows go out.
        for (parent, d) in parents.values().iter().zip(&per_element) {
            let outcome = &mut out.rows[first_row + *parent as usize];
            if let (Decision::Fail(e), RowOutcome::Rows(_)) = (d, &outcome) {
                *outcome = RowOutcome::Failed(e.clone());
            }
        }
        let mut next = 0;
        let mut keep = Vec::with_capacity(per_element.len());
        for (parent, d) in parents.values().iter().zip(&per_element) {
            let outcome = &mut out.rows[first_row + *parent as usize];
            let kept = matches!(d, Decision::Keep) && matches!(outcome, RowOutcome::Rows(_));
            if let (true, RowOutcome::Rows(range)) = (kept, outcome) {
                if range.start == range.end {
                    *range = next..next;
                }
                range.end += 1;
                next += 1;
            }
            keep.push(kept);
        }
        out.output.push(self.output(&foreach.each, &exploded, &keep)?);
        Ok(())
    }

    /// The kept rows' output columns.
    fn output(&self, stage: &Stage, batch: &RecordBatch, keep: &[bool]) -> Result<RecordBatch, DataFusionError> {
        let mask = BooleanArray::from(keep.to_vec());
        let kept = keep.iter().filter(|k| **k).count();
        let columns = stage
            .output
            .iter()
            .map(|(_, c)| {
                let column = batch.column(*c);
                if kept == keep.len() {
                    Ok(column.clone())
                } else {
                    filter(column.as_ref(), &mask)
                }
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        Ok(RecordBatch::try_new_with_options(self.output_schema.clone(), columns, &rows_of(kept))?)
    }
}

/// The FOREACH input: one row per element of each kept message's collection, with the
/// message's columns and the element; returns it with each row's message (its parent). The
/// outcome of each message is pushed to `out` (kept ones get their rows later).
fn explode(
    foreach: &Foreach,
    batch: &RecordBatch,
    decisions: &[Decision],
    out: &mut BatchOutcome,
) -> Result<(UInt32Array, RecordBatch), DataFusionError> {
    let collection = cells(batch, foreach.collection);
    let mut parents = Vec::new();
    let mut elements = Builder::with_capacity(batch.num_rows());
    for (row, d) in decisions.iter().enumerate() {
        out.rows.push(match d {
            Decision::Skip => RowOutcome::NoMatch,
            Decision::Fail(e) => RowOutcome::Failed(e.clone()),
            Decision::Keep => {
                if let Ref::List(list) = collection.read(row) {
                    for e in variant::elements(list) {
                        parents.push(row as u32);
                        elements.push_encoded(e);
                    }
                }
                RowOutcome::Rows(0..0)
            }
        });
    }
    let parents = UInt32Array::from(parents);
    // Input columns the rule never reads are all null: no need to copy them per element.
    let each_element = |c: &ArrayRef| match c.null_count() == c.len() {
        true => Ok(nulls(c.data_type(), parents.len())),
        false => take(c, &parents, None),
    };
    let mut columns = batch.columns().iter().map(each_element).collect::<Result<Vec<_>, _>>()?;
    columns.push(elements.finish());
    let exploded = RecordBatch::try_new_with_options(foreach.schema.clone(), columns, &rows_of(parents.len()))?;
    Ok((parents, exploded))
}

fn rows_of(n: usize) -> RecordBatchOptions {
    RecordBatchOptions::new().with_row_count(Some(n))
}

/// Adds each step's column to the batch.
fn execute(stage: &Stage, mut batch: RecordBatch) -> Result<RecordBatch, DataFusionError> {
    for step in &stage.steps {
        let n = batch.num_rows();
        let column = step.expr.evaluate(&batch)?.into_array(n)?;
        let mut columns = batch.columns().to_vec();
        columns.push(column);
        batch = RecordBatch::try_new_with_options(step.schema.clone(), columns, &rows_of(n))?;
    }
    Ok(batch)
}

fn cells(batch: &RecordBatch, column: usize) -> Cells<'_> {
    batch.columns().get(column).map_or(Cells::Constant(Ref::Undefined), |c| Cells::of_array(c.as_ref()))
}

/// What a stage decided for a row.
enum Decision {
    Keep,
    Skip,
    Fail(Failure),
}

fn decide(stage: &Stage, batch: &RecordBatch) -> Vec<Decision> {
    let checks: Vec<Cells> = stage.checks.iter().map(|c| cells(batch, *c)).collect();
    let condition = stage.filter.map(|c| cells(batch, c));
    (0..batch.num_rows())
        .map(|row| {
            let in_clause = |clause| move |error| Failure { clause, error };
            let failed = || checks.iter().find_map(|c| c.read(row).error()).map(in_clause(stage.clauses.checks()));
            let passes = || match condition {
                None => Ok(true),
                Some(c) => match c.read(row) {
                    r @ Ref::Error(_) => {
                        Err(in_clause(stage.clauses.filter())(r.error().unwrap_or(EvalError::DecodeJson)))
                    }
                    r => Ok(r == Ref::Bool(true)),
                },
            };
            let decided = if stage.clauses.filter_first() {
                passes().and_then(|p| failed().map_or(Ok(p), Err))
            } else {
                failed().map_or_else(passes, Err)
            };
            match decided {
                Ok(true) => Decision::Keep,
                Ok(false) => Decision::Skip,
                Err(e) => Decision::Fail(e),
            }
        })
        .collect()
}

/// A program, or why it could not be planned.
type Compiled<T> = Arc<Result<T, String>>;

/// Programs by input layout (column names and types), compiled on first sight of one.
struct Programs<T> {
    by_layout: Mutex<HashMap<SchemaRef, Compiled<T>>>,
}

impl<T> Default for Programs<T> {
    fn default() -> Self {
        Programs { by_layout: Mutex::default() }
    }
}

impl<T> Programs<T> {
    fn get(&self, layout: &SchemaRef, compile: impl FnOnce(&Schema) -> Result<T, DataFusionError>) -> Compiled<T> {
        let mut by_layout = self.by_layout.lock();
        if let Some(p) = by_layout.get(layout) {
            return p.clone();
        }
        let compiled = Arc::new(compile(layout).map_err(|e| e.to_string()));
        by_layout.insert(layout.clone(), compiled.clone());
        compiled
    }
}

fn planning_failed(message: &str) -> EvalError {
    EvalError::BadArgument(format!("the rule could not be planned: {message}"))
}

fn selection(rows: Option<&[u32]>) -> Option<UInt32Array> {
    rows.map(|r| UInt32Array::from(r.to_vec()))
}

/// A rule as it runs: compiled for each input shape it meets.
pub struct CompiledRule {
    rule: Rule,
    programs: Programs<Program>,
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule").field("rule", &self.rule).finish_non_exhaustive()
    }
}

impl CompiledRule {
    /// A rule to compile, once per input shape, on first use.
    pub fn new(rule: Rule) -> CompiledRule {
        CompiledRule { rule, programs: Programs::default() }
    }

    /// Which columns of inputs laid out as `layout` the rule reads (the payload too when it
    /// reads keys of it); all of them if it cannot be planned.
    pub fn reads(&self, layout: &SchemaRef) -> Vec<bool> {
        let program = self.programs.get(layout, |layout| Program::compile(&self.rule, layout));
        let Ok(p) = program.as_ref() else {
            return vec![true; layout.fields().len()];
        };
        let payload = layout.fields().iter().position(|f| f.name() == "payload");
        let mut reads = p.used.clone();
        if let (Some(at), false) = (payload, p.payload == PayloadColumns::None) {
            reads[at] = true;
        }
        reads
    }

    /// Runs the rule on `rows` of `input` (all of them if `None`), whose FROM matched.
    pub fn run(&self, input: &Input, rows: Option<&[u32]>) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        let program = self.programs.get(input.schema(), |layout| Program::compile(&self.rule, layout));
        let selected = selection(rows);
        let done = match program.as_ref() {
            Ok(p) => p.run(input, selected.as_ref(), &mut out).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        if let Err(e) = done {
            let n = rows.map_or(input.len(), <[u32]>::len);
            out = BatchOutcome::failed(n, Failure { clause: Clause::Select, error: planning_failed(&e) });
        }
        out
    }
}

/// Expressions read in a message's scope alone (a JOIN's key; a window's WHERE, grouping keys
/// and aggregate arguments), compiled like a rule.
pub struct CompiledExprs {
    rule: Rule,
    exprs: Vec<Expr>,
    programs: Programs<ExprsProgram>,
}

impl std::fmt::Debug for CompiledExprs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledExprs").field("exprs", &self.exprs).finish_non_exhaustive()
    }
}

struct ExprsProgram {
    used: Vec<bool>,
    payload: PayloadColumns,
    input_schema: SchemaRef,
    stage: Stage,
    columns: Vec<usize>,
}

impl CompiledExprs {
    /// `rule` gives the payload keys to decode; `exprs` are read in its message scope.
    pub fn new(rule: &Rule, exprs: Vec<Expr>) -> CompiledExprs {
        CompiledExprs { rule: rule.clone(), exprs, programs: Programs::default() }
    }

    /// Per row of `rows` of `input` (all if `None`), each expression's value or error.
    pub fn run(&self, input: &Input, rows: Option<&[u32]>) -> Vec<Vec<Result<Value, EvalError>>> {
        let program = self.programs.get(input.schema(), |layout| {
            let mut planner = Planner::new(&self.rule, layout);
            let exprs: Vec<&Expr> = self.exprs.iter().collect();
            let columns = planner.message_exprs(&exprs);
            let stage = planner.stage(Vec::new(), None, Clauses::Select, Vec::new())?;
            let (payload, used) = (planner.payload().clone(), planner.used().to_vec());
            let input_schema = input::schema(layout, &payload);
            Ok(ExprsProgram { used, payload, input_schema, stage, columns })
        });
        let selected = selection(rows);
        let batch = match program.as_ref() {
            Ok(p) => {
                let reads = Reads { used: &p.used, payload: &p.payload, schema: &p.input_schema };
                input::batch(input, selected.as_ref(), &reads)
                    .map_err(DataFusionError::from)
                    .and_then(|b| execute(&p.stage, b))
                    .map(|b| (p, b))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.clone()),
        };
        let n = rows.map_or(input.len(), <[u32]>::len);
        match batch {
            Ok((p, batch)) => {
                let columns: Vec<Cells> = p.columns.iter().map(|c| cells(&batch, *c)).collect();
                (0..n)
                    .map(|row| {
                        let read = columns.iter().map(|c| c.read(row));
                        read.map(|r| r.error().map_or_else(|| Ok(r.to_value()), Err)).collect()
                    })
                    .collect()
            }
            Err(e) => vec![vec![Err(planning_failed(&e)); self.exprs.len()]; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::publish_batch::{Publish, PublishBatch};
    use crate::value::Columns;
    use weir_types::QoS;

    /// The same publishes as a natively typed input and as maps give the same outcomes, so
    /// the native comparison kernels agree with EMQX's operators.
    #[test]
    fn typed_and_variant_inputs_agree() {
        let publishes: Vec<Publish> = [("t/1", QoS::AtMostOnce), ("t/2", QoS::AtLeastOnce), ("u/1", QoS::ExactlyOnce)]
            .into_iter()
            .map(|(topic, qos)| Publish {
                topic,
                payload: br#"{"x": 1}"#,
                qos,
                clientid: Some("c"),
                retain: false,
                properties: None,
                timestamp_ms: 7,
            })
            .collect();
        let mut batch = PublishBatch::new("n", &[]);
        publishes.iter().for_each(|p| batch.push(p));
        let typed = batch.finish();
        let maps: Vec<Columns> = (0..typed.len()).map(|i| typed.row(i)).collect();
        let variant = Input::from_rows(&maps.iter().collect::<Vec<_>>()).remove(0);
        assert_ne!(typed.schema(), variant.schema(), "one input is typed, the other is not");
        for sql in [
            r##"SELECT qos >= 1 AS b, topic = 't/2' AS t FROM "#" WHERE qos <> 1 OR topic < 'u'"##,
            r##"SELECT qos = '1' AS coerced, 1 = 1 AS same, topic FROM "#" WHERE qos > 0"##,
            r##"SELECT * FROM "#" WHERE timestamp = 7 AND topic >= 't/2'"##,
        ] {
            let rule = CompiledRule::new(crate::parse_rule(sql).unwrap());
            let (a, b) = (rule.run(&typed, None), rule.run(&variant, None));
            assert_eq!(a.rows, b.rows, "{sql}");
            assert!(a.rows.iter().any(|r| matches!(r, RowOutcome::Rows(_))), "{sql} keeps a row");
            let n = a.output.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(a.values(0..n), b.values(0..n), "{sql}");
        }
        // Only what a rule reads is built; the rest of a publish batch stays null.
        let rule = CompiledRule::new(crate::parse_rule(r##"SELECT qos FROM "#" WHERE payload.x = 1"##).unwrap());
        let layout = crate::plan::publish_batch::publish_layout();
        let reads = rule.reads(&layout);
        let read: Vec<&String> =
            layout.fields().iter().zip(&reads).filter(|(_, r)| **r).map(|(f, _)| f.name()).collect();
        assert_eq!(read, ["payload", "qos"]);
        let mut partial = PublishBatch::new("n", &reads);
        publishes.iter().for_each(|p| partial.push(p));
        let out = rule.run(&partial.finish(), None);
        let qos = |q| Value::Map([("qos".to_string(), Value::Int(q))].into());
        assert_eq!(out.values(0..3), vec![qos(0), qos(1), qos(2)]);
        let rows = CompiledRule::new(crate::parse_rule(r##"SELECT qos FROM "#" WHERE qos = 2"##).unwrap())
            .run(&typed, Some(&[1, 2]));
        assert_eq!(rows.rows, vec![RowOutcome::NoMatch, RowOutcome::Rows(0..1)], "a selection of rows");
    }
}
