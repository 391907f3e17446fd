//! The rule thread: a thread and a runtime of its own, so that rules never run on the MQTT
//! workers, and a batch being evaluated never holds up the connections that share a worker.
//!
//! It is supervised: a panic that escapes the runner (a rule's own panics are caught per batch,
//! in [`ActiveRule::run_batch`](crate::active_rule::ActiveRule::run_batch)) is logged, the
//! batch in hand is lost, and the runner starts again on the same queue. If the thread ends for
//! good, the intake is closed, so that no publisher waits for it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::intake::Input;
use super::runner::{Runner, DRAIN};

/// The rule thread's stack. jaq and the JSON writers recurse; their inputs' nesting is bounded,
/// and this leaves a wide margin. Only the pages touched are ever allocated.
pub(crate) const STACK: usize = 64 * 1024 * 1024;
/// The pause before a restart, so that a runner that panics at once does not spin.
const RESTART_PAUSE: Duration = Duration::from_millis(100);

/// How long stopping waits for the thread beyond [`DRAIN`]: the batch in hand may be writing
/// into a sink whose buffer is full.
const STOP_MARGIN: Duration = Duration::from_secs(2);

/// The running rule thread.
pub(super) struct RuleThread {
    /// Turned true to stop: the runner drains its queue, then ends.
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuleThread {
    /// Starts `runner` on the queue `queue`.
    pub(super) fn start(runner: Runner, queue: mpsc::UnboundedReceiver<Input>) -> std::io::Result<RuleThread> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("weir-rules".into())
            .stack_size(STACK)
            .spawn(move || supervise(&runner, queue, stopped))?;
        Ok(RuleThread { stop, thread: Some(thread) })
    }

    /// Stops the runner, which first runs what is queued (within [`DRAIN`]), and waits for the
    /// thread, within a bound.
    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            if tokio::time::timeout(DRAIN + STOP_MARGIN, joined).await.is_err() {
                tracing::warn!("the rule thread did not stop in time: stopping without it");
            }
        }
    }
}

/// Runs `runner` until the queue closes or `stopped` turns true, starting it again after a panic.
fn supervise(runner: &Runner, mut queue: mpsc::UnboundedReceiver<Input>, mut stopped: watch::Receiver<bool>) {
    let mut restarts = 0u64;
    loop {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the rule engine's runtime: rules will not run");
                break;
            }
        };
        let ran = catch_unwind(AssertUnwindSafe(|| runtime.block_on(runner.run(&mut queue, &mut stopped))));
        if ran.is_ok() || *stopped.borrow() {
            break;
        }
        restarts += 1;
        tracing::error!(restarts, "the rule engine panicked; the batch in hand is lost, and it starts again");
        runner.intake.restarted();
        std::thread::sleep(RESTART_PAUSE);
    }
    runner.intake.close();
}

impl Drop for RuleThread {
    fn drop(&mut self) {
        // A pipeline dropped without stop() still ends its thread (tests start many).
        let _ = self.stop.send(true);
    }
}
