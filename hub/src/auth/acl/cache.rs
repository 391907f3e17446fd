//! A client's recent authorization results: at most `max_size`, each for `ttl`, and only while
//! the rules are those they came from (the generation).

use std::time::{Duration, Instant};

use super::rule::{Check, Permission};

/// One client's cache; a connection makes it on its first check.
#[derive(Debug)]
pub struct AclCache {
    max_size: usize,
    ttl: Duration,
    /// The sources' generation the entries were decided under.
    generation: u64,
    /// Oldest first.
    entries: Vec<(Check, Box<str>, Permission, Instant)>,
}

impl AclCache {
    /// An empty cache.
    pub fn new(max_size: usize, ttl: Duration) -> AclCache {
        AclCache { max_size, ttl, generation: 0, entries: Vec::new() }
    }

    /// The cached result of `check` on `topic`, if it is fresh and the rules have not changed.
    pub fn get(&mut self, generation: u64, check: Check, topic: &str) -> Option<Permission> {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
            return None;
        }
        let at = self.entries.iter().position(|(c, t, _, _)| *c == check && &**t == topic)?;
        if self.entries[at].3.elapsed() > self.ttl {
            self.entries.remove(at);
            return None;
        }
        Some(self.entries[at].2)
    }

    /// Keeps a result, dropping the oldest past `max_size`.
    pub fn put(&mut self, generation: u64, check: Check, topic: &str, permission: Permission) {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
        if self.entries.len() >= self.max_size {
            self.entries.remove(0);
        }
        self.entries.push((check, topic.into(), permission, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_fresh_and_dropped_when_the_rules_change() {
        let mut c = AclCache::new(2, Duration::from_secs(60));
        c.put(0, Check::Publish, "a", Permission::Allow);
        c.put(0, Check::Publish, "b", Permission::Deny);
        c.put(0, Check::Publish, "c", Permission::Deny);
        assert_eq!(c.get(0, Check::Publish, "a"), None);
        assert_eq!(c.get(0, Check::Publish, "b"), Some(Permission::Deny));
        assert_eq!(c.get(0, Check::Subscribe, "b"), None);
        assert_eq!(c.get(1, Check::Publish, "b"), None);
        let mut stale = AclCache::new(2, Duration::ZERO);
        stale.put(0, Check::Publish, "a", Permission::Allow);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(stale.get(0, Check::Publish, "a"), None);
    }
}
