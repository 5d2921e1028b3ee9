//! The standard gRPC health service, fed by a periodic database ping.
//!
//! Both the overall status (`""`) and `sqlgate.v1.Database` are NOT_SERVING
//! until the database answers, while it does not, and from the start of a
//! shutdown on.
use std::time::Duration;

use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{api::SERVICE_NAME, database::Database};

/// How often the database is pinged.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a ping may take before the database counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Sets both health entries.
pub async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter.set_service_status(SERVICE_NAME, status).await;
}

/// Pings the database forever, keeping health up to date and logging each
/// change of reachability once. Shutdown aborts this task before it sets
/// NOT_SERVING for good.
pub async fn monitor(database: Database, reporter: HealthReporter) {
    let mut reachable: Option<bool> = None;
    loop {
        let outcome = tokio::time::timeout(PING_TIMEOUT, database.ping()).await;
        let now_reachable = matches!(outcome, Ok(Ok(())));
        if reachable != Some(now_reachable) {
            match &outcome {
                Ok(Ok(())) => tracing::info!("database is reachable; serving"),
                Ok(Err(mysql_async::Error::Server(e))) if matches!(e.code, 1044 | 1045) => {
                    tracing::error!(error = %e, "the database refused the credentials; check the user and password in --database-url")
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "database is unreachable; not serving until it is")
                }
                Err(_) => tracing::error!(
                    "database did not answer a ping within {PING_TIMEOUT:?}; not serving until it does"
                ),
            }
            let status = if now_reachable {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_status(&reporter, status).await;
            reachable = Some(now_reachable);
        }
        tokio::time::sleep(PING_INTERVAL).await;
    }
}
