//! The reaper: rolls back transactions whose idle timeout or maximum lifetime
//! has passed, and forgets old tombstones.
use std::{
    sync::{Weak, atomic::Ordering},
    time::{Duration, Instant},
};

use super::{Registry, Transactions, lock};

/// Longest sleep between two looks, so that tombstones get pruned too.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs until the registry is dropped.
pub(super) async fn run(registry: Weak<Registry>) {
    loop {
        let Some(inner) = registry.upgrade() else {
            return;
        };
        let transactions = Transactions { inner };
        let next = &transactions.inner.reaper_next;
        next.store(0, Ordering::SeqCst);
        let next_deadline = reap_once(&transactions, Instant::now());
        let since = next_deadline.saturating_duration_since(transactions.inner.created);
        next.store((since.as_nanos() as u64).max(1), Ordering::SeqCst);
        let wakeup = transactions.inner.reaper_wakeup.clone();
        // Do not keep the registry alive while sleeping. A transaction begun
        // meanwhile whose timer runs out before `next_deadline` leaves a
        // permit in `wakeup`, so it is not missed.
        drop(transactions);
        tokio::select! {
            _ = tokio::time::sleep_until(next_deadline.into()) => {}
            _ = wakeup.notified() => {}
        }
    }
}

/// Ends every transaction whose timer ran out and is not in a call; returns
/// when the next timer runs out.
fn reap_once(transactions: &Transactions, now: Instant) -> Instant {
    let open: Vec<_> = lock(&transactions.inner.open).values().cloned().collect();
    let mut next = now + MAX_SLEEP;
    for transaction in open {
        let (deadline, reason) = transaction.deadline();
        if deadline > now {
            next = next.min(deadline);
            continue;
        }
        // A transaction in a call is not idle; if its lifetime ran out, the
        // call ends it when it lets go (see `Lease::release`).
        if let Ok(guard) = transaction.state.clone().try_lock_owned() {
            transactions.end_idle(&transaction, guard, reason);
        }
    }
    lock(&transactions.inner.ended).prune(now);
    next
}
