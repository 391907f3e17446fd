//! What rules read: [`Input`], rows of one shape (a publish's columns, or one event kind's) as
//! variant columns, built once per batch and shared by every rule that matched; then, per
//! program, the rows it matched with the payload columns it reads, decoded once per message and
//! only for the top-level keys it names.

use std::cell::RefCell;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::payload::{decode_keys, Decoded};
use super::variant::{Builder, Cells, Ref};
use crate::path::{self, Step};
use crate::value::Columns;
use crate::value::Value;
use crate::EvalError;

/// Rows that share their column names, as columns in name order: variant columns, or natively
/// typed ones where a column's type is fixed (a publish's `qos`, `topic`, ...).
#[derive(Debug, Clone)]
pub struct Input {
    shape: Arc<[String]>,
    /// The names and types: programs are compiled per layout.
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
}

impl Input {
    /// `shape` must be sorted, as the keys of [`Columns`] are, and name `columns` in order.
    pub fn new(shape: Arc<[String]>, columns: Vec<ArrayRef>, rows: usize) -> Input {
        let fields: Vec<Field> =
            shape.iter().zip(&columns).map(|(n, c)| Field::new(n.clone(), c.data_type().clone(), true)).collect();
        Input { shape, schema: Arc::new(Schema::new(fields)), columns, rows }
    }

    /// The rows as runs of one shape each, in order.
    pub fn from_rows(rows: &[&Columns]) -> Vec<Input> {
        let mut inputs = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let first = rows[start];
            let same = |r: &&&Columns| r.len() == first.len() && r.keys().zip(first.keys()).all(|(a, b)| a == b);
            let run = &rows[start..start + rows[start..].iter().take_while(same).count()];
            let mut columns: Vec<Builder> = first.keys().map(|_| Builder::with_capacity(run.len())).collect();
            for row in run {
                for (b, v) in columns.iter_mut().zip(row.values()) {
                    b.push(v);
                }
            }
            let columns = columns.into_iter().map(Builder::finish).collect();
            inputs.push(Input::new(first.keys().cloned().collect::<Vec<_>>().into(), columns, run.len()));
            start += run.len();
        }
        inputs
    }

    /// The column names, in order.
    pub fn shape(&self) -> &Arc<[String]> {
        &self.shape
    }

    /// The columns' Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The number of rows (messages).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether it has no row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The value of column `column` in row `row`.
    pub fn value(&self, row: usize, column: usize) -> Value {
        read(self.columns.get(column), row).to_value()
    }

    /// Row `i` as columns (for what keeps rows: a window's first message per group, a join).
    pub fn row(&self, i: usize) -> Columns {
        let cells = self.columns.iter().map(|c| read(Some(c), i).to_value());
        self.shape.iter().cloned().zip(cells).collect()
    }
}

fn read(column: Option<&ArrayRef>, row: usize) -> Ref<'_> {
    column.map_or(Ref::Undefined, |c| Cells::of_array(c.as_ref()).read(row))
}

/// The decoded payload columns a program wants after the input's own.
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadColumns {
    None,
    /// One column per top-level key the rule reads (`payload.temp`, `payload.site.name`).
    Keys(Vec<String>),
    /// The whole decoded payload, when a path's first step is an index.
    Whole,
}

impl PayloadColumns {
    /// The names of the columns, which cannot clash with a message's (`#` is not in names).
    pub fn names(&self) -> Vec<String> {
        match self {
            PayloadColumns::None => Vec::new(),
            PayloadColumns::Keys(keys) => keys.iter().map(|k| format!("#payload.{k}")).collect(),
            PayloadColumns::Whole => vec!["#payload".into()],
        }
    }
}

/// A column of `n` nulls of type `t`: a slice of one made once per thread and type, as long as
/// the longest asked for. Columns no rule reads are null in every batch; made afresh, each was
/// a zeroed allocation per batch.
pub fn nulls(t: &DataType, n: usize) -> ArrayRef {
    thread_local! {
        static NULLS: RefCell<Vec<ArrayRef>> = const { RefCell::new(Vec::new()) };
    }
    NULLS.with_borrow_mut(|made| {
        let i = match made.iter().position(|c| c.data_type() == t) {
            Some(i) => i,
            None => {
                made.push(new_null_array(t, n));
                made.len() - 1
            }
        };
        if made[i].len() < n {
            made[i] = new_null_array(t, n);
        }
        made[i].slice(0, n)
    })
}

