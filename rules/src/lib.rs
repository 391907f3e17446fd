//! weir-rules: EMQX rule SQL, parsed once and run on micro-batches of messages, and the
//! pipeline that feeds the rules and hands their rows to the sinks. It turns messages into rows
//! and knows nothing of MQTT sessions.
//!
//! The language:
//! - `lexer`: sqlparser's tokenizer with EMQX's lexical rules (`"..."` identifiers, `=~`, `1..4`).
//! - `parser`: the grammar of rule files ([`parse_file`]) and of single rules ([`parse_rule`]).
//! - [`ast`]: what they produce; [`files`]: the rules directory, rule ids from file names.
//! - [`plan`]: rules compiled onto DataFusion (UDFs over a variant column encoding) and run
//!   on batches of messages: SELECT, WHERE, FOREACH/DO/INCASE.
//! - [`functions`]: the built-in function catalogue, by name.
//! - [`value`], `ops`, `path`: EMQX's value semantics (`undefined`, coercion, term order,
//!   JSON text to values, paths with lazy JSON decoding, nested `AS` assignment), as pure
//!   functions on single values:
//!   the building blocks that the UDFs of [`plan`] call row by row.
//! - `window`: windowed aggregation (`GROUP BY ..., TUMBLINGWINDOW(ss, 10)`) on DataFusion's
//!   aggregate functions; `columnar`: values to and from Arrow arrays.
//! - [`event_kind`]: the broker events rules select with `FROM "$events/..."`.
//! - [`failure`]: why a rule failed on a message, in words and as EMQX's rule tester prints it.
//! - [`tester`]: EMQX's rule tester (a rule on a made-up message), for the CLI and the API;
//!   [`eval`]: one message through a rule.
//!
//! Running them:
//! - [`active_rule`]: a rule as it runs, with EMQX's counters.
//! - [`tables`]: reference tables for JOIN, from CSV files or database queries, kept loaded.
//! - [`pipeline`]: the broker's messages in, batched on a thread of its own, through the rules,
//!   into the sinks' buffers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod active_rule;
pub mod ast;
pub(crate) mod columnar;
pub mod eval;
pub mod event_kind;
pub mod failure;
pub mod files;
pub mod functions;
mod lexer;
pub(crate) mod ops;
mod parser;
pub(crate) mod path;
pub mod pipeline;
pub mod plan;
pub mod tables;
pub mod tester;
pub mod value;
pub(crate) mod window;

pub use failure::{Clause, EvalError, Failure};
pub use parser::{parse_file, parse_rule};

/// Milliseconds since the Unix epoch, the unit of EMQX's timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A syntax error, with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// The line, from 1.
    pub line: u64,
    /// The column, from 1.
    pub column: u64,
    /// What is wrong there.
    pub message: String,
}

#[cfg(test)]
mod tests;
