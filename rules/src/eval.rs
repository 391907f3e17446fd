//! One message through a rule: the entry point of the rule tester and the golden tests. It runs
//! the same compiled program as the engine's batches ([`crate::plan`]), on a batch of one.

use crate::ast::{Projection, Rule};
use crate::plan::{CompiledRule, Input, RowOutcome};
use crate::value::{Columns, Value};
use crate::Failure;

/// What a rule made of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// WHERE was false: no output (EMQX counts it as `failed.no_result`).
    NoMatch,
    /// A SELECT's output map.
    Row(Value),
    /// A FOREACH's outputs, one per element kept (possibly none).
    Rows(Vec<Value>),
}

/// Runs `rule` on a message whose FROM already matched.
pub fn evaluate(rule: &Rule, columns: &Columns) -> Result<Outcome, Failure> {
    let compiled = CompiledRule::new(rule.clone());
    let input = Input::from_rows(&[columns]).remove(0);
    let out = compiled.run(&input, None);
    match out.rows.first().cloned() {
        Some(RowOutcome::Rows(range)) => {
            let rows = out.values(range);
            match rule.projection {
                Projection::Select(_) => Ok(Outcome::Row(rows.into_iter().next().unwrap_or(Value::Undefined))),
                Projection::Foreach { .. } => Ok(Outcome::Rows(rows)),
            }
        }
        Some(RowOutcome::NoMatch) | None => Ok(Outcome::NoMatch),
        Some(RowOutcome::Failed(e)) => Err(e),
    }
}
