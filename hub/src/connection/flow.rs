//! Back-pressure, as the connection lives it: while the broker says this publisher must wait
//! (a subscriber it feeds is full, or the rules' queue is), nothing more is read from it, and
//! TCP slows the client down. Its own deliveries keep flowing meanwhile, and a takeover or a
//! shutdown still reaches it.

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
}
