//! Rules as they run: a loaded statement with its counters, named as EMQX names them
//! (`matched = passed + failed`, `failed = failed.exception + failed.no_result`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ast::Statement;
use crate::files::LoadedRule;
use crate::plan::{BatchOutcome, CompiledExprs, CompiledRule, Input, RowOutcome};
use crate::tables::Tables;
use crate::value::Columns;
use crate::value::Value;
use crate::window::Windowed;
use crate::{Clause, EvalError, Failure};

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
    /// Outputs the sink's buffer took.
    pub actions_success: AtomicU64,
    /// Outputs the sink's buffer could not take.
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
    /// Its id, from its file's name.
    pub id: String,
    /// The statement, as parsed.
    pub statement: Statement,
    /// Kept across reloads of an unchanged id, so counters survive editing another rule.
    pub metrics: Arc<RuleMetrics>,
    /// The open windows of a rule with `GROUP BY`.
    pub window: Option<Windowed>,
    /// Where its JOINs look rows up.
    tables: Arc<Tables>,
    /// The rule on DataFusion, compiled per input shape.
    compiled: CompiledRule,
    /// The JOINs' keys, read on each batch.
    join_keys: CompiledExprs,
}

impl ActiveRule {
    /// A rule ready to run, counting into `metrics`, joining from `tables`.
    pub fn new(loaded: LoadedRule, metrics: Arc<RuleMetrics>, tables: Arc<Tables>) -> ActiveRule {
        let rule = &loaded.statement.rule;
        let window = Windowed::compile(rule);
        let compiled = CompiledRule::new(rule.clone());
        let join_keys = CompiledExprs::new(rule, rule.joins.iter().map(|j| j.key.clone()).collect());
        ActiveRule { id: loaded.id, statement: loaded.statement, metrics, window, tables, compiled, join_keys }
    }

    /// Which columns of a publish batch ([`crate::plan::publish_batch::publish_layout`]) the rule reads:
    /// the others need not be built. A windowed or joining rule keeps whole rows: all of them.
    pub fn publish_reads(&self) -> Vec<bool> {
        let layout = crate::plan::publish_batch::publish_layout();
        if self.window.is_some() || !self.statement.rule.joins.is_empty() {
            return vec![true; layout.fields().len()];
        }
        self.compiled.reads(&layout)
    }

    /// Runs the rule on one message whose topic matched its FROM; see [`ActiveRule::run_batch`].
    pub fn run(&self, columns: &Columns) -> Vec<Value> {
        let input = Input::from_rows(&[columns]).remove(0);
        let out = self.run_batch(&input, None);
        let produced = out.output.iter().map(|b| b.num_rows()).sum();
        out.values(0..produced)
    }

    /// Runs the rule on `rows` of `input` (all of them if `None`), the messages whose topics
    /// matched its FROM, and counts each outcome. A windowed rule gives no rows here: they come
    /// from [`ActiveRule::close_windows`].
    ///
    /// A panic while the batch runs (a bug: every function is meant to be total) fails the
    /// batch's rows alone, counted as `failed.exception` and logged with the rule and the input;
    /// the next batch runs as usual.
    pub fn run_batch(&self, input: &Input, rows: Option<&[u32]>) -> BatchOutcome {
        let n = rows.map_or(input.len(), <[u32]>::len);
        let out = match catch_unwind(AssertUnwindSafe(|| self.evaluate(input, rows))) {
            Ok(out) => out,
            Err(panic) => {
                self.panicked(panic.as_ref(), input, rows.map_or(0, |r| r.first().map_or(0, |&i| i as usize)));
                self.metrics.failed_exception.fetch_add(n as u64, Ordering::Relaxed);
                BatchOutcome::failed(n, Failure { clause: Clause::Select, error: EvalError::Panicked })
            }
        };
        // Counted last, so that a reader who sees `matched` also sees each outcome.
        self.metrics.matched.fetch_add(n as u64, Ordering::Relaxed);
        out
    }

    /// Logs a panic of this rule, with the first message of the batch it failed.
    fn panicked(&self, panic: &(dyn std::any::Any + Send), input: &Input, first: usize) {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let row = catch_unwind(AssertUnwindSafe(|| input.row(first))).unwrap_or_default();
        let shown = |key: &str| row.get(key).map(|v| truncated(&v.to_text().unwrap_or_default())).unwrap_or_default();
        tracing::error!(
            rule = %self.id,
            panic = what,
            rows = input.len(),
            topic = %shown("topic"),
            payload = %shown("payload"),
            "a rule panicked: its batch's rows failed (failed.exception), and the rules go on; please report this with the input"
        );
    }

    fn evaluate(&self, input: &Input, rows: Option<&[u32]>) -> BatchOutcome {
        let m = &self.metrics;
        let joined;
        let (input, rows) = match self.statement.rule.joins.is_empty() {
            true => (input, rows),
            false => match self.join(input, rows) {
                Some(with_rows) => {
                    joined = with_rows;
                    (&joined, None)
                }
                None => return BatchOutcome::default(),
            },
        };
        if let Some(window) = &self.window {
            for added in window.add(input, rows) {
                match added {
                    Ok(true) => {}
                    Ok(false) => RuleMetrics::incr(&m.failed_no_result),
                    Err(e) => self.failed(&e, "GROUP BY"),
                }
            }
            return BatchOutcome::default();
        }
        let out = self.compiled.run(input, rows);
        let (mut passed, mut no_result) = (0, 0);
        for outcome in &out.rows {
            match outcome {
                RowOutcome::Rows(range) if !range.is_empty() => passed += 1,
                RowOutcome::Rows(_) | RowOutcome::NoMatch => no_result += 1,
                RowOutcome::Failed(f) => self.failed(&f.error, f.clause.keyword()),
            }
        }
        // Once per batch: the counters are shared with the API's readers.
        m.passed.fetch_add(passed, Ordering::Relaxed);
        m.failed_no_result.fetch_add(no_result, Ordering::Relaxed);
        out
    }

