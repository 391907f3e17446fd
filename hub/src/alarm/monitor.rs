//! The checks that raise and clear alarms, every `[alarms] check_interval` seconds:
//!
//! - `sink_disconnected/<sink>`: the sink's last write or check failed;
//! - `sink_buffer_high/<sink>`: its buffer is past `sink_buffer_high_watermark` percent full;
//! - `rule_failing/<rule>`: of the messages the rule matched since the last judgement (at least
//!   [`MIN_MATCHED`]; a check with fewer waits for more), it failed on more than
//!   `rule_failure_watermark` percent; it clears after a window with as many messages and fewer
//!   failures, or when the rule is gone;
//! - `connections_high`: the node's connections are past `connections_high_watermark` percent
//!   of its listeners' `max_connections`;
//! - `high_system_memory_usage` (EMQX's name): the machine's memory in use is past
//!   `sysmem_high_watermark` percent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use weir_connectors::sink::Health;
use weir_rules::pipeline::Pipeline;
use weir_rules::value::Value;

use crate::broker::Broker;
use crate::config::AlarmConfig;
use crate::metrics::Metrics;

/// Messages a rule must have matched in an interval before its failure share counts.
pub const MIN_MATCHED: u64 = 10;

/// Checks every `check_interval` until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
    let cfg = broker.config.alarms.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.check_interval.max(1)));
    let mut rules = RuleCounts::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                sinks(&broker, &pipeline, &cfg);
                rules.check(&broker, &pipeline, &cfg);
                connections(&broker, &cfg);
                memory(&broker, &cfg);
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn details(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn sinks(broker: &Broker, pipeline: &Pipeline, cfg: &AlarmConfig) {
    for sink in pipeline.sinks() {
        let name = Value::Str(sink.name.clone());
        broker.alarms.set(
            broker,
            &format!("sink_disconnected/{}", sink.name),
            sink.health() == Health::Disconnected,
            || {
                let message = format!("sink {} cannot reach its destination; rows wait in its buffer", sink.name);
                (message, details(&[("sink", name.clone()), ("type", Value::Str(sink.kind.into()))]))
            },
        );
        let percent = sink.buffer_fill() * 100.0;
        broker.alarms.set(
            broker,
            &format!("sink_buffer_high/{}", sink.name),
            percent >= f64::from(cfg.sink_buffer_high_watermark),
            || {
                let message = format!("the buffer of sink {} is {percent:.0}% full", sink.name);
                (message, details(&[("sink", name.clone()), ("percent", Value::Float(percent))]))
            },
        );
    }
}

/// Each rule's `matched` and `failed.exception` at the last check.
#[derive(Default)]
struct RuleCounts(HashMap<String, (u64, u64)>);

impl RuleCounts {
    fn check(&mut self, broker: &Broker, pipeline: &Pipeline, cfg: &AlarmConfig) {
        let rules = pipeline.rules();
        let mut seen = HashMap::with_capacity(rules.rules.len());
        for rule in &rules.rules {
            let snapshot = rule.metrics.snapshot();
            let get = |key: &str| snapshot.iter().find(|(k, _)| *k == key).map_or(0, |(_, v)| *v);
            let now = (get("matched"), get("failed.exception"));
            // A rule not seen before counts from its start: the broker's first messages may
            // reach it before the first check.
            let before = self.0.get(&rule.id).copied().unwrap_or_default();
            let (matched, failed) = (now.0.saturating_sub(before.0), now.1.saturating_sub(before.1));
            if matched < MIN_MATCHED {
                // Too few to judge: the window stays open until it holds enough, so that a
                // rule that fails on every one of its rare messages is still caught.
                seen.insert(rule.id.clone(), before);
                continue;
            }
            seen.insert(rule.id.clone(), now);
            let failing = failed * 100 > matched * u64::from(cfg.rule_failure_watermark);
            broker.alarms.set(broker, &format!("rule_failing/{}", rule.id), failing, || {
                let message = format!("rule {} failed on {failed} of the {matched} messages it matched", rule.id);
                let d = details(&[
                    ("rule", Value::Str(rule.id.clone())),
                    ("matched", Value::Int(matched as i64)),
                    ("failed", Value::Int(failed as i64)),
                ]);
                (message, d)
            });
        }
        for alarm in broker.alarms.active() {
            if alarm.name.strip_prefix("rule_failing/").is_some_and(|id| !seen.contains_key(id)) {
                broker.alarms.deactivate(broker, &alarm.name);
            }
        }
        self.0 = seen;
    }
}

fn connections(broker: &Broker, cfg: &AlarmConfig) {
    let listeners = &broker.config.listeners;
    let max =
        [(listeners.tcp.enable, listeners.tcp.max_connections), (listeners.ws.enable, listeners.ws.max_connections)]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, max)| *max as u64)
            .sum::<u64>();
    let now = Metrics::get(&broker.metrics.connections);
    let high = max > 0 && now * 100 >= max * u64::from(cfg.connections_high_watermark);
    broker.alarms.set(broker, "connections_high", high, || {
        let message = format!("{now} connections, of at most {max} on this node's listeners");
        (message, details(&[("connections", Value::Int(now as i64)), ("max_connections", Value::Int(max as i64))]))
    });
}

fn memory(broker: &Broker, cfg: &AlarmConfig) {
    let Some(used) = system_memory_used() else { return };
    let percent = used * 100.0;
    broker.alarms.set(broker, "high_system_memory_usage", percent >= f64::from(cfg.sysmem_high_watermark), || {
        let message = format!("system memory in use is {percent:.1}%, past {}%", cfg.sysmem_high_watermark);
        (
            message,
            details(&[
                ("usage", Value::Float(percent)),
                ("high_watermark", Value::Int(i64::from(cfg.sysmem_high_watermark))),
            ]),
        )
    });
}

/// The share of the machine's memory in use (1 - MemAvailable / MemTotal), on Linux.
fn system_memory_used() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let (total, available) = (field("MemTotal:")?, field("MemAvailable:")?);
    (total > 0.0).then(|| 1.0 - available / total)
}
