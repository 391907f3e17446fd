//! `type = "postgres"` and `type = "sqlite"`: rows into a table, in one of two modes.
//!
//! - `table = "readings"`: each field goes into the column of its name. The table's columns are
//!   read when the sink first connects (after `init_sql`); a batch writes the columns its rows
//!   have, so the others keep their defaults. A field with no column is reported once, naming
//!   the field and the table. PostgreSQL gets one `COPY ... FROM STDIN` per batch, in binary
//!   when every value converts exactly, else as text that the server reads as the column's
//!   type (see [`super::pg_copy`]); SQLite one multi-row `INSERT`.
//! - `sql = "INSERT ... VALUES (${a}, ${b})"`: each `${field}` becomes a bound parameter, never
//!   text in the statement; the rows of a batch run in one transaction. On PostgreSQL each
//!   parameter is sent as text and cast to the type the server infers for it.
//!
//! A missing field is NULL. Errors in the data (PostgreSQL classes 22 and 23, SQLite's
//! constraint and type errors) refuse the row; any other error keeps the rows buffered and
//! retries, since a missing table or a server going down is for the operator to fix, not a
//! reason to lose data.

use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgPoolCopyExt, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Executor, Row as _, SqlSafeStr, Statement, TypeInfo};
use tokio::sync::OnceCell;

use crate::config::SqlConfig;
use crate::row::{raw_text, Row};
use crate::sink::{Sink, WriteError};
use crate::sinks::pg_copy::{self, Binary};
use crate::sinks::SinkError;
use crate::template::{lookup, Template};

/// How long a write waits for a connection before it counts as failed (and is retried).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's limit on bound parameters per statement.
const SQLITE_MAX_PARAMS: usize = 32_766;

enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

enum Mode {
    Table(String),
    Template(Template),
}

/// What is learnt from the database on first connecting.
enum Prepared {
    /// The table's columns: name, and (PostgreSQL) the type to cast to.
    Table(Vec<(String, String)>),
    /// The statement with its parameters (on PostgreSQL, cast to the inferred types).
    Template(String),
}

/// A PostgreSQL or SQLite destination.
pub struct SqlSink {
    name: String,
    db: Db,
    mode: Mode,
    init_sql: Vec<String>,
    prepared: OnceCell<Prepared>,
    /// Fields already reported as having no column, so each is reported once.
    unknown_fields: Mutex<HashSet<String>>,
}

impl SqlSink {
    /// A sink for `config`; connections are made when first needed.
    pub fn new(name: &str, config: &SqlConfig, postgres: bool, max_inflight: usize) -> Result<SqlSink, SinkError> {
        let invalid = |message: String| SinkError::Invalid { sink: name.to_string(), message };
        let mode = match (&config.table, &config.sql) {
            (Some(t), None) => Mode::Table(t.clone()),
            (None, Some(sql)) => Mode::Template(Template::parse(sql).map_err(|e| invalid(format!("sql: {e}")))?),
            _ => return Err(invalid("set exactly one of `table` (fields into columns) or `sql` (a template)".into())),
        };
        let db = if postgres {
            let pool = PgPoolOptions::new()
                .max_connections(max_inflight.max(1) as u32)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_lazy(&config.url)
                .map_err(|e| invalid(format!("url: {e}")))?;
            Db::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(&config.url)
                .map_err(|e| invalid(format!("url: {e}")))?
                .create_if_missing(true)
                // Readers (the `sqlite3` shell) do not block the sink, nor it them.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(ACQUIRE_TIMEOUT);
            // One writer: SQLite takes one write transaction at a time anyway.
            let pool =
                SqlitePoolOptions::new().max_connections(1).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(options);
            Db::Sqlite(pool)
        };
        Ok(SqlSink {
            name: name.to_string(),
            db,
            mode,
            init_sql: config.init_sql.clone(),
            prepared: OnceCell::new(),
            unknown_fields: Mutex::new(HashSet::new()),
        })
    }

    /// Runs `init_sql` and learns the table's columns or the statement's parameters, once.
    async fn prepared(&self) -> Result<&Prepared, WriteError> {
        self.prepared.get_or_try_init(|| self.prepare()).await
    }

