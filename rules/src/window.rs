//! Windowed aggregation, beyond EMQX: `GROUP BY <keys>, TUMBLINGWINDOW(ss, 10)` or
//! `HOPPINGWINDOW(ss, 10, 5)` (eKuiper's syntax, EMQ's own stream engine), over the messages'
//! `timestamp`. The aggregates are DataFusion's, by name: `count`, `sum`, `avg`, `min`, `max`,
//! `median`, `stddev`, `approx_percentile_cont(x, 0.9)`, ...
//!
//! A message that passes WHERE is kept in every window that covers its timestamp, with its
//! grouping key and its aggregate arguments. When a window closes (a later message or the
//! clock passes its end), its rows become one Arrow batch and DataFusion aggregates it by
//! group. Each group then gives one output row: the SELECT evaluated with each aggregate call
//! replaced by its result, `window_start` and `window_end` set, and the other columns taken
//! from the group's first message. HAVING filters those rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::functions_aggregate::all_default_aggregate_functions;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{AggregateUDF, Expr as DfExpr};
use datafusion::prelude::{col, lit, SessionContext};
use parking_lot::Mutex;

use crate::ast::{Expr, Field, Literal, Path, Projection, Rule, Window};
use crate::columnar::{array_of, value_at};
use crate::plan::{CompiledExprs, CompiledRule, Input, RowOutcome};
use crate::value::Columns;
use crate::value::Value;
use crate::{EvalError, Failure};

/// Why a closed window gave no rows.
#[derive(Debug, thiserror::Error)]
#[error("aggregating window [{start}, {end}): {source}")]
pub struct WindowError {
    start: i64,
    end: i64,
    source: datafusion::error::DataFusionError,
}

/// One aggregate call of the SELECT or HAVING.
#[derive(Debug)]
struct Aggregate {
    function: Arc<AggregateUDF>,
    /// What each message contributes; `None` for `count(*)`.
    argument: Option<Expr>,
    /// Constant further arguments (`0.9` in `approx_percentile_cont(x, 0.9)`).
    constants: Vec<Literal>,
}

/// A windowed rule: its compiled plan and its open windows.
pub struct Windowed {
    window: Window,
    keys: Vec<Expr>,
    aggregates: Vec<Aggregate>,
    /// What each message contributes, read on its batch: WHERE (if any), the grouping keys,
    /// then each aggregate's argument.
    inputs: CompiledExprs,
    has_filter: bool,
    /// The SELECT with aggregates read from `__agg_<i>` columns, HAVING as its WHERE.
    output: CompiledRule,
    context: SessionContext,
    state: Mutex<State>,
}

impl std::fmt::Debug for Windowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windowed")
            .field("window", &self.window)
            .field("keys", &self.keys)
            .field("aggregates", &self.aggregates)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Open windows by start time (ms).
    panes: BTreeMap<i64, Pane>,
    /// Windows ending at or before this are closed: late messages do not reopen them.
    closed_until: i64,
    /// The latest message timestamp seen: event time closes windows too.
    watermark: i64,
}

/// The rows of one open window.
#[derive(Debug, Default)]
pub struct Pane {
    start: i64,
    /// Grouping key (as JSON text) → group number.
    groups: HashMap<String, u32>,
    /// Each group's first message, for the columns that are not aggregated.
    firsts: Vec<Columns>,
    /// Each row's group.
    group_of_row: Vec<u32>,
    /// Per aggregate, each row's argument.
    arguments: Vec<Vec<Value>>,
}

