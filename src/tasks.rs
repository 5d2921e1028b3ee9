//! Background work that shutdown waits for, instead of polling or leaving it
//! behind: rollbacks and kills of abandoned work, connections given back,
//! and the endless loops (the reaper, the metrics gauges, SIGHUP reloads).
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Tracks background tasks. Cheap to clone; clones share the tasks.
#[derive(Clone, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    /// Stops the endless loops at shutdown.
    stop_loops: CancellationToken,
}

impl Tasks {
    /// Runs finite work (a rollback, a kill) to its end; shutdown waits for it.
    pub(crate) fn spawn<F>(&self, work: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(work)
    }

    /// Runs an endless loop until shutdown stops it.
    pub(crate) fn spawn_loop(&self, work: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop_loops.clone();
        self.tracker.spawn(async move {
            stop.run_until_cancelled(work).await;
        });
    }

    /// Stops the loops and waits, at most `patience`, for every task to end.
    /// Returns false when some were still running.
    pub(crate) async fn stop(&self, patience: Duration) -> bool {
        self.stop_loops.cancel();
        self.tracker.close();
        tokio::time::timeout(patience, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_loops_and_waits_for_work() {
        let tasks = Tasks::default();
        tasks.spawn_loop(std::future::pending());
        let (done, finished) = tokio::sync::oneshot::channel();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            done.send(()).unwrap();
        });
        assert!(tasks.stop(Duration::from_secs(5)).await);
        finished
            .await
            .expect("finite work ran to its end before stop returned");
    }

    #[tokio::test]
    async fn stop_gives_up_after_its_patience() {
        let tasks = Tasks::default();
        tasks.spawn(std::future::pending::<()>());
        assert!(!tasks.stop(Duration::from_millis(20)).await);
    }
}
