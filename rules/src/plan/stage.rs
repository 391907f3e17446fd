//! A compiled stage of a rule: the columns it adds to a batch one step at a time, and how they
//! decide each row (which columns' errors fail it, which column filters it, and the clauses of
//! the rule they come from, which EMQX names its errors after).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

use crate::Clause;

/// Adds one column to the batch.
pub struct Step {
    pub expr: Arc<dyn PhysicalExpr>,
    /// The batch's schema once this column is added.
    pub schema: SchemaRef,
}

/// A run of steps, and how its columns decide each row.
pub struct Stage {
    pub steps: Vec<Step>,
    /// Columns whose error fails the row, in the order EMQX evaluates them.
    pub checks: Vec<usize>,
    /// The WHERE or INCASE column: only `true` keeps the row.
    pub filter: Option<usize>,
    /// The clauses its checks and its filter come from.
    pub clauses: Clauses,
    /// The output row's top-level keys and the columns that hold them.
    pub output: Vec<(String, usize)>,
}

/// The clauses of a stage: a SELECT's fields and WHERE; FOREACH's expression and bindings and
/// WHERE; or, per element, DO's fields and INCASE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clauses {
    Select,
    Foreach,
    Each,
}

impl Clauses {
    /// The clause of the stage's checks.
    pub fn checks(self) -> Clause {
        match self {
            Clauses::Select => Clause::Select,
            Clauses::Foreach => Clause::Foreach,
            Clauses::Each => Clause::Do,
        }
    }

    /// The clause of the stage's filter.
    pub fn filter(self) -> Clause {
        match self {
            Clauses::Select | Clauses::Foreach => Clause::Where,
            Clauses::Each => Clause::Incase,
        }
    }

    /// INCASE is decided before DO's fields; WHERE after SELECT's or FOREACH's.
    pub fn filter_first(self) -> bool {
        self == Clauses::Each
    }
}
