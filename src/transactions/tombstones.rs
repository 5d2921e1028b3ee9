//! Remembered ends of transactions, so that a late call learns why its
//! transaction is gone (expired, aborted, committed) instead of "not found".
//!
//! Kept for a while and up to a number of entries; oldest first out. Pruning
//! walks only the expired entries (they are in insertion order), because
//! under load thousands of transactions end every second.
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use std::sync::Arc;

use crate::errors::EndReason;

/// How many ends are remembered at most.
const CAPACITY: usize = 100_000;
/// How long an end is remembered.
const TTL: Duration = Duration::from_secs(15 * 60);

/// How a transaction ended: why, whose it was, and for a commit with
/// replicas, its commit token (so that a repeated Commit answers it again).
struct End {
    reason: EndReason,
    owner: Arc<str>,
    commit_token: Option<Box<str>>,
}

/// Why recently ended transactions ended.
#[derive(Default)]
pub(super) struct Tombstones {
    reasons: HashMap<String, End>,
    /// Ids by time of end, oldest first.
    order: VecDeque<(Instant, String)>,
}

impl Tombstones {
    /// Remembers that `id`, owned by `owner`, ended for `reason` (with its
    /// commit token, if it committed and has one).
    pub(super) fn insert(
        &mut self,
        id: &str,
        owner: &Arc<str>,
        reason: EndReason,
        commit_token: Option<&str>,
        now: Instant,
    ) {
        if self.order.len() >= CAPACITY
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.reasons.remove(&oldest);
        }
        let end = End {
            reason,
            owner: owner.clone(),
            commit_token: commit_token.map(Box::from),
        };
        self.reasons.insert(id.to_string(), end);
        self.order.push_back((now, id.to_string()));
    }

    /// How `id` ended, if it is remembered and was `owner`'s.
    fn end(&self, id: &str, owner: &str) -> Option<&End> {
        self.reasons.get(id).filter(|end| &*end.owner == owner)
    }

    /// Why `id` ended, if it is remembered and was `owner`'s.
    pub(super) fn get(&self, id: &str, owner: &str) -> Option<EndReason> {
        self.end(id, owner).map(|end| end.reason)
    }

    /// The commit token `id` committed with, if it is remembered, was
    /// `owner`'s and had one.
    pub(super) fn commit_token(&self, id: &str, owner: &str) -> Option<String> {
        self.end(id, owner)?
            .commit_token
            .as_deref()
            .map(String::from)
    }

    /// Forgets ends older than the TTL.
    pub(super) fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < TTL {
                break;
            }
            let (_, id) = self.order.pop_front().expect("front exists");
            self.reasons.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_then_forgets_in_order() {
        let start = Instant::now();
        let owner: Arc<str> = "alice".into();
        let mut tombstones = Tombstones::default();
        tombstones.insert("a", &owner, EndReason::Committed, Some("0-1-7"), start);
        tombstones.insert(
            "b",
            &owner,
            EndReason::IdleTimeout,
            None,
            start + Duration::from_secs(60),
        );
        assert_eq!(tombstones.get("a", "alice"), Some(EndReason::Committed));
        assert_eq!(
            tombstones.commit_token("a", "alice").as_deref(),
            Some("0-1-7")
        );
        assert_eq!(tombstones.get("a", "mallory"), None);
        assert_eq!(tombstones.commit_token("a", "mallory"), None);
        assert_eq!(tombstones.commit_token("b", "alice"), None);
        tombstones.prune(start + TTL);
        assert_eq!(tombstones.get("a", "alice"), None);
        assert_eq!(tombstones.get("b", "alice"), Some(EndReason::IdleTimeout));
        tombstones.prune(start + TTL + Duration::from_secs(60));
        assert_eq!(tombstones.get("b", "alice"), None);
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let now = Instant::now();
        let owner: Arc<str> = "alice".into();
        let mut tombstones = Tombstones::default();
        for i in 0..CAPACITY + 1 {
            tombstones.insert(&i.to_string(), &owner, EndReason::RolledBack, None, now);
        }
        assert_eq!(tombstones.get("0", "alice"), None);
        assert_eq!(tombstones.get("1", "alice"), Some(EndReason::RolledBack));
        assert_eq!(tombstones.reasons.len(), CAPACITY);
    }
}