/// What a program reads of an input: the columns it uses (the others stay null) and the
/// payload columns, laid out as `schema`.
pub struct Reads<'a> {
    pub used: &'a [bool],
    pub payload: &'a PayloadColumns,
    pub schema: &'a SchemaRef,
}

/// The batch a program runs on: `rows` of `input` (all of them if `None`).
pub fn batch(input: &Input, rows: Option<&UInt32Array>, reads: &Reads) -> Result<RecordBatch, ArrowError> {
    let n = rows.map_or(input.len(), |r| r.len());
    let mut columns = Vec::with_capacity(reads.schema.fields().len());
    for (column, used) in input.columns.iter().zip(reads.used) {
        columns.push(match (used, rows) {
            (false, _) => nulls(column.data_type(), n),
            (true, None) => column.clone(),
            (true, Some(rows)) => take(column, rows, None)?,
        });
    }
    // The payload column itself may be unused (only its keys are read): take it apart.
    let payload = match (reads.payload, input.shape.iter().position(|c| c == "payload")) {
        (PayloadColumns::None, _) | (_, None) => None,
        (_, Some(p)) if reads.used[p] => Some(columns[p].clone()),
        (_, Some(p)) => Some(match rows {
            None => input.columns[p].clone(),
            Some(rows) => take(&input.columns[p], rows, None)?,
        }),
    };
    match reads.payload {
        PayloadColumns::None => {}
        PayloadColumns::Keys(keys) => columns.extend(payload_keys(payload.as_ref(), n, keys)),
        PayloadColumns::Whole => {
            let mut b = Builder::with_capacity(n);
            for row in 0..n {
                match read(payload.as_ref(), row) {
                    Ref::Str(s) => raw_whole(s.as_bytes(), &mut b),
                    Ref::Bin(raw) => raw_whole(raw, &mut b),
                    other => b.push(&other.to_value()),
                }
            }
            columns.push(b.finish());
        }
    }
    RecordBatch::try_new_with_options(reads.schema.clone(), columns, &RecordBatchOptions::new().with_row_count(Some(n)))
}

fn raw_whole(raw: &[u8], b: &mut Builder) {
    match Value::from_json(raw) {
        Some(decoded) => b.push(&decoded),
        None => b.push_error(&EvalError::DecodeJson),
    }
}

/// One column per key, each message's payload decoded once.
fn payload_keys(payload: Option<&ArrayRef>, n: usize, keys: &[String]) -> Vec<ArrayRef> {
    let mut builders: Vec<Builder> = keys.iter().map(|_| Builder::with_capacity(n)).collect();
    let (mut scratch, mut cells) = (Vec::new(), vec![None; keys.len()]);
    for row in 0..n {
        let raw = match read(payload, row) {
            Ref::Str(s) => s.as_bytes(),
            Ref::Bin(b) => b,
            other => {
                let value = other.to_value();
                for (k, b) in keys.iter().zip(&mut builders) {
                    b.push_result(path::get(&value, &[Step::Key(k)], true));
                }
                continue;
            }
        };
        scratch.clear();
        match decode_keys(raw, keys, &mut scratch, &mut cells) {
            Decoded::Object => {
                for (cell, b) in cells.iter().zip(&mut builders) {
                    match cell {
                        Some(range) => b.push_encoded(&scratch[range.clone()]),
                        None => b.push(&Value::Undefined),
                    }
                }
            }
            // JSON, but not an object: each key is read as a path would read it.
            Decoded::NotObject => {
                let decoded = Value::from_json(raw).unwrap_or(Value::Undefined);
                for (k, b) in keys.iter().zip(&mut builders) {
                    b.push_result(path::get(&decoded, &[Step::Key(k)], false));
                }
            }
            Decoded::NotJson => builders.iter_mut().for_each(|b| b.push_error(&EvalError::DecodeJson)),
        }
    }
    builders.into_iter().map(Builder::finish).collect()
}

/// The schema of an input's columns then the payload's.
pub fn schema(input: &Schema, payload: &PayloadColumns) -> SchemaRef {
    let decoded = payload.names().into_iter().map(|n| Arc::new(Field::new(n, DataType::Binary, true)));
    let fields: Vec<_> = input.fields().iter().cloned().chain(decoded).collect();
    Arc::new(Schema::new(fields))
}