    async fn prepare(&self) -> Result<Prepared, WriteError> {
        for sql in &self.init_sql {
            self.execute(sql).await.map_err(|e| WriteError::transient(format!("init_sql `{sql}`: {e}")))?;
        }
        match (&self.mode, &self.db) {
            (Mode::Table(table), Db::Postgres(p)) => {
                let rows = sqlx::query(
                    "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a \
                     WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                )
                .bind(table)
                .fetch_all(p)
                .await
                .map_err(|e| WriteError::transient(format!("table `{table}`: {e}")))?;
                let columns = rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect();
                open_all(p).await;
                Ok(Prepared::Table(columns))
            }
            (Mode::Table(table), Db::Sqlite(p)) => {
                let rows = sqlx::query("SELECT name, type FROM pragma_table_info(?1)")
                    .bind(table)
                    .fetch_all(p)
                    .await
                    .map_err(|e| WriteError::transient(format!("table `{table}`: {e}")))?;
                if rows.is_empty() {
                    return Err(WriteError::transient(format!(
                        "table `{table}` does not exist: create it, or add a CREATE TABLE to init_sql"
                    )));
                }
                Ok(Prepared::Table(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))).collect()))
            }
            (Mode::Template(t), Db::Postgres(p)) => {
                let numbered = t.with_parameters(|n| format!("${n}"));
                let statement = p
                    .prepare(AssertSqlSafe(numbered).into_sql_str())
                    .await
                    .map_err(|e| WriteError::transient(format!("sql: {e}")))?;
                let types: Vec<String> = match statement.parameters() {
                    Some(sqlx::Either::Left(types)) => types.iter().map(|t| t.name().to_string()).collect(),
                    _ => Vec::new(),
                };
                open_all(p).await;
                // Every value is sent as text, then cast to what the server expects there.
                Ok(Prepared::Template(t.with_parameters(|n| match types.get(n - 1) {
                    Some(ty) => format!("CAST(${n}::text AS {ty})"),
                    None => format!("${n}"),
                })))
            }
            (Mode::Template(t), Db::Sqlite(_)) => Ok(Prepared::Template(t.with_parameters(|n| format!("?{n}")))),
        }
    }

    /// Runs a statement of the operator's own (from the config), without parameters.
    async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self.db {
            Db::Postgres(p) => sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
            Db::Sqlite(p) => sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|_| ()),
        }
    }

    /// The rows' values by column, read from their JSON text: the value of row `i` for column
    /// `c` is at `i * columns.len() + c`. Fields with no column are reported, once each.
    fn by_column<'r>(&self, table: &str, columns: &[(String, String)], rows: &'r [Row]) -> Vec<Option<&'r str>> {
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
        values
    }

    async fn write_table(&self, table: &str, columns: &[(String, String)], rows: &[Row]) -> Result<(), WriteError> {
        let values = self.by_column(table, columns, rows);
        // The columns some row has, in table order; the others keep their defaults.
        let used: Vec<usize> =
            (0..columns.len()).filter(|&c| values.iter().skip(c).step_by(columns.len()).any(Option::is_some)).collect();
        if used.is_empty() {
            return Ok(());
        }
        let names = used.iter().map(|&c| quote(&columns[c].0)).collect::<Vec<_>>().join(", ");
        let row_values = values.chunks(columns.len());
        match &self.db {
            Db::Postgres(p) => {
                let used_values = || row_values.clone().map(|row| used.iter().map(move |&c| row[c]));
                let kinds: Option<Vec<Binary>> = used.iter().map(|&c| Binary::of(&columns[c].1)).collect();
                // About the rows' text with each value's length or separator.
                let size = rows.iter().map(|r| r.json().len() + 4 * used.len() + 2).sum::<usize>() + 32;
                let (copy, data) = match kinds.and_then(|kinds| pg_copy::binary(&kinds, used_values(), size)) {
                    Some(data) => (format!("COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)"), data),
                    None => (format!("COPY {table} ({names}) FROM STDIN"), pg_copy::text(used_values(), size)),
                };
                let result = async {
                    let mut stream = p.copy_in_raw(&copy).await?;
                    stream.send(data).await?;
                    stream.finish().await
                };
                match (result.await.map(|_| ()).map_err(pg_error), rows) {
                    (Err(WriteError::Rejected { reason }), [row]) => {
                        let used: Vec<_> = used.iter().map(|&c| &columns[c]).collect();
                        Err(WriteError::rejected(explain(p, table, &used, row, reason).await))
                    }
                    (result, _) => result,
                }
            }
            Db::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(sqlite_error)?;
                let per_statement = (SQLITE_MAX_PARAMS / used.len()).max(1);
                let mut row_values = row_values.peekable();
                while row_values.peek().is_some() {
                    let chunk: Vec<_> = row_values.by_ref().take(per_statement).collect();
                    let one = format!("({})", vec!["?"; used.len()].join(", "));
                    let sql = format!("INSERT INTO {table} ({names}) VALUES {}", vec![one; chunk.len()].join(", "));
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for row in chunk {
                        for &c in &used {
                            q = bind_sqlite_json(q, row[c]);
                        }
                    }
                    q.execute(&mut *tx).await.map_err(sqlite_error)?;
                }
                tx.commit().await.map_err(sqlite_error)
            }
        }
    }

    async fn write_template(&self, template: &Template, sql: &str, rows: &[Row]) -> Result<(), WriteError> {
        let fields: Vec<&[String]> = template.fields().collect();
        match &self.db {
            Db::Postgres(p) => {
                let mut tx = p.begin().await.map_err(pg_error)?;
                for row in rows {
                    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
                    for path in &fields {
                        q = q.bind(lookup(row, path).and_then(|v| as_text(&v)));
                    }
                    q.execute(&mut *tx).await.map_err(pg_error)?;
                }
                tx.commit().await.map_err(pg_error)
            }
            Db::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(sqlite_error)?;
                for row in rows {
                    let mut q = sqlx::query(AssertSqlSafe(sql.to_string()));
                    for path in &fields {
                        q = bind_sqlite(q, lookup(row, path).as_deref());
                    }
                    q.execute(&mut *tx).await.map_err(sqlite_error)?;
                }
                tx.commit().await.map_err(sqlite_error)
            }
        }
    }
}

