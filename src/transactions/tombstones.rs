//! Remembered ends of transactions, so that a late call learns why its
//! transaction is gone (expired, aborted, committed) instead of "not found".
//!
//! Kept per principal, for [`TTL`] and up to a number of ends per principal
//! (--tx-outcomes-per-principal), oldest first out: one principal's
//! load can only make the gateway forget that principal's own ends, never
//! another's. Pruning walks only the expired entries (they are in insertion
//! order), because under load thousands of transactions end every second.
use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use std::sync::Arc;

use crate::errors::EndReason;

/// How long an end is remembered.
pub const TTL: Duration = Duration::from_secs(15 * 60);

/// How a transaction ended: why, and for a commit with replicas, its commit
/// token (so that a repeated Commit answers it again).
struct End {
    reason: EndReason,
    commit_token: Option<Box<str>>,
}

/// One principal's remembered ends.
#[derive(Default)]
struct Ends {
    reasons: HashMap<String, End>,
    /// Ids by time of end, oldest first.
    order: VecDeque<(Instant, String)>,
}

/// Why recently ended transactions ended, by principal.
pub(super) struct Tombstones {
    principals: HashMap<Arc<str>, Ends>,
    /// Most ends remembered per principal.
    per_principal: usize,
}

impl Tombstones {
    /// Remembers up to `per_principal` ends of each principal.
    pub(super) fn new(per_principal: usize) -> Tombstones {
        Tombstones {
            principals: HashMap::new(),
            per_principal,
        }
    }

    /// Remembers that `id`, owned by `owner`, ended for `reason` (with its
    /// commit token, if it committed and has one). Past the bound, `owner`'s
    /// oldest end is forgotten.
    pub(super) fn insert(
        &mut self,
        id: &str,
        owner: &Arc<str>,
        reason: EndReason,
        commit_token: Option<&str>,
        now: Instant,
    ) {
        if self.per_principal == 0 {
            return;
        }
        let ends = self.principals.entry(owner.clone()).or_default();
        let end = End {
            reason,
            commit_token: commit_token.map(Box::from),
        };
        if let Some(known) = ends.reasons.get_mut(id) {
            // Settled later (a COMMIT whose outcome was unknown): in place.
            *known = end;
            return;
        }
        if ends.order.len() >= self.per_principal
            && let Some((_, oldest)) = ends.order.pop_front()
        {
            ends.reasons.remove(&oldest);
        }
        ends.reasons.insert(id.to_string(), end);
        ends.order.push_back((now, id.to_string()));
    }

    /// How `id` ended, if it is remembered and was `owner`'s.
    fn end(&self, id: &str, owner: &str) -> Option<&End> {
        self.principals.get(owner)?.reasons.get(id)
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

    /// Forgets ends older than the TTL, and principals with none left.
    pub(super) fn prune(&mut self, now: Instant) {
        self.principals.retain(|_, ends| {
            while let Some((at, _)) = ends.order.front() {
                if now.duration_since(*at) < TTL {
                    break;
                }
                let (_, id) = ends.order.pop_front().expect("front exists");
                ends.reasons.remove(&id);
            }
            !ends.order.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_then_forgets_in_order() {
        let start = Instant::now();
        let owner: Arc<str> = "alice".into();
        let mut tombstones = Tombstones::new(10);
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
        assert!(tombstones.principals.is_empty());
    }

    #[test]
    fn each_principal_has_its_own_bound() {
        const BOUND: usize = 1000;
        let now = Instant::now();
        let (alice, mallory): (Arc<str>, Arc<str>) = ("alice".into(), "mallory".into());
        let mut tombstones = Tombstones::new(BOUND);
        tombstones.insert("a", &alice, EndReason::Committed, None, now);
        for i in 0..BOUND + 1 {
            tombstones.insert(&i.to_string(), &mallory, EndReason::RolledBack, None, now);
        }
        assert_eq!(tombstones.get("0", "mallory"), None);
        assert_eq!(tombstones.get("1", "mallory"), Some(EndReason::RolledBack));
        assert_eq!(tombstones.principals["mallory"].reasons.len(), BOUND);
        // Mallory's load flushed only Mallory's ends.
        assert_eq!(tombstones.get("a", "alice"), Some(EndReason::Committed));
    }
}
