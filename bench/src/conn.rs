//! `weir-bench conn`: many idle connections, for the connection rate and the broker's memory.

use std::time::{Duration, Instant};

use clap::Args;

use crate::load::{connect_all, Common};

/// The options of `weir-bench conn`.
#[derive(Args)]
pub struct ConnArgs {
    #[command(flatten)]
    common: Common,
}

/// Opens the connections, holds them for `--duration`, and prints the rate they opened at.
pub async fn run(a: ConnArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let clients = connect_all(&a.common).await?;
    let rate = clients.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
    tokio::time::sleep(Duration::from_secs(a.common.duration)).await;
    println!("summary: connections={} conn_rate={:.0}", clients.len(), rate);
    Ok(())
}