impl Sink for SqlSink {
    async fn write(&self, rows: &[Row]) -> Result<(), WriteError> {
        match (self.prepared().await?, &self.mode) {
            (Prepared::Table(columns), Mode::Table(table)) => self.write_table(table, columns, rows).await,
            (Prepared::Template(sql), Mode::Template(t)) => self.write_template(t, sql, rows).await,
            _ => Err(WriteError::transient("sink mode and prepared statement disagree")),
        }
    }

    async fn check(&self) -> Result<(), String> {
        self.prepared().await.map_err(|e| e.to_string())?;
        self.execute("SELECT 1").await.map_err(|e| e.to_string())
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

/// Why PostgreSQL refused `row`, naming the field and the column at fault when one value alone
/// does not fit its column's type.
async fn explain(pool: &PgPool, table: &str, used: &[&(String, String)], row: &Row, reason: String) -> String {
    for (column, ty) in used {
        let Some(value) = row.get(column.as_str()).and_then(as_text) else { continue };
        let cast =
            sqlx::query(AssertSqlSafe(format!("SELECT CAST($1::text AS {ty})"))).bind(&value).execute(pool).await;
        if let Err(e) = cast {
            let why = match &e {
                sqlx::Error::Database(db) => db.message().to_string(),
                other => other.to_string(),
            };
            return format!("field `{column}` = {value:?} does not fit column `{column}` ({ty}) of `{table}`: {why}");
        }
    }
    reason
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

fn bind_sqlite<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    v: Option<&Value>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
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

/// Binds a field from its JSON text as [`bind_sqlite`] binds its value, without decoding it
/// into one: a string's content, a number as an integer if it is one, objects and arrays as
/// their JSON text.
fn bind_sqlite_json<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    json: Option<&str>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
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

/// A quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether an error is the data's (refuse the row) or the connection's (retry).
fn classify(e: sqlx::Error, postgres: bool) -> WriteError {
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().unwrap_or_default();
        let refused = if postgres {
            // SQLSTATE classes: data exceptions and integrity constraint violations.
            code.starts_with("22") || code.starts_with("23")
        } else {
            // Extended result codes, whose low byte is the primary code: TOOBIG, CONSTRAINT, MISMATCH.
            code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 18..=20))
        };
        if refused {
            return WriteError::rejected(db.message());
        }
    }
    WriteError::transient(e)
}

fn pg_error(e: sqlx::Error) -> WriteError {
    classify(e, true)
}

