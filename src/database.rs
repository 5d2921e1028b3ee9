//! The connection pool, and the side connections that control it: killing a
//! running statement and checking that the database answers.
use std::time::Duration;

use mysql_async::{
    Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts, prelude::Queryable,
};

use crate::{config::Config, errors::GatewayError};

/// The gateway's view of the database: the main pool and a small control pool.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// Separate connections for KILL QUERY and health pings, so that they work
    /// even when every pooled connection is busy.
    control: Pool,
    acquire_timeout: Duration,
}

impl Database {
    /// Creates the pools (with `password` instead of the URL's, if given).
    /// Connections are opened lazily, so this succeeds even while the
    /// database is unreachable.
    pub fn new(
        url: &str,
        password: Option<String>,
        config: &Config,
    ) -> Result<Database, mysql_async::Error> {
        let mut opts = Opts::from_url(url)?;
        if password.is_some() {
            opts = OptsBuilder::from_opts(opts).pass(password).into();
        }
        if let Some(ca) = &config.database_ssl_ca {
            // Verify the server against this CA only; and stay on TCP (by
            // default the driver may switch to a local unix socket, without TLS).
            let ssl = SslOpts::default()
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true);
            opts = OptsBuilder::from_opts(opts)
                .ssl_opts(ssl)
                .prefer_socket(false)
                .into();
        }
        let constraints = PoolConstraints::new(config.pool_min, config.pool_max)
            .expect("validated in config: pool_min <= pool_max");
        let pool_opts = PoolOpts::default()
            .with_constraints(constraints)
            // Keep idle connections above the minimum for a while instead of
            // closing them as they return, which churns connections in bursts.
            .with_inactive_connection_ttl(Duration::from_secs(60))
            // Reset every connection before another client gets it: nothing a
            // client sets (variables, temporary tables) leaks to the next one.
            .with_reset_connection(true);
        let main = OptsBuilder::from_opts(opts.clone()).pool_opts(pool_opts);
        let control = OptsBuilder::from_opts(opts).pool_opts(
            PoolOpts::default().with_constraints(PoolConstraints::new(0, 2).expect("0 <= 2")),
        );
        Ok(Database {
            pool: Pool::new(main),
            control: Pool::new(control),
            acquire_timeout: config.acquire_timeout,
        })
    }

    /// Takes a connection from the pool, waiting at most the acquire timeout.
    pub async fn acquire(&self) -> Result<Conn, GatewayError> {
        match tokio::time::timeout(self.acquire_timeout, self.pool.get_conn()).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(GatewayError::PoolExhausted(self.acquire_timeout)),
        }
    }

    /// Stops the statement running on connection `connection_id`, if any.
    ///
    /// Only call this while holding that connection, so that the kill cannot
    /// hit a statement of the connection's next user.
    pub async fn kill_query(&self, connection_id: u32) {
        let result = async {
            let mut conn = self.control.get_conn().await?;
            conn.query_drop(format!("KILL QUERY {connection_id}")).await
        };
        match tokio::time::timeout(self.acquire_timeout, result).await {
            Ok(Ok(())) => tracing::debug!(connection_id, "killed running statement"),
            // 1094: unknown thread id, the connection is already gone.
            Ok(Err(mysql_async::Error::Server(e))) if e.code == 1094 => {}
            Ok(Err(e)) => tracing::warn!(connection_id, error = %e, "could not kill statement"),
            Err(_) => tracing::warn!(connection_id, "timed out killing statement"),
        }
    }

    /// Lets go of a connection whose call was cancelled half-way: kills the
    /// statement that may still be running on it, then returns it to the pool
    /// (which reads what is left and resets it, or closes it if it is broken).
    pub fn abandon(&self, conn: Conn) {
        let database = self.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                database.kill_query(conn.id()).await;
                drop(conn);
            });
        }
    }

    /// The main pool's counters (connections in use, idle, waiting).
    pub fn pool_metrics(&self) -> std::sync::Arc<mysql_async::Metrics> {
        self.pool.metrics()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), mysql_async::Error> {
        let mut conn = self.control.get_conn().await?;
        conn.ping().await
    }

    /// Closes both pools once every connection is back.
    pub async fn disconnect(self) {
        for pool in [self.pool, self.control] {
            if let Err(e) = pool.disconnect().await {
                tracing::warn!(error = %e, "error while closing the connection pool");
            }
        }
    }
}

/// A pooled connection held for one autocommit call.
///
/// Dropped without [`PooledConn::release`], it belongs to a call cancelled
/// half-way: the statement still running on it is killed before the
/// connection goes back to the pool (which reads what is left and resets it).
pub struct PooledConn {
    conn: Option<Conn>,
    database: Database,
}

impl PooledConn {
    /// Takes a connection from the pool, waiting at most the acquire timeout.
    pub async fn acquire(database: &Database) -> Result<PooledConn, GatewayError> {
        Ok(PooledConn {
            conn: Some(database.acquire().await?),
            database: database.clone(),
        })
    }

    /// The connection.
    pub fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until released")
    }

    /// Returns the connection to the pool after a call that ran to its end.
    pub fn release(mut self) {
        drop(self.conn.take());
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.database.abandon(conn);
        }
    }
}
