//! What the PostgreSQL and SQLite sinks share: the two ways rows go into a database, learnt
//! once on first connecting, and a row's fields read into a table's columns. Each database's
//! own work (its queries, parameter syntax, bulk write and error codes) is its [`Database`].
//!
//! - `table = "readings"`: each field goes into the column of its name. The table's columns are
//!   read when the sink first connects (after `init_sql`); a batch writes the columns its rows
//!   have, so the others keep their defaults. A field with no column is reported once, naming
//!   the field and the table.
//! - `sql = "INSERT ... VALUES (${a}, ${b})"`: each `${field}` becomes a bound parameter, never
//!   text in the statement; the rows of a batch run in one transaction.
//!
//! A missing field is NULL. Errors in the data (a type error, a constraint) refuse the row; any
//! other error keeps the rows buffered and retries, since a missing table or a server going
//! down is for the operator to fix, not a reason to lose data.

use std::collections::HashSet;
use std::future::Future;

use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::row::Row;
use crate::sink::{CheckError, Sink, WriteError};
use crate::template::Template;

/// A table column: its name, and its type as the database names it.
pub type Column = (String, String);

/// Where a SQL sink's rows go, as configured.
pub enum Mode {
    /// Into this table, field by column.
    Table(String),
    /// Through this statement, fields as parameters.
    Template(Template),
}

impl Mode {
    /// The mode of a config that sets `table` or `sql`; exactly one of them.
    pub fn of(table: Option<&str>, sql: Option<&str>) -> Result<Mode, String> {
        match (table, sql) {
            (Some(t), None) => Ok(Mode::Table(t.to_string())),
            (None, Some(sql)) => Ok(Mode::Template(Template::parse(sql).map_err(|e| format!("sql: {e}"))?)),
            _ => Err("set exactly one of `table` (fields into columns) or `sql` (a template)".into()),
        }
    }
}

/// What is learnt from the database on first connecting.
enum Prepared {
    /// The table's columns.
    Table(Vec<Column>),
    /// The statement, with the database's parameters.
    Template(String),
}

/// A batch for the table mode, its rows' values already read into the table's columns.
pub struct TableBatch<'a> {
    /// The table's name, as configured.
    pub table: &'a str,
    /// All the table's columns.
    pub columns: &'a [Column],
    /// The columns some row of the batch has, in table order: those the write names.
    pub used: Vec<usize>,
    /// The used columns' quoted names, comma separated.
    pub names: String,
    /// Row `i`'s value for column `c`, as JSON text, at `i * columns.len() + c`; `None` where
    /// the row has no such field.
    pub values: Vec<Option<&'a str>>,
    /// The rows themselves.
    pub rows: &'a [Row],
}

impl<'a> TableBatch<'a> {
    /// Each row's values, all the table's columns.
    pub fn row_values(&self) -> std::slice::Chunks<'_, Option<&'a str>> {
        self.values.chunks(self.columns.len().max(1))
    }

    /// Each row's values for the used columns only, in order.
    pub fn used_values(&self) -> impl Iterator<Item = impl Iterator<Item = Option<&'a str>> + '_> + Clone + '_ {
        self.row_values().map(|row| self.used.iter().map(move |&c| row[c]))
    }
}

