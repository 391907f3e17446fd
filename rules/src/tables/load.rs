//! `[tables.<name>]`: where a reference table's rows come from (a CSV file, or a query on
//! PostgreSQL or SQLite through the connectors), and keeping it loaded, every `refresh`
//! seconds. A load that fails keeps the previous rows and is retried at the next refresh; rules
//! joining a table that never loaded fail on each message (`failed.exception`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tracing::{info, warn};
use weir_connectors::query::{fetch_rows, QueryError};

use super::{load_csv, Table, TableError, Tables};
use crate::value::Value;

/// Where a reference table's rows come from, `type = "csv" | "postgres" | "sqlite"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TableConfig {
    /// A CSV file with a header row; column types are inferred.
    Csv {
        /// The file.
        path: PathBuf,
        /// Seconds between reloads; 0 loads once.
        #[serde(default = "default_refresh")]
        refresh: u64,
    },
    /// The rows of `query` on `url` (`postgres://user:password@host:port/database`).
    Postgres {
        /// The database.
        url: String,
        /// The query whose rows the table holds.
        query: String,
        /// Seconds between reloads; 0 loads once.
        #[serde(default = "default_refresh")]
        refresh: u64,
    },
    /// The rows of `query` on `url` (`sqlite:///absolute/path.db` or `sqlite:relative.db`).
    Sqlite {
        /// The database.
        url: String,
        /// The query whose rows the table holds.
        query: String,
        /// Seconds between reloads; 0 loads once.
        #[serde(default = "default_refresh")]
        refresh: u64,
    },
}

fn default_refresh() -> u64 {
    60
}

impl TableConfig {
    /// Seconds between reloads; 0 loads once.
    pub fn refresh(&self) -> u64 {
        match self {
            TableConfig::Csv { refresh, .. }
            | TableConfig::Postgres { refresh, .. }
            | TableConfig::Sqlite { refresh, .. } => *refresh,
        }
    }
}

/// Loads `name` into `tables` now and then every `refresh` seconds (once if 0), for ever.
pub async fn keep_loaded(name: String, config: TableConfig, tables: Arc<Tables>) {
    loop {
        match load(&config).await {
            Ok(table) => {
                info!(table = %name, rows = table.len(), "reference table loaded");
                tables.set(&name, table);
            }
            Err(e) => warn!(table = %name, error = %e, "reference table not loaded; keeping its previous rows"),
        }
        match config.refresh() {
            0 => return,
            secs => tokio::time::sleep(Duration::from_secs(secs)).await,
        }
    }
}

/// Why a table could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Csv(#[from] TableError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

async fn load(config: &TableConfig) -> Result<Table, LoadError> {
    match config {
        TableConfig::Csv { path, .. } => Ok(load_csv(path).await?),
        TableConfig::Postgres { url, query, .. } | TableConfig::Sqlite { url, query, .. } => {
            let rows = fetch_rows(url, query).await?;
            // JSON objects to rule values: the rows' own text, decoded as rules decode JSON.
            let rows = rows.into_iter().filter_map(|row| {
                match Value::from_json(serde_json::Value::Object(row).to_string().as_bytes()) {
                    Some(Value::Map(m)) => Some(m),
                    _ => None,
                }
            });
            Ok(Table::new(rows.collect()))
        }
    }
}
