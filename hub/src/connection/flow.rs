//! Back-pressure, as the connection lives it: while the broker says this publisher must wait
//! (a subscriber it feeds is full, or the rules' queue is), or while the client is over its
//! listener's rate ([`crate::rate`]), nothing more is read from it, and TCP slows the client
//! down. Its own deliveries keep flowing meanwhile, and a takeover or a shutdown still reaches
//! it.

use std::time::{Duration, Instant};

use super::goodbye::Exit;
use super::Connection;
use crate::session::Kick;
use crate::transport::Transport;

impl<S: Transport> Connection<S> {
    /// Waits until the broker says this client may be read again.
    pub(super) async fn wait_for_room(&mut self) -> Result<(), Exit> {
        while self.broker.must_wait(&self.burst) {
            let own = self.session.clone();
            tokio::select! {
                () = self.broker.relieved(&mut self.burst, &own) => {}
                _ = own.notify.notified() => {
                    self.pump_mailbox();
                    self.flush_or_leave().await?;
                }
                kicked = &mut self.kick => return Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            }
        }
        Ok(())
    }

    /// Reads nothing for `pause`, the time the client needs to be back within its rate. The
    /// pause does not count as the client's silence for keep-alive.
    pub(super) async fn pause_reads(&mut self, pause: Duration) -> Result<(), Exit> {
        if self.limiter.as_mut().is_some_and(|l| l.first_pause()) {
            tracing::info!(client_id = %self.client_id, pause_ms = pause.as_millis() as u64, "client exceeds its listener's messages_rate or bytes_rate: its reads pause");
        }
        let until = tokio::time::Instant::now() + pause;
        loop {
            let own = self.session.clone();
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                _ = own.notify.notified() => {
                    self.pump_mailbox();
                    self.flush_or_leave().await?;
                }
                kicked = &mut self.kick => return Err(Exit::Kicked(kicked.unwrap_or(Kick::TakenOver))),
            }
        }
        self.last_recv = Instant::now();
        Ok(())
    }
}
