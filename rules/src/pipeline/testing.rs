//! A pipeline whose rules write into a destination in memory, for the tests of this crate and of
//! the crates above (feature `testing`).

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_connectors::driver::DeliveryConfig;
use weir_connectors::sinks::SinkConfig;
use weir_connectors::testing::MemorySink;

use super::{Pipeline, PipelineConfig, Sinks};

/// A running pipeline on its own rules and data directories, with a sink `mem` in memory.
pub struct MemoryPipeline {
    /// The pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The sink `mem`: what rules write into it lands here.
    pub mem: Arc<MemorySink>,
    /// Holds the rules and data directories until the pipeline is dropped.
    _dir: tempfile::TempDir,
}

impl MemoryPipeline {
    /// Starts the rule files `rules` (name, text), the sinks `configured` and `mem`, which
    /// delivers as `delivery` says, with a queue bound of `queue` messages.
    pub fn start(
        rules: &[(&str, &str)],
        configured: &BTreeMap<String, SinkConfig>,
        delivery: &DeliveryConfig,
        queue: usize,
    ) -> MemoryPipeline {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (rules_dir, data_dir) = (dir.path().join("sql"), dir.path().join("data"));
        std::fs::create_dir_all(&rules_dir).expect("the rules directory");
        for (name, text) in rules {
            std::fs::write(rules_dir.join(name), text).expect("a rule file");
        }
        let sinks = Sinks::start(configured, data_dir.clone()).expect("the configured sinks start");
        let mem = Arc::new(MemorySink::default());
        let mem_dir = data_dir.join("sinks").join("mem");
        let handle = weir_connectors::driver::start("mem", "memory", mem.clone(), delivery, &mem_dir);
        sinks.add(handle.expect("the sink in memory starts"));
        let tables = BTreeMap::new();
        let config = PipelineConfig {
            rules_dir: &rules_dir,
            data_dir: &data_dir,
            node: "n",
            tables: &tables,
            sinks: configured,
            queue,
        };
        let pipeline = Pipeline::with_sinks(config, sinks).expect("the pipeline starts");
        MemoryPipeline { pipeline, mem, _dir: dir }
    }

    /// A counter of the sink `sink`, by its EMQX name (`success`, `failed`, ...).
    pub fn sink_metric(&self, sink: &str, name: &str) -> u64 {
        let sinks = self.pipeline.sinks();
        let handle = sinks.iter().find(|s| s.name == sink).expect("the sink runs");
        handle.snapshot().into_iter().find(|(k, _)| *k == name).map_or(0, |(_, v)| v)
    }
}
