//! Shutdown, in the order the module comment of `server` gives.
use std::{sync::Arc, time::Duration};

use tokio::{sync::Notify, task::JoinHandle};
use tonic_health::ServingStatus;

use crate::{
    database::Database, embedded::EmbeddedDatabase, errors::EndReason, health,
    transactions::Transactions,
};

/// Time calls in flight get to finish once the server stops taking calls.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(3);
/// Time background work (rollbacks, kills) gets to finish once the server has stopped.
const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the pool gets to close once the server has stopped.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What shutdown has to stop, in order.
pub(super) struct Lifecycle {
    pub(super) database: Database,
    pub(super) transactions: Transactions,
    pub(super) reporter: tonic_health::server::HealthReporter,
    pub(super) monitor: JoinHandle<()>,
    pub(super) server: JoinHandle<()>,
    pub(super) stop_serving: Arc<Notify>,
    pub(super) end_streams: tokio::sync::watch::Sender<bool>,
    pub(super) embedded: Option<EmbeddedDatabase>,
    pub(super) spans: Option<crate::telemetry::SpanExport>,
    pub(super) grace: Duration,
}

impl Lifecycle {
    pub(super) async fn shut_down(self) {
        tracing::info!(grace = ?self.grace, "shutting down: not serving, refusing new transactions");
        self.monitor.abort();
        let _ = self.monitor.await;
        health::set_status(&self.reporter, ServingStatus::NotServing).await;
        self.transactions.start_draining();

        self.transactions
            .wait_until_none_open(tokio::time::Instant::now() + self.grace)
            .await;
        let left = self.transactions.open_count();
        if left > 0 {
            tracing::warn!(
                open = left,
                "grace period over: rolling back open transactions"
            );
        }
        self.transactions
            .abort_all(EndReason::Shutdown, IN_FLIGHT_GRACE)
            .await;

        self.stop_serving.notify_one();
        let mut server = self.server;
        if tokio::time::timeout(IN_FLIGHT_GRACE, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("calls still running after the grace period: ending them");
            let _ = self.end_streams.send(true);
            if tokio::time::timeout(IN_FLIGHT_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        // Rollbacks, kills and connections given back finish before the
        // pool closes (it waits for every connection); the loops stop.
        if !self.database.tasks().stop(BACKGROUND_TIMEOUT).await {
            tracing::warn!("background work did not finish in time");
        }
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, self.database.disconnect())
            .await
            .is_err()
        {
            tracing::warn!("the connection pool did not close in time");
        }
        if let Some(embedded) = self.embedded {
            let stopped = tokio::task::spawn_blocking(move || embedded.stop()).await;
            if let Ok(Err(e)) = stopped {
                tracing::warn!(error = %e, "the private database server did not stop cleanly");
            }
        }
        // Last, so that the spans of the calls that ended above go out.
        if let Some(spans) = self.spans {
            spans.shut_down().await;
        }
        tracing::info!("shutdown complete");
    }
}
