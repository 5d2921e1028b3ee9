//! Purging records older than --request-id-retention: in batches of
//! [`table::PURGE_BATCH`], as the main account, every tenth of the retention
//! (at least every second, at most every five minutes), off the hot path.
//! Every instance of a fleet purges; their DELETEs only ever remove expired
//! rows, so they cannot disturb each other beyond waiting on a row lock.
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::{Outcomes, table};
use crate::auth::Principal;

/// The pause between two batches of one purge, so that a large backlog is
/// removed in small transactions that never hold locks for long.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// How often the purge runs for a retention.
pub(super) fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// Purges forever (until shutdown stops the loop).
pub(super) async fn run(outcomes: Outcomes) {
    let retention = outcomes.inner.settings.retention;
    loop {
        tokio::time::sleep(interval(retention)).await;
        match purge_expired(&outcomes, retention).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "purged expired request ids"),
            // No table yet (no request id was used): nothing to purge.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => {}
            Err(e) => tracing::warn!(error = %e, "could not purge expired request ids"),
        }
    }
}

/// Deletes every record older than `retention`, a batch at a time.
async fn purge_expired(
    outcomes: &Outcomes,
    retention: Duration,
) -> Result<u64, mysql_async::Error> {
    let backend = match outcomes.inner.database.backend_for(&Principal::anonymous()) {
        Ok(backend) => backend,
        Err(_) => return Ok(0),
    };
    let mut conn = match backend.acquire("").await {
        Ok(conn) => conn,
        // The database is away: try again next time.
        Err(_) => return Ok(0),
    };
    let micros = u64::try_from(retention.as_micros()).unwrap_or(u64::MAX);
    let sql = table::purge(outcomes.schema());
    let mut removed = 0;
    loop {
        conn.exec_drop(&sql, (micros,)).await?;
        let batch = conn.affected_rows();
        removed += batch;
        if batch < u64::from(table::PURGE_BATCH) {
            return Ok(removed);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_follows_the_retention() {
        assert_eq!(
            interval(Duration::from_secs(24 * 3600)),
            Duration::from_secs(300)
        );
        assert_eq!(interval(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_secs(1));
    }
}
