//! The PostgreSQL side of a [`SqlSink`]: a connection pool, `COPY` for the table mode, typed
//! parameters for the template mode.

use std::time::Duration;

use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolCopyExt, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor, Row as _, SqlSafeStr, Statement, TypeInfo};

use super::config::PostgresConfig;
use super::copy::{self, Binary};
use crate::row::Row;
use crate::sink::WriteError;
use crate::sinks::sql_common::{classify, Column, Database, Mode, SqlSink, TableBatch};
use crate::sinks::SinkError;
use crate::template::{lookup, Template};

/// Rows per batch when `batch_size` is not set: each batch is a `COPY` and a commit, whose
/// fixed cost on the server is high (docs/BENCHMARKS.md, "PostgreSQL's batch size").
pub const DEFAULT_BATCH_SIZE: usize = 10_000;
/// How long a write waits for a connection before it counts as failed (and is retried).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL sink.
pub type PostgresSink = SqlSink<Postgres>;

/// A PostgreSQL database, through a pool of `max_inflight` connections.
pub struct Postgres {
    pub(super) pool: PgPool,
}

impl PostgresSink {
    /// A sink for `config`; its connections open when first needed.
    pub fn open(name: &str, config: &PostgresConfig, max_inflight: usize) -> Result<PostgresSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        let mode = Mode::of(config.table.as_deref(), config.sql.as_deref()).map_err(invalid)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_inflight.max(1) as u32)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&config.url)
            .map_err(|e| invalid(format!("url: {e}")))?;
        Ok(SqlSink::new(name, Postgres { pool }, mode, config.init_sql.clone()))
    }
}

impl Database for Postgres {
    async fn execute(&self, sql: &str) -> Result<(), WriteError> {
        sqlx::query(AssertSqlSafe(sql.to_string())).execute(&self.pool).await.map(|_| ()).map_err(WriteError::transient)
    }

    async fn columns(&self, table: &str) -> Result<Vec<Column>, WriteError> {
        let rows = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a \
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| WriteError::transient(format!("table `{table}`: {e}")))?;
        open_all(&self.pool).await;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect())
    }

    async fn statement(&self, template: &Template) -> Result<String, WriteError> {
        let numbered = template.with_parameters(|n| format!("${n}"));
        let statement = self
            .pool
            .prepare(AssertSqlSafe(numbered).into_sql_str())
            .await
            .map_err(|e| WriteError::transient(format!("sql: {e}")))?;
        let types: Vec<String> = match statement.parameters() {
            Some(sqlx::Either::Left(types)) => types.iter().map(|t| t.name().to_string()).collect(),
            _ => Vec::new(),
        };
        open_all(&self.pool).await;
        // Every value is sent as text, then cast to what the server expects there.
        Ok(template.with_parameters(|n| match types.get(n - 1) {
            Some(ty) => format!("CAST(${n}::text AS {ty})"),
            None => format!("${n}"),
        }))
    }

    async fn write_table(&self, batch: &TableBatch<'_>) -> Result<(), WriteError> {
        let (table, names, columns) = (batch.table, &batch.names, batch.columns);
        let kinds: Option<Vec<Binary>> = batch.used.iter().map(|&c| Binary::of(&columns[c].1)).collect();
        // About the rows' text with each value's length or separator.
        let size = batch.rows.iter().map(|r| r.json().len() + 4 * batch.used.len() + 2).sum::<usize>() + 32;
        let (statement, data) = match kinds.and_then(|kinds| copy::binary(&kinds, batch.used_values(), size)) {
            Some(data) => (format!("COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)"), data),
            None => (format!("COPY {table} ({names}) FROM STDIN"), copy::text(batch.used_values(), size)),
        };
        let result = async {
            let mut stream = self.pool.copy_in_raw(&statement).await?;
            stream.send(data).await?;
            stream.finish().await
        };
        match (result.await.map(|_| ()).map_err(pg_error), batch.rows) {
            (Err(WriteError::Rejected { reason }), [row]) => {
                let used: Vec<_> = batch.used.iter().map(|&c| &columns[c]).collect();
                Err(WriteError::rejected(self.explain(table, &used, row, reason).await))
            }
            (result, _) => result,
        }
    }

    async fn write_template(&self, template: &Template, statement: &str, rows: &[Row]) -> Result<(), WriteError> {
        let fields: Vec<&[String]> = template.fields().collect();
        let mut tx = self.pool.begin().await.map_err(pg_error)?;
        for row in rows {
            let mut q = sqlx::query(AssertSqlSafe(statement.to_string()));
            for path in &fields {
                q = q.bind(lookup(row, path).and_then(|v| as_text(&v)));
            }
            q.execute(&mut *tx).await.map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }
}

impl Postgres {
    /// Why PostgreSQL refused `row`, naming the field and the column at fault when one value
    /// alone does not fit its column's type.
    async fn explain(&self, table: &str, used: &[&Column], row: &Row, reason: String) -> String {
        for (column, ty) in used {
            let Some(value) = row.get(column.as_str()).and_then(as_text) else { continue };
            let cast = sqlx::query(AssertSqlSafe(format!("SELECT CAST($1::text AS {ty})")))
                .bind(&value)
                .execute(&self.pool)
                .await;
            if let Err(e) = cast {
                let why = match &e {
                    sqlx::Error::Database(db) => db.message().to_string(),
                    other => other.to_string(),
                };
                return format!(
                    "field `{column}` = {value:?} does not fit column `{column}` ({ty}) of `{table}`: {why}"
                );
            }
        }
        reason
    }
}

/// Opens the pool's other connections now, before the first batches need them. Each one the
/// server starts is a new process with a cold catalog cache: opened during the first busy
/// seconds, they take CPU from the writes. One that fails is opened later, when needed.
async fn open_all(pool: &PgPool) {
    let mut held = Vec::new();
    while held.len() < pool.options().get_max_connections() as usize {
        match pool.acquire().await {
            Ok(connection) => held.push(connection),
            Err(error) => {
                tracing::debug!(%error, "could not open a spare PostgreSQL connection yet");
                break;
            }
        }
    }
}

/// A value as the text PostgreSQL casts from: strings as they are, other scalars as JSON
/// text, objects and arrays as JSON; null is NULL.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation) are the
/// data's fault.
fn pg_error(e: sqlx::Error) -> WriteError {
    classify(e, |code| code.starts_with("22") || code.starts_with("23"))
}
