//! Alarms, as EMQX raises them: a condition worth an operator's attention becomes an active
//! alarm, with a name, a message and details; `$events/sys/alarm_activated` tells the rules, and
//! `GET /api/v5/alarms` lists it. When the condition ends, the alarm is deactivated
//! (`$events/sys/alarm_deactivated`) and kept in a bounded history.
//!
//! - [`Alarms`]: the registry, in the broker.
//! - [`monitor`]: the periodic checks that raise and clear them (sinks, rules, connections,
//!   memory).

pub mod monitor;

use std::collections::{BTreeMap, VecDeque};

use parking_lot::Mutex;
use tracing::{info, warn};
use weir_rules::event_kind::EventKind;
use weir_rules::value::{Columns, Value};

use crate::broker::Broker;

/// Deactivated alarms kept for `GET /api/v5/alarms?activated=false` (EMQX's
/// `alarm.size_limit`); the oldest goes first.
const HISTORY: usize = 1000;

/// One alarm, active or past.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// What is wrong, and where: `sink_disconnected/<sink>`, `rule_failing/<rule>`, ...
    pub name: String,
    /// The same for a person.
    pub message: String,
    /// Figures behind it, by name.
    pub details: BTreeMap<String, Value>,
    /// When it was raised (ms since the epoch).
    pub activated_at: i64,
    /// When it was cleared, if it was.
    pub deactivated_at: Option<i64>,
}

impl Alarm {
    /// Its columns in `$events/sys/alarm_*`.
    fn columns(&self, node: &str, kind: EventKind) -> Columns {
        let mut c = Columns::from([
            ("name".into(), Value::Str(self.name.clone())),
            ("message".into(), Value::Str(self.message.clone())),
            ("details".into(), Value::Map(self.details.clone())),
            ("activated_at".into(), Value::Int(self.activated_at)),
            ("node".into(), Value::Str(node.to_string())),
            ("event".into(), Value::Str(kind.event_column().to_string())),
            ("timestamp".into(), Value::Int(weir_rules::now_ms())),
        ]);
        if let Some(at) = self.deactivated_at {
            c.insert("deactivated_at".into(), Value::Int(at));
        }
        c
    }
}

/// The node's alarms: the active ones by name, and the history of cleared ones.
#[derive(Debug, Default)]
pub struct Alarms {
    active: Mutex<BTreeMap<String, Alarm>>,
    history: Mutex<VecDeque<Alarm>>,
}

impl Alarms {
    /// Raises alarm `name` unless it is active already; returns whether it was raised now.
    pub fn activate(&self, broker: &Broker, name: &str, message: String, details: BTreeMap<String, Value>) -> bool {
        let alarm = {
            let mut active = self.active.lock();
            if active.contains_key(name) {
                return false;
            }
            let alarm = Alarm {
                name: name.to_string(),
                message,
                details,
                activated_at: weir_rules::now_ms(),
                deactivated_at: None,
            };
            active.insert(name.to_string(), alarm.clone());
            alarm
        };
        warn!(alarm = %alarm.name, message = %alarm.message, "alarm activated");
        let node = &broker.config.node.name;
        broker.event(EventKind::AlarmActivated, || alarm.columns(node, EventKind::AlarmActivated));
        true
    }

    /// Clears alarm `name` if it is active; returns whether it was.
    pub fn deactivate(&self, broker: &Broker, name: &str) -> bool {
        let Some(mut alarm) = self.active.lock().remove(name) else { return false };
        alarm.deactivated_at = Some(weir_rules::now_ms());
        info!(alarm = %alarm.name, "alarm deactivated");
        let node = &broker.config.node.name;
        broker.event(EventKind::AlarmDeactivated, || alarm.columns(node, EventKind::AlarmDeactivated));
        let mut history = self.history.lock();
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(alarm);
        true
    }

    /// Raises or clears `name` as `on` says: the monitor's one call per condition.
    pub fn set(
        &self,
        broker: &Broker,
        name: &str,
        on: bool,
        message: impl FnOnce() -> (String, BTreeMap<String, Value>),
    ) {
        if on {
            if !self.active.lock().contains_key(name) {
                let (message, details) = message();
                self.activate(broker, name, message, details);
            }
        } else {
            self.deactivate(broker, name);
        }
    }

    /// The active alarms, by name.
    pub fn active(&self) -> Vec<Alarm> {
        self.active.lock().values().cloned().collect()
    }

    /// The cleared alarms, newest first.
    pub fn deactivated(&self) -> Vec<Alarm> {
        self.history.lock().iter().rev().cloned().collect()
    }

    /// Forgets the cleared alarms (`DELETE /api/v5/alarms`).
    pub fn clear_history(&self) {
        self.history.lock().clear();
    }
}
