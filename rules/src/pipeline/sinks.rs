//! The node's sinks: those of `[sinks.*]`, started with the node, and the built-in `weir_db`
//! (SQLite at `data_dir/weir.db`, table `telemetry`), started when a rule first writes into it.
//! Rules hand their rows over as a [`weir_connectors::row::RowBatch`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use weir_connectors::driver::{DeliveryConfig, SinkHandle};
use weir_connectors::sinks::mqtt::{LocalBroker, LocalSlot};
use weir_connectors::sinks::sqlite::SqliteConfig;
use weir_connectors::sinks::{self, SinkError};
use weir_connectors::sinks::{SinkConfig, SinkKind};

/// The built-in sink's name.
pub const DEFAULT_SINK: &str = "weir_db";

/// How long stopping waits for the sinks, which give the batches they are writing 2 s.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The built-in sink's table, created if missing.
const DEFAULT_TABLE: &str = "CREATE TABLE IF NOT EXISTS telemetry (\
    id INTEGER PRIMARY KEY, received_at INTEGER, clientid TEXT, topic TEXT, payload TEXT)";

/// The sinks of a node, by name.
pub struct Sinks {
    /// Where their buffers (and the built-in sink's database) live.
    data_dir: PathBuf,
    /// This broker, for MQTT sinks without a `server`; set once the broker exists.
    local: LocalSlot,
    /// Configs of the sinks not started yet (the built-in one, until a rule uses it).
    idle: Mutex<BTreeMap<String, SinkConfig>>,
    /// The sinks started, by name.
    running: Mutex<BTreeMap<String, Arc<SinkHandle>>>,
}

impl Sinks {
    /// The local broker's slot, for sinks started outside [`Sinks::start`] that publish into it.
    pub fn local(&self) -> &LocalSlot {
        &self.local
    }

    /// Starts the configured sinks on the current runtime and wires their dead letters.
    pub fn start(configured: &BTreeMap<String, SinkConfig>, data_dir: PathBuf) -> Result<Sinks, SinkError> {
        let local = LocalSlot::default();
        let mut running = BTreeMap::new();
        for (name, config) in configured {
            running.insert(name.clone(), sinks::start(name, config, &data_dir, &local)?);
        }
        for (name, config) in configured {
            if let Some(dl) = &config.delivery.dead_letter {
                let target = running.get(dl).cloned().ok_or_else(|| SinkError::Invalid {
                    sink: name.clone(),
                    message: format!("dead_letter: no sink is named `{dl}`; define [sinks.{dl}]"),
                })?;
                running[name].set_dead_letter(target);
            }
        }
        let mut idle = BTreeMap::new();
        if !running.contains_key(DEFAULT_SINK) {
            idle.insert(DEFAULT_SINK.to_string(), default_sink(&data_dir));
        }
        Ok(Sinks { data_dir, local, idle: Mutex::new(idle), running: Mutex::new(running) })
    }

    /// The sink `name`, started now if it is the built-in one; `None` if there is none.
    pub fn get(&self, name: &str) -> Result<Option<Arc<SinkHandle>>, SinkError> {
        if let Some(s) = self.running.lock().get(name) {
            return Ok(Some(s.clone()));
        }
        let Some(config) = self.idle.lock().remove(name) else {
            return Ok(None);
        };
        let handle = sinks::start(name, &config, &self.data_dir, &self.local)?;
        self.running.lock().insert(name.to_string(), handle.clone());
        Ok(Some(handle))
    }

    /// Adds a sink started elsewhere (a destination in memory, in tests); it replaces one of
    /// the same name.
    pub fn add(&self, handle: Arc<SinkHandle>) {
        self.running.lock().insert(handle.name.clone(), handle);
    }

    /// Sets the broker that MQTT sinks without a `server` publish into; the first one set stays.
    pub fn connect(&self, broker: Arc<dyn LocalBroker>) {
        let _ = self.local.set(broker);
    }

    /// The running sinks, by name.
    pub fn running(&self) -> Vec<Arc<SinkHandle>> {
        self.running.lock().values().cloned().collect()
    }

    /// Stops every sink and waits for them (a bounded while): their buffers keep what was not
    /// delivered, and record what was.
    pub async fn stop(&self) {
        let running: Vec<Arc<SinkHandle>> = self.running.lock().values().cloned().collect();
        for s in &running {
            s.stop();
        }
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        for s in &running {
            s.stopped(deadline.saturating_duration_since(tokio::time::Instant::now())).await;
        }
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("data_dir", &self.data_dir)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

fn default_sink(data_dir: &std::path::Path) -> SinkConfig {
    SinkConfig {
        delivery: DeliveryConfig::default(),
        kind: SinkKind::Sqlite(SqliteConfig {
            url: format!("sqlite:{}", data_dir.join("weir.db").display()),
            table: Some("telemetry".into()),
            sql: None,
            init_sql: vec![DEFAULT_TABLE.into()],
        }),
    }
}