impl Windowed {
    /// Compiles a rule with `GROUP BY`; `None` for rules without one.
    pub fn compile(rule: &Rule) -> Option<Windowed> {
        let group_by = rule.group_by.as_ref()?;
        let known: HashMap<String, Arc<AggregateUDF>> = all_default_aggregate_functions()
            .into_iter()
            .flat_map(|f| {
                let names: Vec<String> =
                    std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()).collect();
                names.into_iter().map(move |n| (n, f.clone()))
            })
            .collect();
        let mut aggregates = Vec::new();
        let mut rewrite = |e: &Expr| replace_aggregates(e, &known, &mut aggregates);
        let Projection::Select(fields) = &rule.projection else {
            return None;
        };
        let fields = fields
            .iter()
            .map(|f| match f {
                Field::All => Field::All,
                Field::Expr { expr, alias } => Field::Expr { expr: rewrite(expr), alias: alias.clone() },
            })
            .collect();
        let having = rule.having.as_ref().map(&mut rewrite);
        let mut output = Rule {
            projection: Projection::Select(fields),
            from: Vec::new(),
            filter: having,
            joins: Vec::new(),
            group_by: None,
            having: None,
            payload_keys: None,
            payload_aliased: false,
        };
        output.payload_keys = output.read_payload_keys();
        output.payload_aliased = output.aliases_payload();
        let has_filter = rule.filter.is_some();
        let read =
            rule.filter.iter().chain(&group_by.keys).chain(aggregates.iter().filter_map(|a| a.argument.as_ref()));
        let inputs = CompiledExprs::new(rule, read.cloned().collect());
        Some(Windowed {
            window: group_by.window,
            keys: group_by.keys.clone(),
            aggregates,
            inputs,
            has_filter,
            output: CompiledRule::new(output),
            context: SessionContext::new(),
            state: Mutex::new(State::default()),
        })
    }

    /// Adds messages (their columns, with any joined rows) to the windows covering their
    /// `timestamp`. Per message: `false` if WHERE was not true.
    pub fn add(&self, input: &Input, rows: Option<&[u32]>) -> Vec<Result<bool, EvalError>> {
        let read = self.inputs.run(input, rows);
        let indexes: Vec<usize> = match rows {
            Some(r) => r.iter().map(|&i| i as usize).collect(),
            None => (0..input.len()).collect(),
        };
        indexes.into_iter().zip(read).map(|(row, values)| self.add_one(input, row, values)).collect()
    }

    fn add_one(&self, input: &Input, row: usize, values: Vec<Result<Value, EvalError>>) -> Result<bool, EvalError> {
        let mut values = values.into_iter();
        if self.has_filter {
            match values.next() {
                Some(Ok(Value::Bool(true))) => {}
                Some(Err(e)) => return Err(e),
                _ => return Ok(false),
            }
        }
        let key = values.by_ref().take(self.keys.len()).collect::<Result<Vec<_>, _>>()?;
        let key = Value::List(key).to_json()?;
        let mut arguments = Vec::with_capacity(self.aggregates.len());
        for a in &self.aggregates {
            arguments.push(match a.argument {
                Some(_) => values.next().unwrap_or(Ok(Value::Undefined))?,
                None => Value::Int(1),
            });
        }
        let ts = match input.shape().iter().position(|c| c == "timestamp").map(|t| input.value(row, t)) {
            Some(Value::Int(t)) => t,
            _ => crate::now_ms(),
        };
        let (size, hop) = (self.window.size_ms as i64, self.window.hop_ms as i64);
        let mut state = self.state.lock();
        state.watermark = state.watermark.max(ts);
        // The windows [k·hop, k·hop + size) that hold ts, newest first.
        let mut start = ts.div_euclid(hop) * hop;
        while start > ts - size {
            if start + size > state.closed_until {
                let pane = state.panes.entry(start).or_insert_with(|| Pane {
                    start,
                    arguments: vec![Vec::new(); self.aggregates.len()],
                    ..Pane::default()
                });
                let next = pane.firsts.len() as u32;
                let group = *pane.groups.entry(key.clone()).or_insert(next);
                if group == next {
                    pane.firsts.push(input.row(row));
                }
                pane.group_of_row.push(group);
                for (list, v) in pane.arguments.iter_mut().zip(&arguments) {
                    list.push(v.clone());
                }
            }
            start -= hop;
        }
        Ok(true)
    }

    /// Takes out the windows that end at or before `now_ms` or the latest message timestamp.
    pub fn due(&self, now_ms: i64) -> Vec<Pane> {
        let size = self.window.size_ms as i64;
        let mut state = self.state.lock();
        let until = now_ms.max(state.watermark);
        let mut closed = Vec::new();
        while let Some(entry) = state.panes.first_entry() {
            if entry.key() + size > until {
                break;
            }
            closed.push(entry.remove());
        }
        state.closed_until = state.closed_until.max(until);
        closed
    }

    /// Aggregates a closed window: one output row per group that passes HAVING.
    pub async fn emit(&self, pane: Pane) -> Result<Vec<Result<Value, Failure>>, WindowError> {
        let (start, end) = (pane.start, pane.start + self.window.size_ms as i64);
        let fail = |source| WindowError { start, end, source };
        let mut columns: Vec<(String, ArrayRef)> =
            vec![("g".into(), Arc::new(pane.group_of_row.iter().copied().collect::<UInt32Array>()))];
        let mut calls = Vec::new();
        for (i, (aggregate, values)) in self.aggregates.iter().zip(&pane.arguments).enumerate() {
            let name = format!("a{i}");
            columns.push((name.clone(), array_of(values)));
            let mut args = vec![col(&name)];
            args.extend(aggregate.constants.iter().map(literal));
            // Ordered-set aggregates (percentiles) order by their argument.
            let order_by = if aggregate.function.supports_within_group_clause() {
                vec![col(&name).sort(true, false)]
            } else {
                Vec::new()
            };
            let call = DfExpr::AggregateFunction(AggregateFunction::new_udf(
                aggregate.function.clone(),
                args,
                false,
                None,
                order_by,
                None,
            ));
            calls.push(call.alias(name));
        }
        let batch = RecordBatch::try_from_iter(columns).map_err(|e| fail(e.into()))?;
        let frame = self.context.read_batch(batch).map_err(fail)?;
        let results = frame.aggregate(vec![col("g")], calls).map_err(fail)?.collect().await.map_err(fail)?;
        let mut scopes = Vec::new();
        for batch in &results {
            for row in 0..batch.num_rows() {
                let group = match value_at(batch.column(0).as_ref(), row) {
                    Value::Int(g) => g as usize,
                    _ => continue,
                };
                let Some(first) = pane.firsts.get(group) else { continue };
                let mut scope = first.clone();
                for i in 0..self.aggregates.len() {
                    scope.insert(format!("__agg_{i}"), value_at(batch.column(i + 1).as_ref(), row));
                }
                scope.insert("window_start".into(), Value::Int(start));
                scope.insert("window_end".into(), Value::Int(end));
                scopes.push(scope);
            }
        }
        let scopes: Vec<&Columns> = scopes.iter().collect();
        let Some(input) = Input::from_rows(&scopes).into_iter().next() else {
            return Ok(Vec::new());
        };
        let out = self.output.run(&input, None);
        let rows = out.rows.iter().filter_map(|o| match o {
            RowOutcome::Rows(range) => Some(Ok(out.value(range.start))),
            RowOutcome::NoMatch => None,
            RowOutcome::Failed(e) => Some(Err(e.clone())),
        });
        Ok(rows.collect())
    }
}