    /// Counts a message the rule failed on in `clause`.
    fn failed(&self, e: &EvalError, clause: &str) {
        RuleMetrics::incr(&self.metrics.failed_exception);
        tracing::debug!(rule = %self.id, error = %e, clause, "rule failed on a message");
    }

    /// The messages that join, each with its joined rows under their aliases (`None` if none
    /// does); the others are counted (an inner JOIN without a row: `failed.no_result`; an
    /// error: `failed.exception`).
    fn join(&self, input: &Input, rows: Option<&[u32]>) -> Option<Input> {
        let keys = self.join_keys.run(input, rows);
        let indexes: Vec<usize> = match rows {
            Some(r) => r.iter().map(|&i| i as usize).collect(),
            None => (0..input.len()).collect(),
        };
        let mut joined = Vec::with_capacity(indexes.len());
        for (row, keys) in indexes.into_iter().zip(keys) {
            match self.join_one(input.row(row), keys) {
                Ok(Some(row)) => joined.push(row),
                Ok(None) => RuleMetrics::incr(&self.metrics.failed_no_result),
                Err(e) => self.failed(&e, "JOIN"),
            }
        }
        let joined: Vec<&Columns> = joined.iter().collect();
        Input::from_rows(&joined).into_iter().next()
    }

    /// One message's columns with each joined row under its alias; `None` when an inner JOIN
    /// finds no row.
    fn join_one(&self, mut joined: Columns, keys: Vec<Result<Value, EvalError>>) -> Result<Option<Columns>, EvalError> {
        for (j, key) in self.statement.rule.joins.iter().zip(keys) {
            let table = self
                .tables
                .get(&j.table)
                .ok_or_else(|| EvalError::BadArgument(format!("reference table `{}` is not loaded", j.table)))?;
            match table.lookup(&j.column, &key?) {
                Some(row) => joined.insert(j.alias.clone(), row.clone()),
                None if j.left => joined.insert(j.alias.clone(), Value::Undefined),
                None => return Ok(None),
            };
        }
        Ok(Some(joined))
    }

    /// For a windowed rule: aggregates the windows that closed by `now_ms` and returns their
    /// rows, counted as `passed` (one per row) or `failed.exception`.
    pub async fn close_windows(&self, now_ms: i64) -> Vec<Value> {
        let Some(window) = &self.window else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for pane in window.due(now_ms) {
            match window.emit(pane).await {
                Ok(rows) => {
                    for row in rows {
                        match row {
                            Ok(v) => {
                                RuleMetrics::incr(&self.metrics.passed);
                                out.push(v);
                            }
                            Err(f) => self.failed(&f.error, f.clause.keyword()),
                        }
                    }
                }
                Err(e) => tracing::warn!(rule = %self.id, error = %e, "window not aggregated"),
            }
        }
        out
    }
}

/// At most 256 bytes of `text`, cut at a character's edge, for a log line.
fn truncated(text: &str) -> String {
    match text.char_indices().map(|(i, _)| i).find(|&i| i > 256) {
        Some(cut) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_file;

    fn rule(sql: &str) -> ActiveRule {
        let statement = parse_file(sql).unwrap().remove(0);
        ActiveRule::new(LoadedRule { id: "r".into(), statement }, Arc::default(), Arc::default())
    }

    fn message(payload: &str) -> Columns {
        Columns::from([
            ("topic".to_string(), Value::Str("t/a".into())),
            ("payload".to_string(), Value::Str(payload.into())),
        ])
    }

    #[test]
    fn joins_add_the_table_row_and_inner_joins_drop_the_unmatched() {
        let tables = Arc::new(Tables::default());
        let row = [("id".to_string(), Value::Str("c1".into())), ("limit".to_string(), Value::Int(30))];
        tables.set("devices", crate::tables::Table::new(vec![row.into_iter().collect()]));
        let joined = |sql: &str| {
            let statement = parse_file(sql).unwrap().remove(0);
            ActiveRule::new(LoadedRule { id: "j".into(), statement }, Arc::default(), tables.clone())
        };
        let from = |client: &str, t: i64| {
            let mut m = message(&format!(r#"{{"t": {t}}}"#));
            m.insert("clientid".into(), Value::Str(client.into()));
            m
        };
        let inner = joined(
            r#"SELECT d.limit AS limit, payload.t AS t FROM "t/#" JOIN devices AS d ON d.id = clientid WHERE payload.t > d.limit"#,
        );
        let out = inner.run(&from("c1", 31));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_json().unwrap(), r#"{"limit":30,"t":31}"#);
        assert!(inner.run(&from("c1", 20)).is_empty(), "WHERE reads the joined row");
        assert!(inner.run(&from("c2", 99)).is_empty(), "no row: an inner join drops the message");
        let left = joined(r#"SELECT clientid, d.limit AS limit FROM "t/#" LEFT JOIN devices d ON clientid = d.id"#);
        assert_eq!(left.run(&from("c2", 1))[0].to_json().unwrap(), r#"{"clientid":"c2","limit":"undefined"}"#);
        let missing = joined(r#"SELECT 1 FROM "t/#" JOIN nowhere n ON n.id = clientid"#);
        assert!(missing.run(&from("c1", 1)).is_empty());
        assert_eq!(missing.metrics.failed_exception.load(std::sync::atomic::Ordering::Relaxed), 1);
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
