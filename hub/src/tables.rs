//! Loading the reference tables of `[tables.<name>]` into the rule engine, and reloading them
//! every `refresh` seconds. A load that fails keeps the previous rows and is retried at the next
//! refresh; rules joining a table that never loaded fail on each message (`failed.exception`).

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use weir_rules::tables::{load_csv, Table, TableError, Tables};

use crate::config::TableConfig;

/// Loads `name` now and then every `refresh` seconds (once if 0), for ever.
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

async fn load(config: &TableConfig) -> Result<Table, TableError> {
    match config {
        TableConfig::Csv { path, .. } => load_csv(path).await,
    }
}
