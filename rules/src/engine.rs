//! Rules as they run: a loaded statement with its counters, named as EMQX names them
//! (`matched = passed + failed`, `failed = failed.exception + failed.no_result`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ast::Statement;
use crate::eval::{evaluate, Columns, Outcome};
use crate::files::LoadedRule;
use crate::value::Value;

/// Counters of one rule. Relaxed atomics: statistics, read by the API and Prometheus.
#[derive(Debug, Default)]
pub struct RuleMetrics {
    /// Messages whose topic matched FROM.
    pub matched: AtomicU64,
    /// Messages for which the rule produced output.
    pub passed: AtomicU64,
    /// Evaluation errors (bad JSON payload, bad function argument...).
    pub failed_exception: AtomicU64,
    /// WHERE was false, or FOREACH kept no element.
    pub failed_no_result: AtomicU64,
    /// Outputs handed to the rule's sink.
    pub actions_total: AtomicU64,
    pub actions_success: AtomicU64,
    pub actions_failed: AtomicU64,
}

impl RuleMetrics {
    fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, value)` pairs in EMQX's naming, `failed` included.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (exception, no_result) = (get(&self.failed_exception), get(&self.failed_no_result));
        vec![
            ("matched", get(&self.matched)),
            ("passed", get(&self.passed)),
            ("failed", exception + no_result),
            ("failed.exception", exception),
            ("failed.no_result", no_result),
            ("actions.total", get(&self.actions_total)),
            ("actions.success", get(&self.actions_success)),
            ("actions.failed", get(&self.actions_failed)),
        ]
    }
}

/// A rule that runs: its id, its statement and its counters.
#[derive(Debug)]
pub struct ActiveRule {
    pub id: String,
    pub statement: Statement,
    /// Kept across reloads of an unchanged id, so counters survive editing another rule.
    pub metrics: Arc<RuleMetrics>,
}

impl ActiveRule {
    pub fn new(loaded: LoadedRule, metrics: Arc<RuleMetrics>) -> ActiveRule {
        ActiveRule { id: loaded.id, statement: loaded.statement, metrics }
    }

    /// Runs the rule on a message whose topic matched its FROM, and counts the outcome.
    /// Returns the outputs (one for SELECT, any number for FOREACH).
    pub fn run(&self, columns: &Columns) -> Vec<Value> {
        let m = &self.metrics;
        RuleMetrics::incr(&m.matched);
        match evaluate(&self.statement.rule, columns) {
            Ok(Outcome::Row(v)) => {
                RuleMetrics::incr(&m.passed);
                vec![v]
            }
            Ok(Outcome::Rows(rows)) if !rows.is_empty() => {
                RuleMetrics::incr(&m.passed);
                rows
            }
            Ok(Outcome::Rows(_)) | Ok(Outcome::NoMatch) => {
                RuleMetrics::incr(&m.failed_no_result);
                Vec::new()
            }
            Err(e) => {
                RuleMetrics::incr(&m.failed_exception);
                tracing::debug!(rule = %self.id, error = %e, "rule failed on a message");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_file;

    fn rule(sql: &str) -> ActiveRule {
        let statement = parse_file(sql).unwrap().remove(0);
        ActiveRule::new(LoadedRule { id: "r".into(), statement }, Arc::default())
    }

    fn message(payload: &str) -> Columns {
        Columns::from([
            ("topic".to_string(), Value::Str("t/a".into())),
            ("payload".to_string(), Value::Str(payload.into())),
        ])
    }

    #[test]
    fn outcomes_are_counted_as_emqx_counts_them() {
        let r = rule(r#"SELECT payload.temp AS t FROM "t/#" WHERE payload.temp > 30"#);
        assert_eq!(r.run(&message(r#"{"temp": 31}"#)).len(), 1);
        assert!(r.run(&message(r#"{"temp": 20}"#)).is_empty());
        assert!(r.run(&message("not json")).is_empty());
        let snap: std::collections::HashMap<_, _> = r.metrics.snapshot().into_iter().collect();
        assert_eq!(snap["matched"], 3);
        assert_eq!(snap["passed"], 1);
        assert_eq!(snap["failed"], 2);
        assert_eq!(snap["failed.no_result"], 1);
        assert_eq!(snap["failed.exception"], 1);
    }
}
