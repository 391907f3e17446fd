//! Rule values to and from Arrow arrays, where rules meet DataFusion (window aggregates,
//! reference tables).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use crate::value::Value;

/// One array for `values`, typed by what they hold: integers as Int64, numbers as Float64,
/// booleans as Boolean, anything else as its text. `undefined` and JSON null are nulls.
pub fn array_of(values: &[Value]) -> ArrayRef {
    let present = || values.iter().filter(|v| !matches!(v, Value::Undefined | Value::Null));
    if present().all(|v| matches!(v, Value::Int(_))) {
        let ints = values.iter().map(|v| if let Value::Int(i) = v { Some(*i) } else { None });
        return Arc::new(ints.collect::<Int64Array>());
    }
    if present().all(|v| matches!(v, Value::Int(_) | Value::Float(_))) {
        let floats = values.iter().map(|v| match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        });
        return Arc::new(floats.collect::<Float64Array>());
    }
    if present().all(|v| matches!(v, Value::Bool(_))) {
        let bools = values.iter().map(|v| if let Value::Bool(b) = v { Some(*b) } else { None });
        return Arc::new(bools.collect::<BooleanArray>());
    }
    let texts = values.iter().map(|v| match v {
        Value::Undefined | Value::Null => None,
        other => other.to_text().ok(),
    });
    Arc::new(texts.collect::<StringArray>())
}

/// The value at `row` of `array`; SQL NULL reads as `undefined`, as a missing value does in
/// rules. Types without a rule counterpart read as their text.
pub fn value_at(array: &dyn Array, row: usize) -> Value {
    let Ok(scalar) = ScalarValue::try_from_array(array, row) else {
        return Value::Undefined;
    };
    if scalar.is_null() {
        return Value::Undefined;
    }
    match scalar {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Int8(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::Int16(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::Int32(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::Int64(Some(i)) => Value::Int(i),
        ScalarValue::UInt8(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::UInt16(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::UInt32(Some(i)) => Value::Int(i64::from(i)),
        ScalarValue::UInt64(Some(i)) => i64::try_from(i).map_or(Value::Float(i as f64), Value::Int),
        ScalarValue::Float32(Some(f)) => Value::Float(f64::from(f)),
        ScalarValue::Float64(Some(f)) => Value::Float(f),
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Value::Str(s),
        ScalarValue::Binary(Some(b)) | ScalarValue::LargeBinary(Some(b)) => Value::from_bytes(&b),
        other => Value::Str(other.to_string()),
    }
}

/// Each row of `batches` as a map from column name to value.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<BTreeMap<String, Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let fields = schema.fields().iter().zip(batch.columns());
            rows.push(fields.map(|(f, a)| (f.name().clone(), value_at(a.as_ref(), row))).collect());
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn arrays_take_the_narrowest_type_and_values_come_back() {
        let ints = array_of(&[Value::Int(1), Value::Undefined, Value::Int(3)]);
        assert_eq!(ints.data_type(), &DataType::Int64);
        assert_eq!(value_at(ints.as_ref(), 1), Value::Undefined);
        let floats = array_of(&[Value::Int(1), Value::Float(2.5)]);
        assert_eq!(floats.data_type(), &DataType::Float64);
        assert_eq!(value_at(floats.as_ref(), 0), Value::Float(1.0));
        let text = array_of(&[Value::Int(1), Value::Str("a".into())]);
        assert_eq!(text.data_type(), &DataType::Utf8);
        assert_eq!(value_at(text.as_ref(), 0), Value::Str("1".into()));
        assert_eq!(array_of(&[Value::Bool(true)]).data_type(), &DataType::Boolean);
    }
}
