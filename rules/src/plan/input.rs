//! Input rows (a message's or an event's columns) to the Arrow batch a program reads: one
//! variant column per input column, then the payload columns the rule reads, decoded once per
//! message and only for the top-level keys the rule names.

use datafusion::arrow::array::{new_null_array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::variant::Builder;
use crate::eval::Columns;
use crate::json::Decoded;
use crate::path::{self, Step};
use crate::value::Value;
use crate::EvalError;

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

/// The input's column names, in the order a batch holds them (the maps' key order).
pub fn shape_of(columns: &Columns) -> Vec<String> {
    columns.keys().cloned().collect()
}

/// Whether `columns` has exactly the names of `shape`, in order.
pub fn has_shape(columns: &Columns, shape: &[String]) -> bool {
    columns.len() == shape.len() && columns.keys().zip(shape).all(|(a, b)| a == b)
}

/// A batch of `rows`, which all have the shape the program was compiled for, laid out as
/// `schema` says. Columns not `used` are left null (nothing reads them).
pub fn batch(
    rows: &[&Columns],
    used: &[bool],
    payload: &PayloadColumns,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    let mut builders: Vec<Option<Builder>> =
        used.iter().map(|u| u.then(|| Builder::with_capacity(rows.len()))).collect();
    for row in rows {
        // The rows have the shape: their values come in the shape's order.
        for (b, v) in builders.iter_mut().zip(row.values()) {
            if let Some(b) = b {
                b.push(v);
            }
        }
    }
    let mut columns: Vec<ArrayRef> = builders
        .into_iter()
        .map(|b| b.map_or_else(|| new_null_array(&DataType::Binary, rows.len()), Builder::finish))
        .collect();
    match payload {
        PayloadColumns::None => {}
        PayloadColumns::Keys(keys) => {
            let mut builders: Vec<Builder> = keys.iter().map(|_| Builder::with_capacity(rows.len())).collect();
            let (mut scratch, mut cells) = (Vec::new(), vec![None; keys.len()]);
            for row in rows {
                let payload = row.get("payload").unwrap_or(&Value::Undefined);
                let Some(raw) = payload.as_bytes() else {
                    for (k, b) in keys.iter().zip(&mut builders) {
                        b.push_result(path::get(payload, &[Step::Key(k)], true));
                    }
                    continue;
                };
                scratch.clear();
                match crate::json::decode_keys(raw, keys, &mut scratch, &mut cells) {
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
            columns.extend(builders.into_iter().map(Builder::finish));
        }
        PayloadColumns::Whole => {
            let mut b = Builder::with_capacity(rows.len());
            for row in rows {
                let payload = row.get("payload").unwrap_or(&Value::Undefined);
                match payload.as_bytes() {
                    Some(raw) => match Value::from_json(raw) {
                        Some(decoded) => b.push(&decoded),
                        None => b.push_error(&EvalError::DecodeJson),
                    },
                    None => b.push(payload),
                }
            }
            columns.push(b.finish());
        }
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
}
