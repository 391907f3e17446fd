//! Starting and stopping a node: bind the listeners, start the background tasks, and shut down
//! cleanly (stop accepting, tell clients, wait for them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;
use weir_rules::pipeline::{self, Pipeline, PipelineConfig};

use crate::api::keys::ApiKeys;
use crate::auth::Access;
use crate::broker::Broker;
use crate::config::Config;
use crate::store::{DataDirLock, Store, StoreError};
use crate::{listener, sys};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's address is taken or not ours.
    #[error("cannot listen on {addr} ({listener}): {source}; set [listeners.{listener}] bind to a free address")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// The address it was to bind.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The rule pipeline could not start.
    #[error(transparent)]
    Rules(#[from] pipeline::StartError),
    /// The data directory is taken, or the store does not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TLS listener's certificate, key or CA file is unusable.
    #[error(transparent)]
    Tls(#[from] crate::listener::tls::TlsError),
    /// The authentication or authorization config is unusable.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
}

/// A running node.
pub struct Server {
    /// The broker, for in-process users (tests, the fuzz target).
    pub broker: Arc<Broker>,
    /// Where MQTT over TCP is served, if enabled (the real port when the config said 0).
    pub tcp_addr: Option<SocketAddr>,
    /// Where MQTT over WebSocket is served, if enabled.
    pub ws_addr: Option<SocketAddr>,
    /// Where MQTT over TLS is served, if enabled.
    pub ssl_addr: Option<SocketAddr>,
    /// Where MQTT over WebSocket over TLS is served, if enabled.
    pub wss_addr: Option<SocketAddr>,
    /// Where the management API is served, if enabled.
    pub api_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    /// Tasks that stop on the shutdown signal (listeners, `$SYS`).
    tasks: JoinSet<()>,
    /// The rules and their sinks: stopped after the clients, so that what they sent is handed on.
    pipeline: Arc<Pipeline>,
    /// This process's hold on the data directory, released when the server is gone.
    _lock: DataDirLock,
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
        // First: the sinks' buffers live in the data directory too.
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let mut store = Store::open(&config.data_dir, &config.durability)?;
        // Before the rules start: a bad ACL file or key stops the node before anything runs.
        let (users, api_keys) = store
            .as_mut()
            .map(|(_, l)| (std::mem::take(&mut l.users), std::mem::take(&mut l.api_keys)))
            .unwrap_or_default();
        let kept_in = store.as_ref().map(|(s, _)| s.clone());
        let access = Access::new(&config, users, kept_in.clone())?;
        let api_keys = Arc::new(ApiKeys::new(config.api.bootstrap_key.as_deref(), api_keys, kept_in)?);
        let pipeline = Pipeline::start(PipelineConfig {
            rules_dir: &config.rules_dir,
            data_dir: &config.data_dir,
            node: &config.node.name,
            tables: &config.tables,
            sinks: &config.sinks,
            queue: pipeline::intake::QUEUE,
        })?;
        let (store, sessions, messages, rule_input) = match store {
            Some((store, l)) => (Some((store, l.retained)), l.sessions, l.messages, l.rule_input),
            None => (None, Vec::new(), Default::default(), Vec::new()),
        };
        let keeps = store.is_some();
        let broker = Broker::with_store(config, Some(pipeline.intake()), store, access);
        broker.restore_sessions(sessions, &messages);
        pipeline.connect(broker.clone());
        if keeps {
            pipeline.keep_input_in(broker.clone());
        }
        broker.replay_rule_input(rule_input);
        let cfg = &broker.config;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut server = Server {
            broker: broker.clone(),
            tcp_addr: None,
            ws_addr: None,
            ssl_addr: None,
            wss_addr: None,
            api_addr: None,
            shutdown,
            tasks: JoinSet::new(),
            pipeline: pipeline.clone(),
            _lock: lock,
        };
        if cfg.listeners.tcp.enable {
            let l = bind("tcp", cfg.listeners.tcp.bind).await?;
            server.tcp_addr = l.local_addr().ok();
            tasks.spawn(listener::tcp::run(l, broker.clone(), shutdown_rx.clone()));
        }
        if cfg.listeners.ssl.is_on() {
            let certs = listener::tls::Certificates::load(cfg.listeners.ssl.certificates())?;
            let l = bind("ssl", cfg.listeners.ssl.bind).await?;
            server.ssl_addr = l.local_addr().ok();
            tasks.spawn(listener::tls::run(l, certs, broker.clone(), shutdown_rx.clone()));
        }
        if cfg.listeners.ws.enable {
            let l = bind("ws", cfg.listeners.ws.bind).await?;
            server.ws_addr = l.local_addr().ok();
            tasks.spawn(listener::ws::run(l, broker.clone(), shutdown_rx.clone()));
        }
        if cfg.listeners.wss.is_on() {
            let certs = listener::tls::Certificates::load(cfg.listeners.wss.certificates())?;
            let l = bind("wss", cfg.listeners.wss.bind).await?;
            server.wss_addr = l.local_addr().ok();
            tasks.spawn(listener::tls::run_wss(l, certs, broker.clone(), shutdown_rx.clone()));
        }
        if cfg.api.enable {
            let l = bind("api", cfg.api.bind).await?;
            server.api_addr = l.local_addr().ok();
            if api_keys.is_empty() {
                tracing::warn!("the management API has no credentials: only /api/v5/prometheus/stats answers; set [api] bootstrap_key = \"key:secret\" (or WEIR_API__BOOTSTRAP_KEY) and make API keys with it");
            }
            let app = crate::api::router(broker.clone(), Some(pipeline.clone()), api_keys.clone());
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
        tasks.spawn(crate::alarm::monitor::run(broker.clone(), pipeline.clone(), shutdown_rx.clone()));
        if cfg.sys_topics.sys_msg_interval > 0 {
            let every = Duration::from_secs(cfg.sys_topics.sys_msg_interval);
            tasks.spawn(sys::run(broker.clone(), every, shutdown_rx.clone()));
        }
        if let Some(every) = broker.access.authz.reload_every() {
            tasks.spawn(reload_acl(broker.clone(), every, shutdown_rx.clone()));
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
        self.pipeline.stop().await;
        self.broker.settle_store().await;
    }
}

/// Reads the ACL files again when they change, until shutdown.
async fn reload_acl(broker: Arc<Broker>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let b = broker.clone();
                // Reading a file is blocking I/O: not on the MQTT workers.
                let _ = tokio::task::spawn_blocking(move || b.access.authz.reload_if_changed()).await;
            }
            _ = stop.changed() => return,
        }
    }
}