fn literal(l: &Literal) -> DfExpr {
    match l {
        Literal::Int(i) => lit(*i),
        Literal::Float(f) => lit(*f),
        Literal::Str(s) => lit(s.clone()),
        Literal::Bool(b) => lit(*b),
    }
}

/// `e` with each aggregate call replaced by a read of its result (`__agg_<i>`), and
/// `window_start()` / `window_end()` by their columns.
fn replace_aggregates(e: &Expr, known: &HashMap<String, Arc<AggregateUDF>>, found: &mut Vec<Aggregate>) -> Expr {
    let column = |name: String| Expr::Path(Path { root: name, segments: Vec::new() });
    let mut again = |e: &Expr| replace_aggregates(e, known, found);
    match e {
        Expr::Call { module: None, name, args }
            if args.is_empty() && (name == "window_start" || name == "window_end") =>
        {
            column(name.clone())
        }
        Expr::Call { module: None, name, args } if known.contains_key(&name.to_lowercase()) => {
            let mut args = args.iter();
            let argument = args.next().cloned();
            let constants = args
                .filter_map(|a| match a {
                    Expr::Literal(l) => Some(l.clone()),
                    _ => None,
                })
                .collect();
            found.push(Aggregate { function: known[&name.to_lowercase()].clone(), argument, constants });
            column(format!("__agg_{}", found.len() - 1))
        }
        Expr::Call { module, name, args } => {
            Expr::Call { module: module.clone(), name: name.clone(), args: args.iter().map(again).collect() }
        }
        Expr::Unary(op, a) => Expr::Unary(*op, Box::new(again(a))),
        Expr::Binary(op, a, b) => Expr::Binary(*op, Box::new(again(a)), Box::new(again(b))),
        Expr::In { expr, list, negated } => {
            Expr::In { expr: Box::new(again(expr)), list: list.iter().map(again).collect(), negated: *negated }
        }
        Expr::Case { operand, branches, otherwise } => Expr::Case {
            operand: operand.as_ref().map(|o| Box::new(again(o))),
            branches: branches.iter().map(|(w, t)| (again(w), again(t))).collect(),
            otherwise: otherwise.as_ref().map(|o| Box::new(again(o))),
        },
        Expr::List(items) => Expr::List(items.iter().map(again).collect()),
        Expr::Literal(_) | Expr::Path(_) | Expr::Range(..) => e.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windowed(sql: &str) -> Windowed {
        let rule = crate::parse_rule(sql).expect("parses");
        Windowed::compile(&rule).expect("has GROUP BY")
    }

    fn message(clientid: &str, ts: i64, payload: &str) -> Columns {
        Columns::from([
            ("clientid".into(), Value::Str(clientid.into())),
            ("timestamp".into(), Value::Int(ts)),
            ("payload".into(), Value::Str(payload.into())),
        ])
    }

    fn add(w: &Windowed, messages: &[Columns]) -> Vec<Result<bool, EvalError>> {
        let rows: Vec<&Columns> = messages.iter().collect();
        w.add(&Input::from_rows(&rows).remove(0), None)
    }

    async fn emit_all(w: &Windowed, panes: Vec<Pane>) -> Vec<String> {
        let mut out = Vec::new();
        for pane in panes {
            for row in w.emit(pane).await.expect("aggregates") {
                out.push(row.expect("row").to_json().expect("json"));
            }
        }
        out
    }

    #[tokio::test]
    async fn tumbling_windows_aggregate_per_group_and_close_on_event_time() {
        let w = windowed(
            r#"SELECT clientid, count(*) AS n, avg(payload.t) AS avg_t, max(payload.t) AS hi,
                      window_start() AS ws, window_end() AS we
               FROM "t/#" WHERE payload.t > 0
               GROUP BY clientid, TUMBLINGWINDOW(ss, 10) HAVING n > 1"#,
        );
        for (c, ts, t) in [("a", 1_000, 1), ("a", 2_000, 3), ("b", 3_000, 5), ("a", 4_000, -1)] {
            let passed = add(&w, &[message(c, ts, &format!(r#"{{"t": {t}}}"#))]).remove(0).unwrap();
            assert_eq!(passed, t > 0, "WHERE applies before the window");
        }
        assert!(w.due(9_999).is_empty(), "the window [0, 10s) is still open");
        add(&w, &[message("a", 12_000, r#"{"t": 10}"#)]).remove(0).unwrap();
        let closed = w.due(0);
        assert_eq!(closed.len(), 1, "a message at 12 s closes [0, 10 s) by event time");
        let rows = emit_all(&w, closed).await;
        assert_eq!(rows, vec![r#"{"avg_t":2.0,"clientid":"a","hi":3,"n":2,"we":10000,"ws":0}"#], "b has n = 1");
        // A late message does not reopen a closed window.
        add(&w, &[message("a", 5_000, r#"{"t": 7}"#)]).remove(0).unwrap();
        let rows = emit_all(&w, w.due(20_000)).await;
        assert_eq!(rows, Vec::<String>::new(), "[10 s, 20 s) has one message for a: HAVING drops it");
    }

    #[tokio::test]
    async fn hopping_windows_overlap_and_percentiles_come_from_datafusion() {
        let w = windowed(
            r#"SELECT count(*) AS n, approx_percentile_cont(payload.t, 0.5) AS p50, sum(payload.t) AS total
               FROM "t/#" GROUP BY HOPPINGWINDOW(ss, 10, 5)"#,
        );
        let messages: Vec<Columns> = (1..=100).map(|t| message("a", 7_000, &format!(r#"{{"t": {t}}}"#))).collect();
        let added = add(&w, &messages);
        assert!(added.iter().all(|a| a == &Ok(true)), "{added:?}");
        let rows = emit_all(&w, w.due(15_000)).await;
        // 7 s lies in [0, 10 s) and [5 s, 15 s).
        assert_eq!(rows.len(), 2, "{rows:?}");
        for row in rows {
            let v: serde_json::Value = serde_json::from_str(&row).unwrap();
            assert_eq!(v["n"], 100);
            assert_eq!(v["total"], 5050);
            let p50 = v["p50"].as_f64().unwrap();
            assert!((49.0..=52.0).contains(&p50), "{p50}");
        }
    }

    #[test]
    fn window_syntax_errors_say_what_to_write() {
        let e = crate::parse_rule(r#"SELECT count(*) FROM "t" GROUP BY clientid"#).unwrap_err();
        assert!(e.message.contains("TUMBLINGWINDOW(ss, 10)"), "{e}");
        let e = crate::parse_rule(r#"SELECT 1 FROM "t" GROUP BY TUMBLINGWINDOW(weeks, 1)"#).unwrap_err();
        assert!(e.message.contains("dd, hh, mi, ss or ms"), "{e}");
        let e = crate::parse_rule(r#"SELECT 1 FROM "t" GROUP BY HOPPINGWINDOW(ss, 10)"#).unwrap_err();
        assert!(e.message.contains("hop"), "{e}");
        let e = crate::parse_rule(r#"SELECT 1 FROM "t" HAVING 1"#).unwrap_err();
        assert!(e.message.contains("HAVING needs GROUP BY"), "{e}");
    }
}
