//! Replicas of the database that reads may go to (`--replica-url`), with
//! read-your-writes.
//!
//! Every replica has its own pools and control connections (a KILL QUERY must
//! reach the server that runs the statement), one per login as on the
//! primary: a read runs as the account its principal runs as on the
//! primary (the read-only account for read-only principals, a principal's
//! own account when it is mapped to one), always in a READ ONLY session. Each
//! replica is checked every
//! `--replica-check-interval`: `SHOW SLAVE STATUS` says whether replication
//! runs and how far behind it is. A replica that cannot be reached, whose
//! replication stopped, or that is more than `--replica-max-lag` behind is
//! out of rotation until a later check finds it well again.
//!
//! A read chooses with its `ReadConsistency`: `max_staleness` takes a
//! replica measured at most that far behind; `min_commit_token` takes a
//! replica and waits (at most `--replica-wait`, with `MASTER_GTID_WAIT`)
//! until it has applied the write the token names. When no replica can, the
//! read goes to the primary: never older data than asked for.
use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mysql_async::{Conn, Row, prelude::Queryable};

use super::{Backend, Login, login::Logins};
use crate::{config::ReplicaConfig, errors::GatewayError, tasks::Tasks};

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    /// Not checked yet, unreachable, or replication stopped or too far behind.
    Out,
    /// Replicating, this far behind.
    In { lag: Duration },
}

struct Replica {
    /// The URL without its password, for logs.
    name: String,
    /// The main account's backend: its control connections check the replica.
    backend: Backend,
    /// The backends of every login.
    logins: Logins,
    health: RwLock<Health>,
}

/// The replicas; cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    replicas: Arc<Vec<Replica>>,
    settings: ReplicaConfig,
    /// Spreads reads over the replicas that qualify.
    next: Arc<AtomicUsize>,
    /// Wakes the checking task before its interval (the primary changed).
    wake: Arc<tokio::sync::Notify>,
}

/// How fresh a read must be, when a replica may serve it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadBound {
    /// A replica measured at most this far behind.
    MaxStaleness(Duration),
    /// A replica that has applied the write this commit token names.
    MinCommitToken(String),
}

/// A replica connection chosen for one read.
pub struct ReplicaRead {
    /// The replica's backend (for killing the statement, giving back).
    pub backend: Backend,
    /// A connection of it, caught up as the read asked.
    pub conn: Conn,
}

impl Replicas {
    /// The replicas, checked every `settings.check_interval` in a task of
    /// `tasks`.
    pub(super) fn start(
        replicas: Vec<(String, Logins)>,
        settings: ReplicaConfig,
        tasks: &Tasks,
    ) -> Replicas {
        let replicas = Replicas {
            replicas: Arc::new(
                replicas
                    .into_iter()
                    .map(|(name, logins)| Replica {
                        name,
                        backend: logins
                            .backend(&Login::MAIN)
                            .expect("made by Database::new already"),
                        logins,
                        health: RwLock::new(Health::Out),
                    })
                    .collect(),
            ),
            settings,
            next: Default::default(),
            wake: Default::default(),
        };
        if !replicas.replicas.is_empty() {
            let checked = replicas.clone();
            tasks.spawn_loop(async move {
                loop {
                    for replica in checked.replicas.iter() {
                        replica.check(checked.settings).await;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(checked.settings.check_interval) => {}
                        () = checked.wake.notified() => {}
                    }
                }
            });
        }
        replicas
    }

    /// The gateway switched to another primary (see `primary`): the
    /// promoted server may be one of the replicas, where `MASTER_GTID_WAIT`
    /// would wait out --replica-wait for tokens it issued itself (it waits
    /// on `@@gtid_slave_pos`, which its own writes do not advance). Every
    /// replica leaves rotation now and is checked at once: the ones still
    /// replicating come back, a promoted one (no replication running) stays
    /// out. Reads go to the primary meanwhile.
    pub(super) fn primary_changed(&self) {
        if self.replicas.is_empty() {
            return;
        }
        for replica in self.replicas.iter() {
            *replica.health.write().unwrap_or_else(|e| e.into_inner()) = Health::Out;
        }
        self.wake.notify_one();
    }

    /// A replica connection that honours `bound`, logged in as `login` for
    /// `principal`; `None` (the primary) when no replica can, or there are
    /// none.
    pub async fn for_read(
        &self,
        bound: &ReadBound,
        login: &Login,
        principal: &str,
    ) -> Result<Option<ReplicaRead>, GatewayError> {
        if self.replicas.is_empty() {
            return Ok(None);
        }
        let read = match bound {
            ReadBound::MaxStaleness(staleness) => {
                self.within_staleness(*staleness, login, principal).await
            }
            ReadBound::MinCommitToken(token) => self.caught_up_to(token, login, principal).await?,
        };
        crate::stats::record_replica_read(if read.is_some() { "replica" } else { "primary" });
        Ok(read)
    }

    /// A replica connection for a read whose data may be `max_staleness`
    /// old; `None` when no replica qualifies (read on the primary).
    async fn within_staleness(
        &self,
        max_staleness: Duration,
        login: &Login,
        principal: &str,
    ) -> Option<ReplicaRead> {
        for replica in self.in_rotation() {
            let fresh_enough =
                matches!(replica.health(), Health::In { lag } if lag <= max_staleness);
            if !fresh_enough {
                continue;
            }
            let backend = match replica.logins.backend(login) {
                Ok(backend) => backend,
                Err(e) => {
                    tracing::warn!(replica = %replica.name, error = %e, "no pool for this account on a replica");
                    continue;
                }
            };
            match backend.acquire(principal).await {
                Ok(conn) => return Some(ReplicaRead { backend, conn }),
                Err(e) => {
                    tracing::warn!(replica = %replica.name, error = %e, "no connection to a replica")
                }
            }
        }
        None
    }

