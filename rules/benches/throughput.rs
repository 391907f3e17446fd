//! Rule throughput on one core, for the three loads of docs/BENCHMARKS.md: a filter, a
//! projection with function calls, and a FOREACH over ten elements, on a ~200-byte JSON payload.
//! Each iteration builds the columns of a batch of 1024 messages as the engine does, then runs
//! the rule on the batch, as the engine does; throughput is counted in messages.
//!
//! Run: cargo bench -p weir-rules --bench throughput

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weir_rules::engine::ActiveRule;
use weir_rules::eval::Columns;
use weir_rules::files::LoadedRule;
use weir_rules::value::Value;

const PAYLOAD: &str = r#"{"device":"dev-0001","temp":31.5,"hum":40.1,"ts":1708671600123,"site":"north-plant","status":"ok","readings":[1,2,3,4,5,6,7,8,9,10],"fw":"1.2.3","battery":87}"#;

const RULES: &[(&str, &str)] = &[
    ("i_filter", r#"SELECT * FROM "t/#" WHERE payload.temp > 30"#),
    (
        "ii_projection",
        r#"SELECT payload.device AS device, upper(payload.site) AS site, payload.temp AS temp, payload.hum AS hum, round(payload.temp) AS t FROM "t/#""#,
    ),
    ("iii_foreach", r#"FOREACH payload.readings AS r DO r * 2 AS v FROM "t/#""#),
];

fn columns() -> Columns {
    let text = |s: &str| Value::Str(s.to_string());
    Columns::from([
        ("topic".into(), text("t/dev-0001")),
        ("payload".into(), text(PAYLOAD)),
        ("qos".into(), Value::Int(1)),
        ("clientid".into(), text("dev-0001")),
        ("timestamp".into(), Value::Int(1708671600123)),
        ("publish_received_at".into(), Value::Int(1708671600123)),
        ("event".into(), text("message.publish")),
        ("node".into(), text("weir@127.0.0.1")),
    ])
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
        assert!(!rule.run(&columns()).is_empty(), "{name} must produce output on the bench message");
        group.bench_function(*name, |b| {
            b.iter(|| {
                let batch: Vec<Columns> = (0..BATCH).map(|_| columns()).collect();
                let rows: Vec<&Columns> = batch.iter().collect();
                rule.run_batch(&rows)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
