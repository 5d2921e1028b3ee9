//! A replica of a private server, with real GTID replication: for the tests
//! and the benchmark of reads on replicas.
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::{EmbeddedDatabase, EmbeddedOptions};

/// A private primary (binary log on, TCP on 127.0.0.1 for its replica) and a
/// private replica of it (TCP on 127.0.0.1 too, so that both can be named in
/// one URL) that replicates everything from now on.
pub struct ReplicatedPair {
    /// The primary (server id 1).
    pub primary: EmbeddedDatabase,
    /// The replica (server id 2).
    pub replica: EmbeddedDatabase,
}

/// Why a replicated pair could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// A server did not start.
    #[error(transparent)]
    Embedded(#[from] super::EmbeddedError),
    /// Setting replication up failed.
    #[error("setting up replication: {0}")]
    Database(#[from] mysql_async::Error),
    /// No free TCP port for the primary.
    #[error("no free port for the primary: {0}")]
    Port(#[from] std::io::Error),
}

impl ReplicatedPair {
    /// Starts both servers in `dir`-`primary` and `dir`-`replica` (removed
    /// when they stop) and starts replication: what each set up for itself
    /// before (its accounts) stays its own, everything later replicates.
    pub async fn start(dir: &std::path::Path) -> Result<ReplicatedPair, ReplicationError> {
        let free_port = || -> std::io::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let port = free_port()?;
        let with_suffix = |suffix: &str| {
            let mut path = dir.as_os_str().to_owned();
            path.push(suffix);
            std::path::PathBuf::from(path)
        };
        let primary = EmbeddedDatabase::start(&EmbeddedOptions {
            data_dir: with_suffix("-primary"),
            remove_on_stop: true,
            tcp_port: Some(port),
            extra_args: vec!["--log-bin".into(), "--server-id=1".into()],
            principals: Vec::new(),
            outcomes_schema: String::new(),
        })?;
        let replica = EmbeddedDatabase::start(&EmbeddedOptions {
            data_dir: with_suffix("-replica"),
            remove_on_stop: true,
            tcp_port: Some(free_port()?),
            // A binary log of its own, as a replica that may be promoted
            // has: once promoted, its writes get GTIDs (commit tokens).
            extra_args: vec![
                "--server-id=2".into(),
                "--log-bin".into(),
                "--log-slave-updates".into(),
            ],
            principals: Vec::new(),
            outcomes_schema: String::new(),
        })?;
        let mut on_primary = mysql_async::Conn::from_url(primary.url("mysql")).await?;
        on_primary
            .query_drop("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-password'")
            .await?;
        on_primary
            .query_drop("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
            .await?;
        let position: Option<String> = on_primary.query_first("SELECT @@gtid_binlog_pos").await?;
        on_primary.disconnect().await?;
        let mut on_replica = mysql_async::Conn::from_url(replica.url("mysql")).await?;
        on_replica
            .exec_drop(
                "SET GLOBAL gtid_slave_pos = ?",
                (position.unwrap_or_default(),),
            )
            .await?;
        on_replica
            .query_drop(format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={port}, \
                 MASTER_USER='repl', MASTER_PASSWORD='repl-password', MASTER_USE_GTID=slave_pos"
            ))
            .await?;
        on_replica.query_drop("START SLAVE").await?;
        on_replica.disconnect().await?;
        Ok(ReplicatedPair { primary, replica })
    }

    /// Waits until the replica has applied everything the primary has
    /// written so far, at most `timeout`; false if it did not.
    pub async fn wait_until_caught_up(
        &self,
        timeout: Duration,
    ) -> Result<bool, mysql_async::Error> {
        let mut on_primary = mysql_async::Conn::from_url(self.primary.url("mysql")).await?;
        let position: Option<String> = on_primary.query_first("SELECT @@gtid_binlog_pos").await?;
        on_primary.disconnect().await?;
        let mut on_replica = mysql_async::Conn::from_url(self.replica.url("mysql")).await?;
        let waited: Option<i64> = on_replica
            .exec_first(
                "SELECT MASTER_GTID_WAIT(?, ?)",
                (position.unwrap_or_default(), timeout.as_secs_f64()),
            )
            .await?;
        on_replica.disconnect().await?;
        Ok(waited == Some(0))
    }
}
