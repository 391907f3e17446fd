//! `type = "sqlite"`: rows into an SQLite table (`table`) or through a statement (`sql`), the
//! modes of [`super::sql_common`]. Weir's built-in destination, `weir_db`, is one.
//!
//! One writer connection (SQLite takes one write transaction at a time anyway), in WAL mode so
//! that readers such as the `sqlite3` shell neither block the sink nor are blocked by it. In the
//! table mode a batch is one multi-row `INSERT` per 32,766 parameters, in one transaction; each
//! JSON value is bound as its own SQLite type. Constraint, type and size errors refuse the row.

mod config;
mod sink;
#[cfg(test)]
mod tests;

pub use config::SqliteConfig;
pub use sink::SqliteSink;
