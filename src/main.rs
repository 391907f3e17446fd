//! `weir`: the command line. Everything it runs lives in the library crates; this file parses
//! arguments, sets up logging and the runtime, and reports errors.

mod bench;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Weir: an MQTT broker whose messages flow through SQL rules into your databases.
///
/// Start a broker with `weir serve`; with no config file it listens on MQTT 1883,
/// WebSocket 8083 (/mqtt) and serves the management API on 127.0.0.1:18083.
#[derive(Parser)]
#[command(name = "weir", version, about, long_about)]
struct Cli {
    /// Log filter, as `info`, `debug` or `weir_hub=debug,info`.
    #[arg(long, global = true, env = "WEIR_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    ///
    /// Reads the config file if given (TOML; every key optional, unknown keys are errors) and
    /// applies WEIR_* environment overrides, e.g. WEIR_LISTENERS__TCP__BIND=127.0.0.1:1884.
    /// Stops cleanly on Ctrl-C or SIGTERM: clients get DISCONNECT 0x8B.
    Serve {
        /// Path to weir.toml.
        #[arg(short, long, env = "WEIR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Load-test an MQTT broker (Weir or any other), in the spirit of emqtt-bench.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)),
        Command::Bench(cmd) => runtime.block_on(bench::run(cmd)),
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = weir_hub::Config::load(config.as_deref())?;
    let server = weir_hub::Server::start(config).await?;
    wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
