//! weir-rules: EMQX rule SQL, parsed once and run on micro-batches of messages. It turns
//! messages into rows and knows nothing of MQTT sessions.
//!
//! - [`lexer`]: sqlparser's tokenizer with EMQX's lexical rules (`"..."` identifiers, `=~`, `1..4`).
//! - [`parser`]: the grammar of rule files ([`parse_file`]) and of single rules ([`parse_rule`]).
//! - [`ast`]: what they produce.
//! - [`files`]: the rules directory: `*.sql` files, rule ids derived from file names.
//!
//! Evaluation (EMQX's semantics, compiled onto DataFusion) is the next part of issue 3.

pub mod ast;
pub mod files;
mod lexer;
mod parser;

pub use parser::{parse_file, parse_rule};

/// A syntax error, with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

#[cfg(test)]
mod tests;
