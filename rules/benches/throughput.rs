//! Rule throughput on one core, for the three loads of docs/BENCHMARKS.md: a filter, a
//! projection with function calls, and a FOREACH over ten elements, on a ~200-byte JSON payload.
//! Each iteration builds the input of a batch of 1024 publishes as the engine does (straight from
//! the messages), then runs the rule on it; throughput is counted in messages.
//!
//! Run: cargo bench -p weir-rules --bench throughput

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_rules::active_rule::ActiveRule;
use weir_rules::files::LoadedRule;
use weir_rules::plan::publish_batch::{Publish, PublishBatch};
use weir_rules::plan::Input;

const PAYLOAD: &str = r#"{"device":"dev-0001","temp":31.5,"hum":40.1,"ts":1708671600123,"site":"north-plant","status":"ok","readings":[1,2,3,4,5,6,7,8,9,10],"fw":"1.2.3","battery":87}"#;

const RULES: &[(&str, &str)] = &[
    ("i_filter", r#"SELECT * FROM "t/#" WHERE payload.temp > 30"#),
    (
        "ii_projection",
        r#"SELECT payload.device AS device, upper(payload.site) AS site, payload.temp AS temp, payload.hum AS hum, round(payload.temp) AS t FROM "t/#""#,
    ),
    ("iii_foreach", r#"FOREACH payload.readings AS r DO r * 2 AS v FROM "t/#""#),
];

fn publish() -> Publish<'static> {
    Publish {
        topic: "t/dev-0001",
        payload: PAYLOAD.as_bytes(),
        qos: weir_types::QoS::AtLeastOnce,
        clientid: Some("dev-0001"),
        retain: false,
        properties: None,
        timestamp_ms: 1708671600123,
    }
}

/// A batch of `n` publishes with the columns `reads` says, as the engine builds it.
fn batch(n: usize, reads: &[bool]) -> Input {
    let mut batch = PublishBatch::new("weir@127.0.0.1", reads);
    (0..n).for_each(|_| batch.push(&publish()));
    batch.finish()
}

/// The engine's batch size.
const BATCH: usize = 1024;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, sql) in RULES {
        let statement = weir_rules::parse_file(sql).expect("rule parses").remove(0);
        let rule =
            ActiveRule::new(LoadedRule { id: (*name).into(), statement }, Default::default(), Default::default());
        let reads = rule.publish_reads();
        let out = rule.run_batch(&batch(1, &reads), None);
        assert!(out.output.iter().any(|b| b.num_rows() > 0), "{name} must produce output on the bench message");
        group.bench_function(*name, |b| b.iter(|| rule.run_batch(&batch(BATCH, &reads), None)));
    }
    group.finish();
    // The engine's whole cost per message in scripts/bench-rules.sh: the batch built once, then
    // its ten rules (64-byte payloads there; this payload is larger).
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(BATCH as u64));
    let ten: Vec<ActiveRule> = (0..10)
        .map(|i| {
            let sql = r#"SELECT clientid, topic, qos, payload FROM "t/#" WHERE qos >= 0"#;
            let statement = weir_rules::parse_file(sql).expect("rule parses").remove(0);
            ActiveRule::new(LoadedRule { id: format!("r{i}"), statement }, Default::default(), Default::default())
        })
        .collect();
    let reads = ten[0].publish_reads();
    group.bench_function("ten_rules", |b| {
        b.iter(|| {
            let input = batch(BATCH, &reads);
            ten.iter().map(|r| r.run_batch(&input, None).rows.len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
