//! Reference tables that rules JOIN (`JOIN devices AS d ON d.id = clientid`): rows loaded from a
//! CSV file (through DataFusion's CSV reader, types inferred) or from a database query (through
//! the connectors), indexed by every column, and replaced whole when they are refreshed, so a
//! rule sees either the old table or the new one. [`load`] keeps each configured table loaded.

pub mod load;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use datafusion::prelude::{CsvReadOptions, SessionContext};
use parking_lot::RwLock;

use crate::columnar::rows_of;
use crate::value::Value;

/// Why a table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The CSV file could not be read or parsed.
    #[error("cannot read CSV file {path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// What DataFusion's reader said.
        source: datafusion::error::DataFusionError,
    },
}

/// The rows of one table, and for each column an index from value to row.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Value>,
    /// Column → the value's text (`1` and `'1'` join alike, as `=` compares them) → first row.
    indexes: HashMap<String, HashMap<String, usize>>,
}

impl Table {
    /// A table of `rows`, indexed by each of their columns.
    pub fn new(rows: Vec<BTreeMap<String, Value>>) -> Table {
        let mut indexes: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            for (column, value) in row {
                if let Some(key) = key_of(value) {
                    indexes.entry(column.clone()).or_default().entry(key).or_insert(i);
                }
            }
        }
        Table { rows: rows.into_iter().map(Value::Map).collect(), indexes }
    }

    /// The row whose `column` equals `key`.
    pub fn lookup(&self, column: &str, key: &Value) -> Option<&Value> {
        let at = *self.indexes.get(column)?.get(&key_of(key)?)?;
        self.rows.get(at)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// The text a value joins by; `undefined` and null join nothing.
fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::Undefined | Value::Null => None,
        other => other.to_text().ok(),
    }
}

/// The loaded tables, by name, shared by every rule.
#[derive(Debug, Default)]
pub struct Tables {
    by_name: RwLock<HashMap<String, Arc<Table>>>,
}

impl Tables {
    /// The table `name`, as last loaded; `None` if it never loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Table>> {
        self.by_name.read().get(name).cloned()
    }

    /// Installs a table, replacing the previous version whole.
    pub fn set(&self, name: &str, table: Table) {
        self.by_name.write().insert(name.to_string(), Arc::new(table));
    }
}

/// Reads a CSV file with a header row; column types are inferred (integers, floats, text).
pub async fn load_csv(path: &Path) -> Result<Table, TableError> {
    let fail = |source| TableError::Csv { path: path.display().to_string(), source };
    let context = SessionContext::new();
    let location = path.to_string_lossy();
    let frame = context.read_csv(location.as_ref(), CsvReadOptions::new().has_header(true)).await.map_err(fail)?;
    let batches = frame.collect().await.map_err(fail)?;
    Ok(Table::new(rows_of(&batches)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn csv_tables_are_typed_and_indexed_by_every_column() {
        let dir = std::env::temp_dir().join(format!("weir-tables-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("devices.csv");
        std::fs::write(&path, "id,site,max_temp\ndev-1,north,30\ndev-2,south,25.5\n7,east,1\n").unwrap();
        let table = load_csv(&path).await.unwrap();
        assert_eq!(table.len(), 3);
        let row = table.lookup("id", &Value::Str("dev-2".into())).unwrap();
        assert_eq!(row.to_json().unwrap(), r#"{"id":"dev-2","max_temp":25.5,"site":"south"}"#);
        assert!(table.lookup("id", &Value::Int(7)).is_some(), "a number joins its text");
        assert!(table.lookup("id", &Value::Undefined).is_none());
        assert!(table.lookup("nope", &Value::Int(1)).is_none());
        let missing = load_csv(&dir.join("missing.csv")).await.unwrap_err().to_string();
        assert!(missing.contains("missing.csv"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
