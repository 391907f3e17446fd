//! Failed logins counted per client address: past `max_count` within `window_time`, the
//! address is banned for `ban_time` (EMQX's flapping detection, applied to failed logins).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::warn;

use super::config::FlappingConfig;

/// Addresses tracked at most: past it, those whose window and ban are over are dropped, and if
/// that is not enough, new addresses are not counted until some are (a flood from many
/// addresses must not grow the map without bound).
const MAX_TRACKED: usize = 64 * 1024;

struct Entry {
    window_start: Instant,
    failures: u32,
    banned_until: Option<Instant>,
}

pub(super) struct Flapping {
    max_count: u32,
    window: Duration,
    ban: Duration,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl Flapping {
    pub(super) fn new(cfg: &FlappingConfig) -> Flapping {
        Flapping {
            max_count: cfg.max_count.max(1),
            window: Duration::from_secs(cfg.window_time.max(1)),
            ban: Duration::from_secs(cfg.ban_time),
            entries: Mutex::default(),
        }
    }

    /// Whether `peer` is banned now.
    pub(super) fn banned(&self, peer: IpAddr) -> bool {
        let now = Instant::now();
        self.entries.lock().get(&peer).and_then(|e| e.banned_until).is_some_and(|until| until > now)
    }

    /// Counts a failed login from `peer`, banning it past the limit.
    pub(super) fn failed(&self, peer: IpAddr) {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&peer) {
            let window = self.window;
            entries.retain(|_, e| e.banned_until.is_some_and(|u| u > now) || now - e.window_start < window);
            if entries.len() >= MAX_TRACKED {
                return;
            }
        }
        let entry = entries.entry(peer).or_insert(Entry { window_start: now, failures: 0, banned_until: None });
        if now - entry.window_start >= self.window {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures += 1;
        if entry.failures >= self.max_count {
            warn!(%peer, failures = entry.failures, ban_secs = self.ban.as_secs(), "failed logins past [flapping_detect] max_count: address banned");
            entry.banned_until = Some(now + self.ban);
            entry.failures = 0;
            entry.window_start = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_banned_past_max_count_and_others_are_not() {
        let f = Flapping::new(&FlappingConfig { enable: true, max_count: 3, window_time: 60, ban_time: 60 });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        f.failed(a);
        f.failed(a);
        assert!(!f.banned(a));
        f.failed(a);
        assert!(f.banned(a));
        assert!(!f.banned(b));
    }

    #[test]
    fn a_ban_ends() {
        let f = Flapping::new(&FlappingConfig { enable: true, max_count: 1, window_time: 60, ban_time: 0 });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        f.failed(a);
        assert!(!f.banned(a));
    }
}
