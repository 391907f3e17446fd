//! Rules compiled onto Apache DataFusion and run on micro-batches of messages.
//!
//! A rule is compiled once per input shape (the column names of a publish, or of one event
//! kind): its expressions become DataFusion logical expressions over the batch's columns, calls
//! to scalar UDFs that carry EMQX's semantics, then physical expressions. A batch of messages
//! becomes one Arrow record batch; each physical expression adds one column to it; the WHERE
//! column picks the rows; the output is a record batch with one column per top-level key of the
//! JSON-shaped output row.
//!
//! - [`variant`]: the column encoding of EMQX's dynamic values (and of per-row errors).
//! - [`udf`]: the function catalogue and the operators as DataFusion UDFs.
//! - `compile`: rule syntax to DataFusion expressions, with EMQX's name scoping.
//! - `input`: input rows to the batch, the payload decoded once per message.
//!
//! FOREACH runs in two stages: the bindings and WHERE on the messages, then INCASE and DO on a
//! batch with one row per element (the message's columns taken for each of its elements).

mod compile;
mod input;
pub mod udf;
pub mod variant;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BinaryArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::DataFusionError;
use parking_lot::Mutex;

use self::compile::{Planner, Stage};
use self::input::PayloadColumns;
use self::variant::{Builder, Ref};
use crate::ast::{Expr, Projection, Rule};
use crate::eval::Columns;
use crate::value::Value;
use crate::EvalError;

/// What a rule made of one input row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// WHERE was not true (EMQX counts it as `failed.no_result`).
    NoMatch,
    /// An error (EMQX: `failed.exception`); the rule goes on with the next row.
    Failed(EvalError),
    /// Its output rows in [`BatchOutcome::output`]: one for SELECT, any number for FOREACH.
    Rows(Range<usize>),
}

/// A batch's outcome: per input row, and the output rows, JSON-shaped (one column per
/// top-level key), in input order.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub rows: Vec<RowOutcome>,
    /// Several batches when the input had several shapes (publishes and events).
    pub output: Vec<RecordBatch>,
}

