//! Gives memory that the gateway freed back to the system.
//!
//! glibc's allocator returns freed memory to the system only from the top of
//! a heap; what a burst of connections and streams freed in the middle of its
//! heaps (one per arena, several with several threads) stays resident, and
//! the process's RSS stays at the burst's peak. `malloc_trim(0)` releases the
//! free pages of every arena, so a loop watches how much the allocator holds
//! free and trims when that has grown by [`TRIM_AFTER_FREED`] since the last
//! look: once after a burst, never in a steady state (where freed memory is
//! reused as fast as it is freed).
//!
//! Other allocators measured instead (README, "Memory held by idle
//! streams"): jemalloc with background purging gives memory back too but
//! takes minutes to compile on two cores; mimalloc gave none back.
#![allow(unsafe_code)] // two calls into glibc, each with its SAFETY note

use std::time::Duration;

/// How often the loop looks at the allocator's free memory.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Free memory the allocator may gain before it is given back, bytes.
pub const TRIM_AFTER_FREED: usize = 8 << 20;

/// The same while a burst is still ending (the last look trimmed): what it
/// frees after a trim is given back at the next look, not left resident.
pub const TRIM_AFTER_FREED_SETTLING: usize = 1 << 20;

/// When to trim, from the free bytes seen at each look.
#[derive(Debug)]
struct Trigger {
    /// The least free memory seen since the last trim.
    floor: usize,
    /// Whether the last look trimmed.
    settling: bool,
}

impl Trigger {
    /// A trigger that starts from `free` bytes.
    fn new(free: usize) -> Self {
        Trigger {
            floor: free,
            settling: false,
        }
    }

    /// True when `free` bytes is [`TRIM_AFTER_FREED`] more than the least
    /// seen since the last trim ([`TRIM_AFTER_FREED_SETTLING`] right after a
    /// trim).
    fn observe(&mut self, free: usize) -> bool {
        let threshold = match self.settling {
            true => TRIM_AFTER_FREED_SETTLING,
            false => TRIM_AFTER_FREED,
        };
        if free >= self.floor.saturating_add(threshold) {
            return true;
        }
        self.floor = self.floor.min(free);
        self.settling = false;
        false
    }

    /// Starts again from `free` bytes, seen just after a trim.
    fn trimmed(&mut self, free: usize) {
        self.floor = free;
        self.settling = true;
    }
}

/// Runs forever: every [`CHECK_INTERVAL`], gives freed memory back when the
/// allocator has gained enough of it (see the module's documentation).
pub(crate) async fn give_back_freed_memory() {
    let mut trigger = Trigger::new(allocator::free_bytes());
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if trigger.observe(allocator::free_bytes()) {
            // It walks every arena: off the runtime's threads.
            let trimmed = tokio::task::spawn_blocking(|| {
                let before = allocator::free_bytes();
                allocator::trim();
                (before, allocator::free_bytes())
            })
            .await;
            if let Ok((before, after)) = trimmed {
                tracing::debug!(
                    free_before = before,
                    free_after = after,
                    "freed memory given back"
                );
                trigger.trimmed(after);
            }
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator {
    /// Bytes the allocator holds free (resident or not).
    pub(super) fn free_bytes() -> usize {
        // SAFETY: mallinfo2 (glibc 2.33+) takes no arguments, locks each
        // arena while it counts, and returns a plain struct by value.
        unsafe { libc::mallinfo2() }.fordblks
    }

    /// Gives the allocator's free pages back to the system.
    pub(super) fn trim() {
        // SAFETY: malloc_trim locks each arena while it releases free
        // pages; it invalidates no allocation.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Other allocators give memory back by themselves (or cannot be asked).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod allocator {
    pub(super) fn free_bytes() -> usize {
        0
    }

    pub(super) fn trim() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_the_free_memory_has_grown_enough() {
        let mut trigger = Trigger::new(1 << 20);
        assert!(!trigger.observe(4 << 20));
        assert!(trigger.observe((1 << 20) + TRIM_AFTER_FREED));
        trigger.trimmed(30 << 20);
        // The burst is still ending: a little more is given back at once.
        assert!(trigger.observe(32 << 20));
        trigger.trimmed(32 << 20);
        // Trimming does not make the free memory less: no trim again for it.
        assert!(!trigger.observe(32 << 20));
        // Settled: small changes wait for the full threshold again.
        assert!(!trigger.observe(34 << 20));
        // A burst reuses it, then frees it again: trim again.
        assert!(!trigger.observe(2 << 20));
        assert!(trigger.observe(30 << 20));
    }

    #[test]
    fn a_steady_state_never_trims() {
        let mut trigger = Trigger::new(0);
        for round in 0..100 {
            let free = (round % 7) * (TRIM_AFTER_FREED / 8);
            assert!(!trigger.observe(free), "round {round}");
        }
    }
}