fn sqlite_error(e: sqlx::Error) -> WriteError {
    classify(e, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Row> {
        v.as_array().unwrap().iter().map(|r| Row::from(r.as_object().unwrap().clone())).collect()
    }

    fn config(url: &str, table: Option<&str>, sql: Option<&str>, init: &[&str]) -> SqlConfig {
        SqlConfig {
            url: url.to_string(),
            table: table.map(str::to_string),
            sql: sql.map(str::to_string),
            init_sql: init.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn sqlite_table_and_template_modes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let create = "CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY, device TEXT NOT NULL, temp REAL, meta TEXT, at TEXT DEFAULT 'now')";
        let table = SqlSink::new("t", &config(&url, Some("r"), None, &[create]), false, 1).unwrap();
        table
            .write(&rows(json!([
                {"device": "d1", "temp": 21.5, "meta": {"a": 1}, "extra": 1},
                {"device": "it's'); DROP TABLE r; --", "temp": null}
            ])))
            .await
            .unwrap();
        assert!(matches!(table.write(&rows(json!([{"temp": 1}]))).await, Err(WriteError::Rejected { .. })));
        let template = SqlSink::new(
            "t2",
            &config(&url, None, Some("INSERT INTO r (device, temp) VALUES (${clientid}, ${payload.t})"), &[]),
            false,
            1,
        )
        .unwrap();
        template.write(&rows(json!([{"clientid": "d3", "payload": "{\"t\": 7}"}]))).await.unwrap();
        let Db::Sqlite(p) = &table.db else { unreachable!() };
        let got: Vec<(String, Option<f64>, Option<String>, String)> =
            sqlx::query_as("SELECT device, temp, meta, at FROM r ORDER BY id").fetch_all(p).await.unwrap();
        assert_eq!(
            got,
            vec![
                ("d1".into(), Some(21.5), Some(r#"{"a":1}"#.into()), "now".into()),
                ("it's'); DROP TABLE r; --".into(), None, None, "now".into()),
                ("d3".into(), Some(7.0), None, "now".into()),
            ]
        );
    }

    #[tokio::test]
    async fn sqlite_binds_each_json_type_as_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let create = "CREATE TABLE IF NOT EXISTS u (id INTEGER PRIMARY KEY, v)";
        let table = SqlSink::new("t", &config(&url, Some("u"), None, &[create]), false, 1).unwrap();
        let values = json!(["a \"q\" é", 42, -1.5, 1e3, 18446744073709551615u64, true, null, {"a": [1]}]);
        let batch: Vec<Value> = values.as_array().unwrap().iter().map(|v| json!({"v": v})).collect();
        table.write(&rows(Value::Array(batch))).await.unwrap();
        let Db::Sqlite(p) = &table.db else { unreachable!() };
        let got: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT typeof(v), CAST(v AS TEXT) FROM u ORDER BY id").fetch_all(p).await.unwrap();
        let want = [
            ("text", Some("a \"q\" é")),
            ("integer", Some("42")),
            ("real", Some("-1.5")),
            ("real", Some("1000.0")),
            ("real", Some("1.84467440737096e+19")),
            ("integer", Some("1")),
            ("null", None),
            ("text", Some(r#"{"a":[1]}"#)),
        ];
        let want: Vec<(String, Option<String>)> =
            want.iter().map(|(t, v)| (t.to_string(), v.map(str::to_string))).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_missing_table_keeps_rows_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let sink = SqlSink::new("t", &config(&url, Some("nope"), None, &[]), false, 1).unwrap();
        let err = sink.write(&rows(json!([{"a": 1}]))).await.unwrap_err();
        assert!(matches!(&err, WriteError::Transient { reason, .. } if reason.contains("nope")), "{err:?}");
    }

    fn postgres_url() -> String {
        std::env::var("TEST_POSTGRES_URL")
            .expect("TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
    }

    #[tokio::test]
    async fn postgres_casts_text_to_each_column_and_refuses_bad_rows() {
        let url = postgres_url();
        let create = "CREATE TABLE IF NOT EXISTS sink_sql_test (id serial PRIMARY KEY, device varchar(8) NOT NULL, \
                      temp double precision, n integer, meta jsonb, at timestamptz DEFAULT now())";
        let table = SqlSink::new(
            "t",
            &config(&url, Some("sink_sql_test"), None, &["DROP TABLE IF EXISTS sink_sql_test", create]),
            true,
            2,
        )
        .unwrap();
        table
            .write(&rows(json!([
                {"device": "d1", "temp": 21.5, "n": 3, "meta": {"a": [1, 2]}},
                {"device": "x'); DROP TABLE sink_sql_test; --", "n": null}
            ])))
            .await
            .unwrap_err();
        table
            .write(&rows(
                json!([{"device": "d1", "temp": 21.5, "n": 3, "meta": {"a": [1, 2]}}, {"device": "'; --", "n": null}]),
            ))
            .await
            .unwrap();
        // A type error and a too-long value are the data's fault: refused, not retried.
        let r = table.write(&rows(json!([{"device": "d2", "n": "many"}]))).await;
        assert!(
            matches!(&r, Err(WriteError::Rejected { reason }) if reason.starts_with("field `n` = \"many\" does not fit column `n` (integer) of `sink_sql_test`: invalid input syntax")),
            "{r:?}"
        );
        for bad in [json!([{"device": "d2", "n": "many"}]), json!([{"device": "far too long"}])] {
            let r = table.write(&rows(bad)).await;
            assert!(matches!(r, Err(WriteError::Rejected { .. })), "{r:?}");
        }
        let template = SqlSink::new(
            "t2",
            &config(&url, None, Some("INSERT INTO sink_sql_test (device, n, at) VALUES (${clientid}, ${payload.n}, to_timestamp(${ts} / 1000.0))"), &[]),
            true,
            2,
        )
        .unwrap();
        template
            .write(&rows(json!([{"clientid": "d3", "payload": "{\"n\": 9}", "ts": 1700000000000i64}])))
            .await
            .unwrap();
        let Db::Postgres(p) = &table.db else { unreachable!() };
        type Stored = (String, Option<f64>, Option<i32>, Option<String>, i64);
        let got: Vec<Stored> = sqlx::query_as(
            "SELECT device, temp, n, meta::text, extract(epoch from at)::bigint FROM sink_sql_test ORDER BY id",
        )
        .fetch_all(p)
        .await
        .unwrap();
        assert_eq!(got[0].0, "d1");
        assert_eq!((got[0].1, got[0].2, got[0].3.as_deref()), (Some(21.5), Some(3), Some(r#"{"a": [1, 2]}"#)));
        assert_eq!((got[1].0.as_str(), got[1].2), ("'; --", None));
        assert_eq!((got[2].0.as_str(), got[2].2, got[2].4), ("d3", Some(9), 1_700_000_000));
        assert_eq!(got.len(), 3);
    }

    #[tokio::test]
    async fn postgres_reads_back_what_binary_and_text_copy_wrote() {
        let url = postgres_url();
        let create = "CREATE TABLE sink_copy_test (id serial PRIMARY KEY, t text, c char(3), s smallint, i integer, \
                      b bigint, r real, d double precision, ok boolean, j json, jb jsonb)";
        let sink = SqlSink::new(
            "c",
            &config(&url, Some("sink_copy_test"), None, &["DROP TABLE IF EXISTS sink_copy_test", create]),
            true,
            2,
        )
        .unwrap();
        let all = json!({"t": "tab\there \\ \"é\"\n", "c": "ab", "s": -3, "i": "12", "b": 9007199254740993i64,
                         "r": 1.5, "d": -2.25e-300, "ok": false, "j": {"z": 1, "a": [true]}, "jb": {"k": "v"}});
        // The first batch goes in binary; in the second, " 7" is for the server to read, so
        // the batch goes as text.
        sink.write(&rows(json!([all, {"t": null, "i": 5}]))).await.unwrap();
        sink.write(&rows(json!([{"b": " 7", "ok": "yes", "d": 1}]))).await.unwrap();
        let Db::Postgres(p) = &sink.db else { unreachable!() };
        type Stored = (Option<String>, Option<String>, Option<i16>, Option<i32>, Option<i64>, Option<f32>);
        type More = (Option<f64>, Option<bool>, Option<String>, Option<String>);
        let got: Vec<(Stored, More)> =
            sqlx::query("SELECT t, c, s, i, b, r, d, ok, j::text, jb::text FROM sink_copy_test ORDER BY id")
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)),
                        (r.get(6), r.get(7), r.get(8), r.get(9)),
                    )
                })
                .collect();
        assert_eq!(
            got[0],
            (
                (
                    Some("tab\there \\ \"é\"\n".into()),
                    Some("ab ".into()),
                    Some(-3),
                    Some(12),
                    Some(9007199254740993),
                    Some(1.5)
                ),
                (Some(-2.25e-300), Some(false), Some(r#"{"a":[true],"z":1}"#.into()), Some(r#"{"k": "v"}"#.into()))
            )
        );
        assert_eq!(got[1], ((None, None, None, Some(5), None, None), (None, None, None, None)));
        assert_eq!(got[2], ((None, None, None, None, Some(7), None), (Some(1.0), Some(true), None, None)));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn exactly_one_mode() {
        let both = config("sqlite:x.db", Some("t"), Some("INSERT"), &[]);
        let err = SqlSink::new("s", &both, false, 1).err().unwrap().to_string();
        assert!(err.contains("exactly one"), "{err}");
    }
}
