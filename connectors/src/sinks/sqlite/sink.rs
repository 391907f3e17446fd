//! The SQLite side of a [`SqlSink`]: one writer connection, multi-row `INSERT`s, each JSON value
//! bound as its own type.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _, Sqlite as Driver};

use super::config::SqliteConfig;
use crate::row::{raw_text, Row};
use crate::sink::WriteError;
use crate::sinks::sql_common::{classify, Column, Database, Mode, SqlSink, TableBatch};
use crate::sinks::SinkError;
use crate::template::{lookup, Template};

/// How long a write waits for the connection, or for a lock held by a reader, before it counts
/// as failed (and is retried).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's limit on bound parameters per statement.
const MAX_PARAMS: usize = 32_766;

/// A statement being bound.
type Query<'q> = sqlx::query::Query<'q, Driver, SqliteArguments>;

/// The SQLite sink.
pub type SqliteSink = SqlSink<Sqlite>;

/// An SQLite database file, through one connection.
pub struct Sqlite {
    pub(super) pool: SqlitePool,
}

impl SqliteSink {
    /// A sink for `config`; the file is opened (and created) when first needed.
    pub fn open(name: &str, config: &SqliteConfig) -> Result<SqliteSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        let mode = Mode::of(config.table.as_deref(), config.sql.as_deref()).map_err(invalid)?;
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| invalid(format!("url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(ACQUIRE_TIMEOUT);
        let pool =
            SqlitePoolOptions::new().max_connections(1).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(options);
        Ok(SqlSink::new(name, Sqlite { pool }, mode, config.init_sql.clone()))
    }
}

impl Database for Sqlite {
    async fn execute(&self, sql: &str) -> Result<(), WriteError> {
        sqlx::query(AssertSqlSafe(sql.to_string())).execute(&self.pool).await.map(|_| ()).map_err(WriteError::transient)
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>, WriteError> {
        let rows = sqlx::query("SELECT name, type FROM pragma_table_info(?1)")
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| WriteError::transient(format!("table `{table}`: {e}")))?;
        if rows.is_empty() {
            return Err(WriteError::transient(format!(
                "table `{table}` does not exist: create it, or add a CREATE TABLE to init_sql"
            )));
        }
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect())
    }

    async fn statement(&self, template: &Template) -> Result<String, WriteError> {
        Ok(template.with_parameters(|n| format!("?{n}")))
    }

    async fn write_table(&self, batch: &TableBatch<'_>) -> Result<(), WriteError> {
        let mut tx = self.pool.begin().await.map_err(sqlite_error)?;
        let per_statement = (MAX_PARAMS / batch.used.len()).max(1);
        let mut rows = batch.row_values().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<_> = rows.by_ref().take(per_statement).collect();
            let one = format!("({})", vec!["?"; batch.used.len()].join(", "));
            let sql =
                format!("INSERT INTO {} ({}) VALUES {}", batch.table, batch.names, vec![one; chunk.len()].join(", "));
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for row in chunk {
                for &c in &batch.used {
                    q = bind_json(q, row[c]);
                }
            }
            q.execute(&mut *tx).await.map_err(sqlite_error)?;
        }
        tx.commit().await.map_err(sqlite_error)
    }

    async fn write_template(&self, template: &Template, statement: &str, rows: &[Row]) -> Result<(), WriteError> {
        let fields: Vec<&[String]> = template.fields().collect();
        let mut tx = self.pool.begin().await.map_err(sqlite_error)?;
        for row in rows {
            let mut q = sqlx::query(AssertSqlSafe(statement.to_string()));
            for path in &fields {
                q = bind_value(q, lookup(row, path).as_deref());
            }
            q.execute(&mut *tx).await.map_err(sqlite_error)?;
        }
        tx.commit().await.map_err(sqlite_error)
    }
}

/// Binds a value as its own SQLite type: integers and reals, booleans as 0 and 1, strings as
/// text, objects and arrays as their JSON text; null and a missing field as NULL.
fn bind_value<'q>(q: Query<'q>, v: Option<&Value>) -> Query<'q> {
    match v {
        None | Some(Value::Null) => q.bind(None::<String>),
        Some(Value::Bool(b)) => q.bind(*b),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => q.bind(i),
            None => q.bind(n.as_f64()),
        },
        Some(Value::String(s)) => q.bind(s.clone()),
        Some(other) => q.bind(other.to_string()),
    }
}

/// Binds a field from its JSON text as [`bind_value`] binds its value, without decoding it
/// into one: a string's content, a number as an integer if it is one, objects and arrays as
/// their JSON text.
fn bind_json<'q>(q: Query<'q>, json: Option<&str>) -> Query<'q> {
    let Some(json) = json else { return q.bind(None::<String>) };
    match json.as_bytes().first() {
        Some(b't') => q.bind(true),
        Some(b'f') => q.bind(false),
        Some(b'-' | b'0'..=b'9') => match json.parse::<i64>() {
            Ok(i) => q.bind(i),
            Err(_) => q.bind(json.parse::<f64>().ok()),
        },
        _ => q.bind(raw_text(json).map(Cow::into_owned)),
    }
}

/// Extended result codes whose primary code (the low byte) is TOOBIG (18), CONSTRAINT (19) or
/// MISMATCH (20) are the data's fault.
fn sqlite_error(e: sqlx::Error) -> WriteError {
    classify(e, |code| code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 18..=20)))
}
