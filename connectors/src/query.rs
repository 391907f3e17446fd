//! Reading the rows of an SQL query from PostgreSQL (`postgres://...`) or SQLite (`sqlite:...`)
//! through sqlx's driver-independent interface. Each row becomes a JSON object keyed by column
//! name: integers, floats, text, booleans and NULL, which is what reference tables hold.

use serde_json::{Map, Number, Value};
use sqlx::any::{install_default_drivers, AnyRow, AnyTypeInfoKind};
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

/// Why a query's rows could not be read; each variant says what to check.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database could not be reached.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The database's URL, its password hidden.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// The query failed.
    #[error("query failed on {url}: {source}")]
    Query {
        /// The database's URL, its password hidden.
        url: String,
        /// What the database said.
        source: sqlx::Error,
    },
    /// A column's type is not one a reference table holds.
    #[error("column `{column}` has type {kind}, which a reference table cannot hold: cast it in the query (to text, bigint or double precision)")]
    Type {
        /// The column's name.
        column: String,
        /// Its type, as the database names it.
        kind: String,
    },
}

/// Runs `sql` on the database at `url` and returns its rows.
pub async fn fetch_rows(url: &str, sql: &str) -> Result<Vec<Map<String, Value>>, QueryError> {
    install_default_drivers();
    let mut conn =
        sqlx::AnyConnection::connect(url).await.map_err(|source| QueryError::Connect { url: redact(url), source })?;
    // The query is the operator's own, from the config file: no user input is in it.
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .map_err(|source| QueryError::Query { url: redact(url), source })?;
    let _ = conn.close().await;
    rows.iter().map(row_to_json).collect()
}

fn row_to_json(row: &AnyRow) -> Result<Map<String, Value>, QueryError> {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name().to_string();
        let raw = row.try_get_raw(i).map_err(|_| type_error(&name, "unknown"))?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            let kind = raw.type_info().kind();
            let decoded = match kind {
                AnyTypeInfoKind::Bool => row.try_get::<bool, _>(i).map(Value::Bool),
                AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                    row.try_get::<i64, _>(i).map(|n| Value::Number(n.into()))
                }
                AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => {
                    row.try_get::<f64, _>(i).map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number))
                }
                AnyTypeInfoKind::Text => row.try_get::<String, _>(i).map(Value::String),
                _ => return Err(type_error(&name, raw.type_info().name())),
            };
            decoded.map_err(|_| type_error(&name, raw.type_info().name()))?
        };
        out.insert(name, value);
    }
    Ok(out)
}

fn type_error(column: &str, kind: &str) -> QueryError {
    QueryError::Type { column: column.to_string(), kind: kind.to_string() }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_rows_become_json_objects() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        for sql in [
            "CREATE TABLE devices (id TEXT, site TEXT, max_temp REAL, floor INTEGER, note TEXT)",
            "INSERT INTO devices VALUES ('d1', 'north', 30.5, 2, NULL), ('d2', 'south', 25, 1, 'x')",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        let rows = fetch_rows(&url, "SELECT id, site, max_temp, floor, note FROM devices ORDER BY id").await.unwrap();
        assert_eq!(
            Value::Array(rows.into_iter().map(Value::Object).collect()).to_string(),
            r#"[{"floor":2,"id":"d1","max_temp":30.5,"note":null,"site":"north"},{"floor":1,"id":"d2","max_temp":25.0,"note":"x","site":"south"}]"#
        );
        let err = fetch_rows(&url, "SELECT nope FROM devices").await.unwrap_err().to_string();
        assert!(err.contains("query failed"), "{err}");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://weir:secret@127.0.0.1:5432/db"), "postgres://weir:***@127.0.0.1:5432/db");
        assert_eq!(redact("postgres://weir@h/db"), "postgres://weir@h/db");
        assert_eq!(redact("sqlite:data.db"), "sqlite:data.db");
    }
}
