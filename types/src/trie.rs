//! The topic trie: "which filters match this topic". One implementation, shared by the broker's
//! subscription table and the rules' index of FROM filters; each filter's node holds a slot of
//! the caller's type.

use std::collections::HashMap;

/// What a trie node stores for the filter that ends there. Empty slots are pruned.
pub trait Slot: Default {
    /// Whether the slot holds nothing, so that its node can go.
    fn is_empty(&self) -> bool;
}

impl<T> Slot for Vec<T> {
    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

/// A trie of topic filters, each level one node; `+` and `#` have nodes of their own.
#[derive(Debug)]
pub struct Trie<T: Slot> {
    root: Node<T>,
    /// Number of non-empty slots, for statistics.
    filters: usize,
}

#[derive(Debug)]
struct Node<T> {
    children: HashMap<Box<str>, Node<T>>,
    plus: Option<Box<Node<T>>>,
    hash: Option<Box<Node<T>>>,
    slot: T,
}

impl<T: Slot> Default for Node<T> {
    fn default() -> Self {
        Node { children: HashMap::new(), plus: None, hash: None, slot: T::default() }
    }
}

impl<T: Slot> Node<T> {
    fn is_empty(&self) -> bool {
        self.slot.is_empty() && self.children.is_empty() && self.plus.is_none() && self.hash.is_none()
    }

    fn child_mut(&mut self, level: &str) -> &mut Node<T> {
        match level {
            "+" => self.plus.get_or_insert_with(Default::default),
            "#" => self.hash.get_or_insert_with(Default::default),
            _ => self.children.entry(level.into()).or_default(),
        }
    }
}

impl<T: Slot> Default for Trie<T> {
    fn default() -> Self {
        Trie { root: Node::default(), filters: 0 }
    }
}

impl<T: Slot> Trie<T> {
    /// Number of filters with a non-empty slot.
    pub fn len(&self) -> usize {
        self.filters
    }

    /// Whether no filter has a non-empty slot.
    pub fn is_empty(&self) -> bool {
        self.filters == 0
    }

    /// Runs `f` on the slot of `filter`, creating the path if needed; prunes it if `f` empties it.
    pub fn update<R>(&mut self, filter: &str, f: impl FnOnce(&mut T) -> R) -> R {
        let mut delta = 0isize;
        let r = Self::update_at(&mut self.root, filter.split('/'), f, &mut delta);
        self.filters = self.filters.saturating_add_signed(delta);
        r
    }

    fn update_at<'a, R>(
        node: &mut Node<T>,
        mut levels: impl Iterator<Item = &'a str>,
        f: impl FnOnce(&mut T) -> R,
        delta: &mut isize,
    ) -> R {
        match levels.next() {
            None => {
                let was_empty = node.slot.is_empty();
                let r = f(&mut node.slot);
                *delta = match (was_empty, node.slot.is_empty()) {
                    (true, false) => 1,
                    (false, true) => -1,
                    _ => 0,
                };
                r
            }
            Some(level) => {
                let r = Self::update_at(node.child_mut(level), levels, f, delta);
                // Prune the child we went through if it holds nothing any more.
                match level {
                    "+" if node.plus.as_ref().is_some_and(|n| n.is_empty()) => node.plus = None,
                    "#" if node.hash.as_ref().is_some_and(|n| n.is_empty()) => node.hash = None,
                    _ if node.children.get(level).is_some_and(Node::is_empty) => {
                        node.children.remove(level);
                    }
                    _ => {}
                }
                r
            }
        }
    }

    /// The slot of exactly `filter`, if it exists.
    pub fn get(&self, filter: &str) -> Option<&T> {
        let mut node = &self.root;
        for level in filter.split('/') {
            node = match level {
                "+" => node.plus.as_deref()?,
                "#" => node.hash.as_deref()?,
                _ => node.children.get(level)?,
            };
        }
        (!node.slot.is_empty()).then_some(&node.slot)
    }

    /// Calls `f(filter_slot)` for every filter that matches `topic`. A topic starting with `$` is
    /// not matched by a filter starting with `+` or `#` (MQTT 5.0, 4.7.2).
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&T)) {
        // Walks with a cloned `split` iterator per branch: no allocation on the publish path.
        Self::walk(&self.root, topic.split('/'), true, topic.starts_with('$'), &mut f);
    }

    fn walk<'t>(
        node: &Node<T>,
        mut levels: std::str::Split<'t, char>,
        first: bool,
        dollar: bool,
        f: &mut impl FnMut(&T),
    ) {
        let wildcard_ok = !(first && dollar);
        if wildcard_ok {
            if let Some(hash) = &node.hash {
                // `a/#` matches `a` itself as well as everything below it.
                if !hash.slot.is_empty() {
                    f(&hash.slot);
                }
            }
        }
        let Some(level) = levels.next() else {
            if !node.slot.is_empty() {
                f(&node.slot);
            }
            return;
        };
        if let Some(child) = node.children.get(level) {
            Self::walk(child, levels.clone(), false, dollar, f);
        }
        if wildcard_ok {
            if let Some(plus) = &node.plus {
                Self::walk(plus, levels, false, dollar, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic;

    fn matching(t: &Trie<Vec<&'static str>>, topic: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        t.for_each_match(topic, |s| out.extend(s.iter().copied()));
        out.sort_unstable();
        out
    }

    const FILTERS: &[&str] =
        &["#", "+", "a", "a/#", "a/+", "a/b", "a/+/c", "+/b/#", "/", "/+", "$SYS/#", "$SYS/+", "a/b/c/#"];

    #[test]
    fn agrees_with_the_reference_matcher() {
        let mut t: Trie<Vec<&'static str>> = Trie::default();
        for f in FILTERS {
            t.update(f, |s| s.push(*f));
        }
        assert_eq!(t.len(), FILTERS.len());
        for topic in ["a", "a/b", "a/b/c", "a/x/c", "/", "/x", "$SYS/up", "$SYS", "x/b", "x/b/y", "a/b/c/d"] {
            let mut want: Vec<&str> = FILTERS.iter().copied().filter(|f| topic::matches(f, topic)).collect();
            want.sort_unstable();
            assert_eq!(matching(&t, topic), want, "topic {topic}");
        }
    }

    #[test]
    fn removal_prunes() {
        let mut t: Trie<Vec<&'static str>> = Trie::default();
        t.update("a/+/c", |s| s.push("x"));
        t.update("a/+/c", |s| s.clear());
        assert!(t.is_empty());
        assert!(t.root.is_empty());
        assert!(t.get("a/+/c").is_none());
    }
}
