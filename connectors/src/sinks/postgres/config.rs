//! `[sinks.<name>]` with `type = "postgres"`.

use serde::Deserialize;

/// A PostgreSQL destination: a table (`table`) or a statement (`sql`), exactly one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Rows go into this table, each field into the column of its name.
    pub table: Option<String>,
    /// Or: a statement whose `${field}` placeholders are bound as parameters.
    pub sql: Option<String>,
    /// Statements run once on connecting (for example `CREATE TABLE IF NOT EXISTS ...`).
    #[serde(default)]
    pub init_sql: Vec<String>,
}
