//! Starting and stopping a node: bind the listeners, start the background tasks, and shut down
//! cleanly (stop accepting, tell clients, wait for them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tracing::info;

use crate::broker::Broker;
use crate::config::Config;
use crate::rule_engine::RuleEngine;
use crate::sinks::Sinks;
use crate::{listener, sys};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({listener}): {source}; set [listeners.{listener}] bind to a free address")]
    Bind { listener: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the rule engine's thread: {0}")]
    RuleThread(std::io::Error),
    #[error(transparent)]
    Sink(#[from] weir_connectors::sinks::SinkError),
}

/// The rule engine's own thread and runtime: rules never run on the MQTT workers, and a batch
/// being evaluated never holds up the connections that share a worker.
struct RuleThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuleThread {
    fn start(
        rules: Arc<RuleEngine>,
        queue: mpsc::UnboundedReceiver<crate::rule_engine::Input>,
    ) -> Result<RuleThread, StartError> {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("weir-rules".into())
            .spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(async move {
                    tokio::select! {
                        () = rules.run(queue) => {}
                        _ = stopped => {}
                    }
                }),
                Err(e) => tracing::error!(error = %e, "cannot start the rule engine's runtime: rules will not run"),
            })
            .map_err(StartError::RuleThread)?;
        Ok(RuleThread { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the engine and waits for its thread.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for RuleThread {
    fn drop(&mut self) {
        // A server dropped without shutdown() still stops its engine (tests start many).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A running node.
pub struct Server {
    pub broker: Arc<Broker>,
    /// Where MQTT over TCP is served, if enabled (the real port when the config said 0).
    pub tcp_addr: Option<SocketAddr>,
    /// Where MQTT over WebSocket is served, if enabled.
    pub ws_addr: Option<SocketAddr>,
    /// Where the management API is served, if enabled.
    pub api_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    /// Tasks that stop on the shutdown signal (listeners, `$SYS`).
    tasks: JoinSet<()>,
    /// Tasks that run until aborted (the rules directory watcher, reference tables).
    background: JoinSet<()>,
    rules: RuleThread,
    /// Stopped last, once no rule writes into them: their buffers keep what was not delivered.
    sinks: Arc<Sinks>,
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let l = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { listener: name, addr, source })?;
    let local = l.local_addr().unwrap_or(addr);
    info!(listener = name, addr = %local, "listening");
    Ok(l)
}

impl Server {
    /// Binds every enabled listener and starts serving.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let table_names = config.tables.keys().cloned().collect();
        let sinks = Arc::new(Sinks::start(&config.sinks, config.data_dir.clone())?);
        let (rules, queue) =
            RuleEngine::new(config.rules_dir.clone(), config.node.name.clone(), table_names, sinks.clone());
        let mut background = JoinSet::new();
        for (name, table) in &config.tables {
            background.spawn(crate::tables::keep_loaded(name.clone(), table.clone(), rules.tables.clone()));
        }
        let broker = Broker::new(config, Some(rules.clone()));
        let _ = sinks.local.set(broker.clone());
        let rule_thread = RuleThread::start(rules.clone(), queue)?;
        background.spawn(rules.watch());
        let cfg = &broker.config;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut server = Server {
            broker: broker.clone(),
            tcp_addr: None,
            ws_addr: None,
            api_addr: None,
            shutdown,
            tasks: JoinSet::new(),
            background,
            rules: rule_thread,
            sinks,
        };
        if cfg.listeners.tcp.enable {
            let l = bind("tcp", cfg.listeners.tcp.bind).await?;
            server.tcp_addr = l.local_addr().ok();
            tasks.spawn(listener::tcp::run(l, broker.clone(), shutdown_rx.clone()));
        }
        if cfg.listeners.ws.enable {
            let l = bind("ws", cfg.listeners.ws.bind).await?;
            server.ws_addr = l.local_addr().ok();
            tasks.spawn(listener::ws::run(l, cfg.listeners.ws.path.clone(), broker.clone(), shutdown_rx.clone()));
        }
        if cfg.api.enable {
            let l = bind("api", cfg.api.bind).await?;
            server.api_addr = l.local_addr().ok();
            let app = crate::api::router(broker.clone());
            let mut stop = shutdown_rx.clone();
            tasks.spawn(async move {
                let stopped = async move {
                    let _ = stop.changed().await;
                };
                if let Err(e) = axum::serve(l, app).with_graceful_shutdown(stopped).await {
                    tracing::warn!(error = %e, "management API stopped");
                }
            });
        }
        if cfg.sys_topics.sys_msg_interval > 0 {
            let every = Duration::from_secs(cfg.sys_topics.sys_msg_interval);
            tasks.spawn(sys::run(broker.clone(), every, shutdown_rx.clone()));
        }
        server.tasks = tasks;
        Ok(server)
    }

    /// Stops accepting, disconnects every client (v5 reason 0x8B) and waits for the tasks.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        let _ = self.shutdown.send(true);
        self.broker.disconnect_all().await;
        while self.tasks.join_next().await.is_some() {}
        self.background.abort_all();
        self.rules.stop().await;
        self.sinks.stop();
    }
}