impl BatchOutcome {
    /// Output row `i` as a map value.
    pub fn value(&self, mut i: usize) -> Value {
        for batch in &self.output {
            if i < batch.num_rows() {
                let schema = batch.schema();
                let row = schema.fields().iter().zip(batch.columns()).map(|(f, column)| {
                    let cell = column.as_any().downcast_ref::<BinaryArray>().map_or(&[][..], |c| c.value(i));
                    (f.name().clone(), variant::read(cell).to_value())
                });
                return Value::Map(row.collect());
            }
            i -= batch.num_rows();
        }
        Value::Undefined
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

fn output_schema(output: &[(String, usize)]) -> SchemaRef {
    Arc::new(Schema::new(output.iter().map(|(k, _)| ArrowField::new(k, DataType::Binary, true)).collect::<Vec<_>>()))
}

impl Program {
    fn compile(rule: &Rule, shape: Vec<String>) -> Result<Program, DataFusionError> {
        let mut planner = Planner::new(rule, &shape);
        let input_schema = Arc::new(Schema::new(planner.schema().fields()[..planner.input_width()].to_vec()));
        let (first, foreach, output) = match &rule.projection {
            Projection::Select(fields) => {
                let (columns, output) = planner.select(fields, &[]);
                let selected: compile::Layer =
                    output.iter().map(|(k, c)| (k.clone(), compile::Bound::Column(*c))).collect();
                let filter = planner.condition(rule.filter.as_ref(), &[&selected]);
                (planner.stage(columns, filter, false, output.clone())?, None, output)
            }
            Projection::Foreach { bindings, each, incase } => {
                let (aliases, mut checks, collection) = planner.bindings(bindings);
                checks.push(collection);
                let filter = planner.condition(rule.filter.as_ref(), &[&aliases]);
                let first = planner.stage(checks, filter, false, Vec::new())?;
                let element = planner.add_filled();
                let mut scope = aliases;
                scope.insert(Planner::element_name(bindings), compile::Bound::Column(element));
                let schema = planner.schema();
                let incase = planner.condition(incase.as_ref(), &[&scope]);
                let (columns, output) = if each.is_empty() {
                    (Vec::new(), planner.everything(&scope))
                } else {
                    planner.select(each, &[&scope])
                };
                let each = planner.stage(columns, incase, true, output.clone())?;
                (first, Some(Foreach { collection, schema, each }), output)
            }
        };
        let (payload, used) = (planner.payload().clone(), planner.used().to_vec());
        Ok(Program { used, payload, input_schema, first, output_schema: output_schema(&output), foreach })
    }

    fn input(&self, rows: &[&Columns]) -> Result<RecordBatch, DataFusionError> {
        Ok(input::batch(rows, &self.used, &self.payload, &self.input_schema)?)
    }

    /// Runs on rows of this program's shape; output row numbers start at `offset`.
    fn run(&self, rows: &[&Columns], offset: usize, out: &mut BatchOutcome) -> Result<(), DataFusionError> {
        let batch = execute(&self.first, self.input(rows)?)?;
        let decisions = decide(&self.first, &batch);
        let Some(foreach) = &self.foreach else {
            let mut next = offset;
            for d in &decisions {
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
            out.output.push(self.output(&self.first, &batch, &keep)?);
            return Ok(());
        };
        // One row per element of the kept messages' collections.
        let collection = binary(&batch, foreach.collection);
        let mut parents = Vec::new();
        let mut elements = Builder::with_capacity(rows.len());
        let first_row = out.rows.len();
        for (row, d) in decisions.iter().enumerate() {
            out.rows.push(match d {
                Decision::Skip => RowOutcome::NoMatch,
                Decision::Fail(e) => RowOutcome::Failed(e.clone()),
                Decision::Keep => {
                    if let Ref::List(list) = variant::read(cell(collection, row)) {
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
        let mut columns = batch.columns().iter().map(|c| take(c, &parents, None)).collect::<Result<Vec<_>, _>>()?;
        columns.push(elements.finish());
        let exploded = RecordBatch::try_new_with_options(foreach.schema.clone(), columns, &rows_of(parents.len()))?;
        let exploded = execute(&foreach.each, exploded)?;
        let per_element = decide(&foreach.each, &exploded);
        // A failing element fails its message, and none of that message's rows go out.
        for (parent, d) in parents.values().iter().zip(&per_element) {
            let outcome = &mut out.rows[first_row + *parent as usize];
            if let (Decision::Fail(e), RowOutcome::Rows(_)) = (d, &outcome) {
                *outcome = RowOutcome::Failed(e.clone());
            }
        }
        let mut next = offset;
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

fn binary(batch: &RecordBatch, column: usize) -> Option<&BinaryArray> {
    batch.columns().get(column).and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
}

fn cell(column: Option<&BinaryArray>, row: usize) -> &[u8] {
    column.filter(|c| c.is_valid(row)).map_or(&[][..], |c| c.value(row))
}

/// What a stage decided for a row.
enum Decision {
    Keep,
    Skip,
    Fail(EvalError),
}

fn decide(stage: &Stage, batch: &RecordBatch) -> Vec<Decision> {
    let checks: Vec<Option<&BinaryArray>> = stage.checks.iter().map(|c| binary(batch, *c)).collect();
    let condition = stage.filter.map(|c| binary(batch, c));
    (0..batch.num_rows())
        .map(|row| {
            let failed = || checks.iter().find_map(|c| variant::read(cell(*c, row)).error());
            let passes = || match condition {
                None => Ok(true),
                Some(c) => match variant::read(cell(c, row)) {
                    Ref::Error(_) => Err(variant::read(cell(c, row)).error().unwrap_or(EvalError::DecodeJson)),
                    r => Ok(r == Ref::Bool(true)),
                },
            };
            let decided = if stage.filter_first {
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

/// Programs by input shape, compiled on first sight of a shape.
struct Programs<T> {
    by_shape: Mutex<HashMap<Vec<String>, Compiled<T>>>,
}

impl<T> Default for Programs<T> {
    fn default() -> Self {
        Programs { by_shape: Mutex::default() }
    }
}

impl<T> Programs<T> {
    fn get(&self, columns: &Columns, compile: impl FnOnce(Vec<String>) -> Result<T, DataFusionError>) -> Compiled<T> {
        let shape = input::shape_of(columns);
        let mut by_shape = self.by_shape.lock();
        if let Some(p) = by_shape.get(&shape) {
            return p.clone();
        }
        let compiled = Arc::new(compile(shape.clone()).map_err(|e| e.to_string()));
        by_shape.insert(shape, compiled.clone());
        compiled
    }
}

/// Runs `each` on every run of consecutive rows that share a shape.
fn by_shape<'a>(rows: &'a [&'a Columns], mut each: impl FnMut(&'a [&'a Columns])) {
    let mut start = 0;
    while start < rows.len() {
        let shape = input::shape_of(rows[start]);
        let len = rows[start..].iter().take_while(|r| input::has_shape(r, &shape)).count();
        each(&rows[start..start + len]);
        start += len;
    }
}

fn planning_failed(message: &str) -> EvalError {
    EvalError::BadArgument(format!("the rule could not be planned: {message}"))
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
    pub fn new(rule: Rule) -> CompiledRule {
        CompiledRule { rule, programs: Programs::default() }
    }

    /// Runs the rule on a batch of rows whose FROM matched.
    pub fn run(&self, rows: &[&Columns]) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        let mut produced = 0;
        by_shape(rows, |rows| {
            let program = self.programs.get(rows[0], |shape| Program::compile(&self.rule, shape));
            let (rows_before, outputs_before) = (out.rows.len(), out.output.len());
            let done = match program.as_ref() {
                Ok(p) => p.run(rows, produced, &mut out).map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            match done {
                Ok(()) => produced = out.output.iter().map(RecordBatch::num_rows).sum(),
                Err(e) => {
                    out.rows.truncate(rows_before);
                    out.output.truncate(outputs_before);
                    out.rows.extend(rows.iter().map(|_| RowOutcome::Failed(planning_failed(&e))));
                }
            }
        });
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

    /// Per row, each expression's value or error.
    pub fn run(&self, rows: &[&Columns]) -> Vec<Vec<Result<Value, EvalError>>> {
        let mut out = Vec::with_capacity(rows.len());
        by_shape(rows, |rows| {
            let program = self.programs.get(rows[0], |shape| {
                let mut planner = Planner::new(&self.rule, &shape);
                let input_schema = Arc::new(Schema::new(planner.schema().fields()[..planner.input_width()].to_vec()));
                let exprs: Vec<&Expr> = self.exprs.iter().collect();
                let columns = planner.message_exprs(&exprs);
                let stage = planner.stage(Vec::new(), None, false, Vec::new())?;
                let (payload, used) = (planner.payload().clone(), planner.used().to_vec());
                Ok(ExprsProgram { used, payload, input_schema, stage, columns })
            });
            let batch = match program.as_ref() {
                Ok(p) => input::batch(rows, &p.used, &p.payload, &p.input_schema)
                    .map_err(DataFusionError::from)
                    .and_then(|b| execute(&p.stage, b))
                    .map(|b| (p, b))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            };
            match batch {
                Ok((p, batch)) => {
                    let columns: Vec<Option<&BinaryArray>> = p.columns.iter().map(|c| binary(&batch, *c)).collect();
                    for row in 0..rows.len() {
                        let cells = columns.iter().map(|c| variant::read(cell(*c, row)));
                        out.push(cells.map(|r| r.error().map_or_else(|| Ok(r.to_value()), Err)).collect());
                    }
                }
                Err(e) => out.extend(rows.iter().map(|_| vec![Err(planning_failed(&e)); self.exprs.len()])),
            }
        });
        out
    }
}
