//! Open transactions per principal, counted by permits that are taken before
//! a Begin awaits anything and given back when the transaction is gone.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::lock;

/// Counts of open transactions by principal.
#[derive(Default)]
pub(super) struct PrincipalCounts {
    counts: Arc<Mutex<HashMap<Arc<str>, usize>>>,
}

/// One open transaction of a principal; dropping it gives the place back.
pub(super) struct PrincipalPermit {
    counts: Arc<Mutex<HashMap<Arc<str>, usize>>>,
    principal: Arc<str>,
}

impl PrincipalCounts {
    /// A permit for one more transaction of `principal`, unless it already
    /// has `limit` open.
    pub(super) fn reserve(&self, principal: &Arc<str>, limit: usize) -> Option<PrincipalPermit> {
        let mut counts = lock(&self.counts);
        let count = counts.entry(principal.clone()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(PrincipalPermit {
            counts: self.counts.clone(),
            principal: principal.clone(),
        })
    }
}

impl Drop for PrincipalPermit {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.principal);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_up_to_the_limit_and_come_back() {
        let counts = PrincipalCounts::default();
        let alice: Arc<str> = "alice".into();
        let bob: Arc<str> = "bob".into();
        let first = counts.reserve(&alice, 2).unwrap();
        let second = counts.reserve(&alice, 2).unwrap();
        assert!(counts.reserve(&alice, 2).is_none());
        let _bob = counts.reserve(&bob, 2).unwrap();
        drop(first);
        let third = counts.reserve(&alice, 2).unwrap();
        drop((second, third));
        assert!(!lock(&counts.counts).contains_key(&alice));
    }
}
