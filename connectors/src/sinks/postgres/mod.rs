//! `type = "postgres"`: rows into a PostgreSQL table (`table`) or through a statement (`sql`),
//! the modes of [`super::sql_common`].
//!
//! In the table mode a batch is one `COPY ... FROM STDIN`, in binary when every value converts
//! exactly, else as text that the server reads as the column's type (`copy`). In the template
//! mode each parameter is sent as text and cast to the type the server infers for it. Errors of
//! SQLSTATE classes 22 (data exception) and 23 (integrity constraint) refuse the row; a refused
//! single row is explained, naming the field and the column at fault.

mod config;
mod copy;
mod sink;
#[cfg(test)]
mod tests;

pub use config::PostgresConfig;
pub use sink::{PostgresSink, DEFAULT_BATCH_SIZE};