    /// A replica connection for a read that must see the write `token`
    /// names, waiting at most --replica-wait for a replica to apply it;
    /// `None` when none did (read on the primary). A malformed token is the
    /// client's error.
    async fn caught_up_to(
        &self,
        token: &str,
        login: &Login,
        principal: &str,
    ) -> Result<Option<ReplicaRead>, GatewayError> {
        if !is_gtid_list(token) {
            return Err(GatewayError::InvalidRequest(format!(
                "min_commit_token {token:?} is not a commit token this gateway issued"
            )));
        }
        let Some(replica) = self.in_rotation().next() else {
            return Ok(None);
        };
        let backend = match replica.logins.backend(login) {
            Ok(backend) => backend,
            Err(e) => {
                tracing::warn!(replica = %replica.name, error = %e, "no pool for this account on a replica");
                return Ok(None);
            }
        };
        let mut conn = match backend.acquire(principal).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(replica = %replica.name, error = %e, "no connection to a replica");
                return Ok(None);
            }
        };
        let wait = self.settings.wait.as_secs_f64();
        let waited: Result<Option<i64>, _> = conn
            .exec_first("SELECT MASTER_GTID_WAIT(?, ?)", (token, wait))
            .await;
        match waited {
            // 0: applied; -1: not within the wait.
            Ok(Some(0)) => Ok(Some(ReplicaRead { backend, conn })),
            Ok(_) => {
                tracing::debug!(replica = %replica.name, token, "the replica did not catch up in time; reading on the primary");
                backend.give_back(conn, super::GiveBack::Clean);
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(replica = %replica.name, error = %e, "cannot wait for a replica to catch up");
                backend.give_back(conn, super::GiveBack::Discard);
                Ok(None)
            }
        }
    }

    /// The replicas in rotation, starting with the next in turn.
    fn in_rotation(&self) -> impl Iterator<Item = &Replica> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(move |i| &self.replicas[(start + i) % count])
            .filter(|replica| replica.health() != Health::Out)
    }

    /// Each replica's name, with the backend of `login` on it.
    pub(super) fn backends_of(&self, login: &Login) -> Vec<(String, Backend)> {
        self.replicas
            .iter()
            .filter_map(|replica| match replica.logins.backend(login) {
                Ok(backend) => Some((replica.name.clone(), backend)),
                Err(e) => {
                    tracing::warn!(replica = %replica.name, error = %e, "no pool for this account on a replica");
                    None
                }
            })
            .collect()
    }

    /// Closes every replica's pools.
    pub(super) async fn disconnect(&self) {
        for replica in self.replicas.iter() {
            for backend in replica.logins.all() {
                backend.disconnect().await;
            }
        }
    }
}

impl Replica {
    fn health(&self) -> Health {
        *self.health.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the replica's replication status and takes it in or out of
    /// rotation.
    async fn check(&self, settings: ReplicaConfig) {
        let status = async {
            let mut conn = self.backend.control.get_conn().await?;
            conn.query_first::<Row, _>("SHOW SLAVE STATUS").await
        };
        let health = match tokio::time::timeout(
            settings.check_interval.max(Duration::from_secs(1)),
            status,
        )
        .await
        {
            Ok(Ok(Some(row))) => health_of(&row, settings.max_lag),
            Ok(Ok(None)) => {
                tracing::warn!(replica = %self.name, "not a replica: SHOW SLAVE STATUS is empty");
                Health::Out
            }
            Ok(Err(e)) => {
                tracing::warn!(replica = %self.name, error = %e, "cannot check a replica");
                Health::Out
            }
            Err(_) => Health::Out,
        };
        let previous = std::mem::replace(
            &mut *self.health.write().unwrap_or_else(|e| e.into_inner()),
            health,
        );
        let lag = match health {
            Health::In { lag } => Some(lag),
            Health::Out => None,
        };
        crate::stats::record_replica_lag(&self.name, lag);
        match (previous, health) {
            (Health::Out, Health::In { lag }) => {
                tracing::info!(replica = %self.name, ?lag, "replica in rotation")
            }
            (Health::In { .. }, Health::Out) => {
                tracing::warn!(replica = %self.name, "replica out of rotation")
            }
            _ => {}
        }
    }
}

/// In rotation when both replication threads run and it is at most
/// `max_lag` behind.
fn health_of(row: &Row, max_lag: Duration) -> Health {
    let running = |column: &str| {
        row.get_opt::<String, _>(column)
            .and_then(Result::ok)
            .is_some_and(|value| value == "Yes")
    };
    let lag = row
        .get_opt::<Option<u64>, _>("Seconds_Behind_Master")
        .and_then(Result::ok)
        .flatten()
        .map(Duration::from_secs);
    match lag {
        Some(lag)
            if running("Slave_IO_Running") && running("Slave_SQL_Running") && lag <= max_lag =>
        {
            Health::In { lag }
        }
        _ => Health::Out,
    }
}

/// A MariaDB GTID list, as `@@last_gtid` gives it: `domain-server-sequence`
/// entries separated by commas.
fn is_gtid_list(token: &str) -> bool {
    !token.is_empty()
        && token.split(',').all(|gtid| {
            let parts: Vec<&str> = gtid.trim().split('-').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::is_gtid_list;

    #[test]
    fn tokens_are_gtid_lists() {
        for good in ["0-1-42", "0-1-42,1-2-7"] {
            assert!(is_gtid_list(good), "{good}");
        }
        for bad in ["", "0-1", "a-b-c", "0-1-42;DROP", "0-1-42,", "-1-2"] {
            assert!(!is_gtid_list(bad), "{bad}");
        }
    }
}
