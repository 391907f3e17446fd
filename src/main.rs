//! `weir`: the command line. Everything it runs lives in the library crates; this file parses
//! arguments, sets up logging and the runtime, and reports errors.

mod ctl;
mod rule;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's allocator: messages are allocated on the MQTT workers and freed
/// on the rule thread and the sinks' tasks, which glibc's arenas handle badly
/// (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option, by its place in mimalloc 3's list of options (the crate
/// exports no constant for it; a test checks the place against the option's default).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long memory freed by the process stays with it before mimalloc hands it back to the OS.
/// With mimalloc's 1 s, the buffers that the rule engine and the sinks use batch after batch
/// went back and were faulted in, zeroed, again (docs/BENCHMARKS.md, "mimalloc's purge
/// delay"). The variable `MIMALLOC_PURGE_DELAY` still overrides it.
const PURGE_DELAY_MS: std::os::raw::c_long = 10_000;

/// Weir: an MQTT broker whose messages flow through SQL rules into your databases.
///
/// Start a broker with `weir serve`; with no config file it listens for MQTT on port 1883 and
/// for MQTT over WebSocket on port 8083 (path /mqtt), serves the management API on
/// 127.0.0.1:18083 and runs the rules of ./sql. `weir rule` checks and tests rules; `weir ctl`
/// manages a running node (its users). The load tool is a binary of its own, `weir-bench`.
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
    /// Work with rule files (EMQX rule SQL) without a running broker.
    #[command(subcommand)]
    Rule(rule::RuleCommand),
    /// Manage a running node through its API: the built-in database's users.
    Ctl(ctl::Ctl),
    /// The process in which `weir` runs jq programs, started by `weir` itself
    /// (weir_rules::functions::jq::worker).
    #[command(hide = true)]
    JqWorker,
}

fn main() -> anyhow::Result<ExitCode> {
    // SAFETY: sets an integer option of the allocator, before any other thread exists (mimalloc's
    // option setters are not thread-safe).
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    let cli = Cli::parse();
    if let Command::JqWorker = cli.command {
        weir_rules::functions::jq::worker::serve().context("jq worker")?;
        return Ok(ExitCode::SUCCESS);
    }
    match std::env::current_exe() {
        Ok(exe) => weir_rules::functions::jq::worker::run_in_worker_process(exe, vec!["jq-worker".into()]),
        Err(e) => eprintln!("weir: jq programs run inside this process, as its path is unknown: {e}"),
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve { config } => runtime.block_on(serve(config)).map(|()| ExitCode::SUCCESS),
        Command::Rule(cmd) => rule::run(cmd),
        Command::Ctl(ctl) => runtime.block_on(ctl::run(ctl)),
        Command::JqWorker => Ok(ExitCode::SUCCESS),
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = weir_hub::Config::load(config.as_deref())?;
    // Handlers first: a SIGTERM that came once the listeners were up, but before the handlers
    // existed, would kill the process without saying goodbye to its clients.
    let stop = stop_signal()?;
    let server = weir_hub::Server::start(config).await?;
    stop.await;
    server.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C), whose handlers are in place once this returns.
#[cfg(unix)]
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn purge_delay_is_the_option_it_is_taken_for() {
        // Nothing in this test process sets it: mimalloc 3's default purge delay is 1,000 ms.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an integer option.
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, 1000);
        }
    }
}
