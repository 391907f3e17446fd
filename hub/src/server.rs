//! Starting and stopping a node: bind the listeners, start the background tasks, and shut down
//! cleanly (stop accepting, tell clients, wait for them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

use crate::broker::Broker;
use crate::config::Config;
use crate::rule_engine::RuleEngine;
use crate::{listener, sys};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({listener}): {source}; set [listeners.{listener}] bind to a free address")]
    Bind { listener: &'static str, addr: SocketAddr, source: std::io::Error },
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
    /// Tasks that run until aborted (the rule engine and its directory watcher).
    background: JoinSet<()>,
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
        let (rules, queue) = RuleEngine::new(config.rules_dir.clone(), config.node.name.clone(), table_names);
        let mut background = JoinSet::new();
        for (name, table) in &config.tables {
            background.spawn(crate::tables::keep_loaded(name.clone(), table.clone(), rules.tables.clone()));
        }
        let broker = Broker::new(config, Some(rules.clone()));
        background.spawn(rules.clone().run(queue));
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
    }
}