/// What PostgreSQL and SQLite each do their own way.
pub trait Database: Send + Sync + 'static {
    /// Runs a statement of the operator's own (from the config), without parameters.
    fn execute(&self, sql: &str) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// The table's columns, in order.
    fn columns(&self, table: &str) -> impl Future<Output = Result<Vec<Column>, WriteError>> + Send;

    /// The template as a statement with this database's parameters.
    fn statement(&self, template: &Template) -> impl Future<Output = Result<String, WriteError>> + Send;

    /// Writes a batch in the table mode.
    fn write_table(&self, batch: &TableBatch<'_>) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Writes rows through `statement`, each row's `template` fields bound as its parameters.
    fn write_template(
        &self,
        template: &Template,
        statement: &str,
        rows: &[Row],
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
}

/// A sink into a [`Database`]: the PostgreSQL sink and the SQLite sink are each one of these.
pub struct SqlSink<D> {
    name: String,
    db: D,
    mode: Mode,
    init_sql: Vec<String>,
    prepared: OnceCell<Prepared>,
    /// Fields already reported as having no column, so each is reported once.
    unknown_fields: Mutex<HashSet<String>>,
}

impl<D: Database> SqlSink<D> {
    /// A sink writing into `db` as `mode` says, running `init_sql` on first connecting.
    pub fn new(name: &str, db: D, mode: Mode, init_sql: Vec<String>) -> SqlSink<D> {
        SqlSink {
            name: name.to_string(),
            db,
            mode,
            init_sql,
            prepared: OnceCell::new(),
            unknown_fields: Mutex::new(HashSet::new()),
        }
    }

    /// The database, for tests that read back what was written.
    #[cfg(test)]
    pub fn db(&self) -> &D {
        &self.db
    }

    /// Runs `init_sql` and learns the table's columns or the statement's parameters, once.
    async fn prepared(&self) -> Result<&Prepared, WriteError> {
        self.prepared.get_or_try_init(|| self.prepare()).await
    }

    async fn prepare(&self) -> Result<Prepared, WriteError> {
        for sql in &self.init_sql {
            self.db.execute(sql).await.map_err(|e| WriteError::transient(format!("init_sql `{sql}`: {e}")))?;
        }
        match &self.mode {
            Mode::Table(table) => Ok(Prepared::Table(self.db.columns(table).await?)),
            Mode::Template(t) => Ok(Prepared::Template(self.db.statement(t).await?)),
        }
    }

    /// The rows' values by column, read from their JSON text, with the columns some row has.
    /// Fields with no column are reported, once each.
    fn table_batch<'a>(&self, table: &'a str, columns: &'a [Column], rows: &'a [Row]) -> TableBatch<'a> {
        let mut values = vec![None; rows.len() * columns.len()];
        // A rule writes its fields in the same order in every row: the column the field at
        // position `k` had in the last row is tried first.
        let mut guess: Vec<usize> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            for (k, (field, value)) in row.entries().enumerate() {
                let hit = guess.get(k).copied().filter(|&c| columns[c].0 == field);
                match hit.or_else(|| columns.iter().position(|(c, _)| *c == field)) {
                    Some(c) => {
                        values[i * columns.len() + c] = Some(value);
                        guess.resize(guess.len().max(k + 1), 0);
                        guess[k] = c;
                    }
                    None if self.unknown_fields.lock().insert(field.to_string()) => {
                        tracing::warn!(sink = %self.name, field = %field, table, "field `{field}` has no column in table `{table}`: it is not written");
                    }
                    None => {}
                }
            }
        }
        let used: Vec<usize> =
            (0..columns.len()).filter(|&c| values.iter().skip(c).step_by(columns.len()).any(Option::is_some)).collect();
        let names = used.iter().map(|&c| quote(&columns[c].0)).collect::<Vec<_>>().join(", ");
        TableBatch { table, columns, used, names, values, rows }
    }
}

impl<D: Database> Sink for SqlSink<D> {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        match (self.prepared().await?, &self.mode) {
            (Prepared::Table(columns), Mode::Table(table)) => {
                let batch = self.table_batch(table, columns, rows);
                match batch.used.is_empty() {
                    true => Ok(()),
                    false => self.db.write_table(&batch).await,
                }
            }
            (Prepared::Template(sql), Mode::Template(t)) => self.db.write_template(t, sql, rows).await,
            _ => Err(WriteError::transient("sink mode and prepared statement disagree")),
        }
    }

    async fn check(&self) -> Result<(), CheckError> {
        self.prepared().await?;
        Ok(self.db.execute("SELECT 1").await?)
    }
}

/// A quoted identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An error as the driver sees it: the data's (refuse the row), when the database's error code
/// says so, or the connection's (retry).
pub fn classify(e: sqlx::Error, data_error: impl Fn(&str) -> bool) -> WriteError {
    if let sqlx::Error::Database(db) = &e {
        if data_error(&db.code().unwrap_or_default()) {
            return WriteError::rejected(db.message());
        }
    }
    WriteError::transient(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_mode() {
        assert!(matches!(Mode::of(Some("t"), None), Ok(Mode::Table(t)) if t == "t"));
        assert!(matches!(Mode::of(None, Some("INSERT ${a}")), Ok(Mode::Template(_))));
        for (table, sql) in [(Some("t"), Some("INSERT")), (None, None)] {
            let err = Mode::of(table, sql).err().unwrap_or_default();
            assert!(err.contains("exactly one"), "{err}");
        }
        let err = Mode::of(None, Some("${")).err().unwrap_or_default();
        assert!(err.starts_with("sql: "), "{err}");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("temp"), "\"temp\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
