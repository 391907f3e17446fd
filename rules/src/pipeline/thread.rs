//! The rule thread: a thread and a runtime of its own, so that rules never run on the MQTT
//! workers, and a batch being evaluated never holds up the connections that share a worker.

use tokio::sync::{mpsc, oneshot};

use super::intake::Input;
use super::runner::Runner;

/// The running rule thread.
pub(super) struct RuleThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuleThread {
    /// Starts `runner` on the queue `queue`.
    pub(super) fn start(runner: Runner, queue: mpsc::UnboundedReceiver<Input>) -> std::io::Result<RuleThread> {
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("weir-rules".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(async move {
                    tokio::select! {
                        () = runner.run(queue) => {}
                        _ = stopped => {}
                    }
                }),
                Err(e) => tracing::error!(error = %e, "cannot start the rule engine's runtime: rules will not run"),
            }
        })?;
        Ok(RuleThread { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the loop and waits for the thread.
    pub(super) async fn stop(mut self) {
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
        // A pipeline dropped without stop() still ends its thread (tests start many).
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
