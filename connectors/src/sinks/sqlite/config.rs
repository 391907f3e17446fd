//! `[sinks.<name>]` with `type = "sqlite"`.

use serde::Deserialize;

/// An SQLite destination: a table (`table`) or a statement (`sql`), exactly one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// `sqlite:path.db`, or `sqlite:///absolute/path.db`; the file is created if missing.
    pub url: String,
    /// Rows go into this table, each field into the column of its name.
    pub table: Option<String>,
    /// Or: a statement whose `${field}` placeholders are bound as parameters.
    pub sql: Option<String>,
    /// Statements run once on connecting (for example `CREATE TABLE IF NOT EXISTS ...`).
    #[serde(default)]
    pub init_sql: Vec<String>,
}
