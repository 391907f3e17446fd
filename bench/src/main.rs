//! `weir-bench`: the command line of the load tool; the loads live in the library.

use clap::{Parser, Subcommand};
use weir_bench::{conn, kafka, publish, sub};

/// The load tool shares the broker's allocator: the publishers' CPU is measured beside the
/// broker's on the same cores, and it should cost what it did as `weir bench`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// weir-bench: a load generator for any MQTT broker (Weir, Mosquitto, EMQX, rumqttd ...).
///
/// Run `sub` and `pub` in two terminals; publishers stamp each payload with its send time, so
/// subscribers report end-to-end latency when both run on one machine. Progress goes to stderr
/// every second; the last line on stdout is a `summary:` with key=value figures for scripts.
#[derive(Parser)]
#[command(name = "weir-bench", version, about, long_about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open many connections and hold them (measure connection rate and broker memory).
    Conn(conn::ConnArgs),
    /// Subscribe many clients and measure received messages/s and end-to-end latency.
    Sub(sub::SubArgs),
    /// Publish from many clients at a fixed rate or as fast as the broker takes it.
    Pub(publish::PubArgs),
    /// Produce rows straight to Kafka (the ceiling a Kafka sink is measured against).
    Kafka(kafka::KafkaArgs),
}

const EXAMPLES: &str = "Examples (run sub and pub in two terminals):
  weir-bench sub -c 1 -t 'bench/#' -q 1 -d 20                  one subscriber, QoS 1
  weir-bench pub -c 10 -t 'bench/%i' -q 1 -s 64 -r 20000 -d 10  10 publishers, 20,000 msgs/s in total
  weir-bench conn -c 10000 -d 30                               10,000 idle connections
  weir-bench kafka --brokers 127.0.0.1:9092 -t rows -n 100000  rows straight to Kafka";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Conn(a) => conn::run(a).await,
            Command::Sub(a) => sub::run(a).await,
            Command::Pub(a) => publish::run(a).await,
            Command::Kafka(a) => kafka::run(a).await,
        }
    })
}
