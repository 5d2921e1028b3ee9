//! Request ids for writes: exactly-once commits through lost answers,
//! gateway restarts and fleet instances.
//!
//! A call that commits may carry a client-chosen `request_id`. Just before
//! COMMIT, the gateway inserts `(account, principal, request_id,
//! fingerprint, result summary, time)` into the outcomes table, in the
//! call's own transaction and on its own connection, so the record commits
//! if and only if the work does — on whichever server the data lives, and
//! through replication with it. The table's unique key and the database's
//! locks decide between concurrent calls with one id: the second INSERT
//! waits for the first transaction, then fails with a duplicate key (the
//! first committed: this attempt is rolled back and the recorded outcome
//! answered as a replay) or goes through (the first rolled back).
//!
//! Before the work runs, a plain read of the record skips work recorded
//! already, so that a retried `INSERT` with an explicit key is answered as
//! a replay rather than failing with a duplicate key.
//!
//! "The same" call, compared by a SHA-256 fingerprint: for an Execute, its
//! SQL and parameters; for an ExecuteBatch, every statement's, in order; for
//! the commit of an interactive transaction (Commit, a Transaction stream's
//! commit, an Execute with transaction_id and `commit`), only that it is
//! such a commit (a retry of the transaction may read other data and send
//! other statements). A different fingerprint is REQUEST_ID_REUSED.
//!
//! Records older than --request-id-retention are purged in small batches by
//! a background loop (see `purge`). Arrows point down only: the service
//! calls this module, which uses the transactions' leases and the database.
use std::{sync::Arc, time::Duration};

use mysql_async::{Conn, prelude::Queryable};
use sha2::{Digest, Sha256};

use crate::{
    api,
    auth::{Principal, Role},
    database::{Backend, Database},
    errors::{EndReason, GatewayError, mysql_codes},
    tasks::Tasks,
    transactions::{Lease, read_bound},
};

mod purge;
pub mod table;

/// The longest request id, in bytes (the key column's width).
pub const MAX_REQUEST_ID_BYTES: usize = 255;
/// The longest principal stored as it is; longer ones are stored as a digest.
const MAX_PRINCIPAL_BYTES: usize = 1024;

/// Where the outcomes table lives and how long records are kept.
#[derive(Debug, Clone)]
pub struct OutcomeSettings {
    /// The schema (database) of the table (--request-id-schema).
    pub schema: String,
    /// How long a record is kept (--request-id-retention).
    pub retention: Duration,
}

/// The outcomes table of one gateway. Cheap to clone.
#[derive(Clone)]
pub struct Outcomes {
    inner: Arc<Inner>,
}

struct Inner {
    database: Database,
    settings: OutcomeSettings,
    /// Set once the table is known to exist (made here if need be).
    ready: tokio::sync::OnceCell<()>,
}

/// A request id of a principal, with the fingerprint of its call.
#[derive(Debug, Clone)]
pub struct RequestKey {
    principal: Vec<u8>,
    request_id: String,
    fingerprint: Fingerprint,
}

/// What a call ran, for telling a retry from a reuse of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// An Execute of `sql` with `params`.
    pub fn statement(sql: &str, params: &[api::Value]) -> Fingerprint {
        Self::of("execute", [(sql, params)])
    }

    /// An ExecuteBatch of these statements, in order.
    pub fn batch(statements: &[api::Statement]) -> Fingerprint {
        Self::of(
            "batch",
            statements.iter().map(|s| (s.sql.as_str(), &s.params[..])),
        )
    }

    /// The commit of an interactive transaction.
    pub fn commit() -> Fingerprint {
        Self::of("commit", [])
    }

    fn of<'a>(
        kind: &str,
        statements: impl IntoIterator<Item = (&'a str, &'a [api::Value])>,
    ) -> Fingerprint {
        use prost::Message;
        let mut hash = Sha256::new();
        hash.update(kind.as_bytes());
        for (sql, params) in statements {
            hash.update((sql.len() as u64).to_le_bytes());
            hash.update(sql.as_bytes());
            hash.update((params.len() as u64).to_le_bytes());
            for param in params {
                let bytes = param.encode_to_vec();
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
        }
        Fingerprint(hash.finalize().into())
    }
}

/// What a call did, as recorded: its rows affected and last insert id, and
/// for a batch each statement's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows affected (a batch: the sum).
    pub rows_affected: u64,
    /// The last insert id (a batch: the last statement's that had one).
    pub last_insert_id: u64,
    /// A batch's `(rows_affected, last_insert_id)` per statement.
    pub statements: Option<Vec<(u64, u64)>>,
}

impl Summary {
    /// The summary of a batch whose statements did this.
    pub fn batch(statements: Vec<(u64, u64)>) -> Summary {
        Summary {
            rows_affected: statements.iter().map(|s| s.0).sum(),
            last_insert_id: statements
                .iter()
                .rev()
                .map(|s| s.1)
                .find(|id| *id != 0)
                .unwrap_or(0),
            statements: Some(statements),
        }
    }

    fn encoded_statements(&self) -> Option<Vec<u8>> {
        self.statements.as_ref().map(|statements| {
            statements
                .iter()
                .flat_map(|(rows, id)| rows.to_le_bytes().into_iter().chain(id.to_le_bytes()))
                .collect()
        })
    }

    fn decode_statements(bytes: Option<Vec<u8>>) -> Option<Vec<(u64, u64)>> {
        let bytes = bytes?;
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Some(
            bytes
                .chunks_exact(16)
                .map(|pair| (word(&pair[..8]), word(&pair[8..])))
                .collect(),
        )
    }
}

/// The outcome recorded under a request id: the answer of a replay.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// What the call did when it ran.
    pub summary: Summary,
    /// With replicas: a replication position that contains the recorded
    /// commit (read when replaying; it is at least as new as the commit's).
    pub commit_token: Option<String>,
}

/// Whether a call's work is to run, or was recorded already.
pub enum Proceed<T> {
    /// Not recorded: run the work on this.
    Run(T),
    /// Recorded already: the transaction was rolled back; answer this.
    Replay(Recorded),
}

/// How a commit with a request id ended.
#[derive(Debug)]
pub enum Committed {
    /// This call's work committed, with this commit token (if any).
    Now(Option<String>),
    /// The id was recorded already: this call's transaction was rolled
    /// back, and this is the recorded outcome.
    Replayed(Recorded),
}

impl Outcomes {
    /// The outcomes of `database`, in the table `settings` name; starts the
    /// purge loop on `tasks`.
    pub(crate) fn new(database: Database, settings: OutcomeSettings, tasks: &Tasks) -> Outcomes {
        let outcomes = Outcomes {
            inner: Arc::new(Inner {
                database,
                settings,
                ready: Default::default(),
            }),
        };
        tasks.spawn_loop(purge::run(outcomes.clone()));
        outcomes
    }

    fn schema(&self) -> &str {
        &self.inner.settings.schema
    }

    /// The key of `principal`'s `request_id` for a call with `fingerprint`;
    /// `None` when there is nothing to record: no request id, or a read-only
    /// principal (no writes). Makes sure the table exists first.
    pub async fn key(
        &self,
        principal: &Principal,
        request_id: &str,
        fingerprint: impl FnOnce() -> Fingerprint,
    ) -> Result<Option<RequestKey>, GatewayError> {
        if request_id.is_empty() || principal.role == Role::ReadOnly {
            return Ok(None);
        }
        if request_id.len() > MAX_REQUEST_ID_BYTES {
            return Err(GatewayError::InvalidRequest(format!(
                "request_id has {} bytes; at most {MAX_REQUEST_ID_BYTES} are allowed",
                request_id.len()
            )));
        }
        self.inner
            .ready
            .get_or_try_init(|| self.ensure_table())
            .await?;
        Ok(Some(RequestKey {
            principal: principal_key(&principal.name),
            request_id: request_id.to_string(),
            fingerprint: fingerprint(),
        }))
    }

    /// Checks that the view can be read, as the main account; creates the
    /// table and the view when they do not exist (the account needs CREATE
    /// and CREATE VIEW on the schema for that, else the operator makes them:
    /// see the README). On a connection of its own: DDL would commit a
    /// transaction.
    async fn ensure_table(&self) -> Result<(), GatewayError> {
        let schema = self.schema();
        let backend = self.inner.database.backend_for(&Principal::anonymous())?;
        let mut conn = backend.acquire("").await?;
        let unavailable = |e: mysql_async::Error| match e {
            mysql_async::Error::Server(e) => GatewayError::OutcomesUnavailable(format!(
                "the outcomes table {schema}.{} cannot be used or created ({} (MySQL error {})): create it as the README says (Request ids), or name another schema with --request-id-schema",
                table::TABLE,
                e.message,
                e.code
            )),
            e => GatewayError::Database(e),
        };
        match conn.query_drop(table::probe(schema)).await {
            Ok(()) => return Ok(()),
            // 1146: no such table (or view).
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => {}
            Err(e) => return Err(unavailable(e)),
        }
        for statement in table::create_statements(schema, None) {
            conn.query_drop(statement).await.map_err(unavailable)?;
        }
        tracing::info!(schema, table = table::TABLE, "created the outcomes table");
        Ok(())
    }

    /// The key of an Execute's request_id, if it has one: for an autocommit
    /// call or one that begins and commits a transaction, its statement;
    /// for one that commits an interactive transaction (transaction_id and
    /// `commit`), that commit. Refused for a call that does not commit, and
    /// with a read_consistency (request ids are for writes).
    pub async fn execute_key(
        &self,
        request: &api::ExecuteRequest,
        principal: &Principal,
    ) -> Result<Option<RequestKey>, GatewayError> {
        if request.request_id.is_empty() {
            return Ok(None);
        }
        let in_transaction = !request.transaction_id.is_empty() || request.begin.is_some();
        if in_transaction && !request.commit {
            return Err(GatewayError::InvalidRequest(
                "request_id applies to calls that commit: an autocommit call, or one with commit set (or give it to Commit)".into(),
            ));
        }
        if read_bound(request.read_consistency.as_ref())?.is_some() {
            return Err(GatewayError::InvalidRequest(
                "request_id is for writes: leave read_consistency unset (or strong) with it".into(),
            ));
        }
        let interactive = !request.transaction_id.is_empty();
        self.key(principal, &request.request_id, || {
            if interactive {
                Fingerprint::commit()
            } else {
                Fingerprint::statement(&request.sql, &request.params)
            }
        })
        .await
    }

    /// The key of an ExecuteBatch's request_id, if it has one; refused for
    /// a batch inside a transaction (it does not commit).
    pub async fn batch_key(
        &self,
        request: &api::ExecuteBatchRequest,
        principal: &Principal,
    ) -> Result<Option<RequestKey>, GatewayError> {
        if !request.request_id.is_empty() && !request.transaction_id.is_empty() {
            return Err(GatewayError::InvalidRequest(
                "request_id applies to a batch that commits: leave transaction_id empty, or give the request_id to Commit".into(),
            ));
        }
        self.key(principal, &request.request_id, || {
            Fingerprint::batch(&request.statements)
        })
        .await
    }

    /// Before the work runs, in the lease's transaction: when `key` is
    /// recorded already, the transaction is rolled back and the recorded
    /// outcome is the answer (or REQUEST_ID_REUSED for another call's).
    pub async fn unless_recorded(
        &self,
        mut lease: Lease,
        key: Option<&RequestKey>,
    ) -> Result<Proceed<Lease>, GatewayError> {
        let Some(key) = key else {
            return Ok(Proceed::Run(lease));
        };
        let tokens = lease.backend().commit_tokens();
        match self.recorded(lease.conn(), key, tokens).await {
            Ok(None) => Ok(Proceed::Run(lease)),
            Ok(Some(recorded)) => {
                lease.rollback().await;
                Ok(Proceed::Replay(recorded))
            }
            Err(e) => {
                lease.rollback().await;
                Err(e)
            }
        }
    }

    /// Before the work runs, in its transaction: the outcome recorded under
    /// `key`, if any (a plain read). REQUEST_ID_REUSED when it was recorded
    /// for another call. `commit_tokens`: read a replication position to
    /// answer with.
    pub async fn recorded(
        &self,
        conn: &mut Conn,
        key: &RequestKey,
        commit_tokens: bool,
    ) -> Result<Option<Recorded>, GatewayError> {
        self.read(conn, key, false, commit_tokens).await
    }

    /// The outcome recorded under `key`, read on a connection of the
    /// principal's own account: for a Commit whose transaction is gone.
    pub async fn recorded_for(
        &self,
        principal: &Principal,
        key: &RequestKey,
    ) -> Result<Option<Recorded>, GatewayError> {
        let backend = self.inner.database.backend_for(principal)?;
        let mut conn = backend.acquire(&principal.name).await?;
        self.read(&mut conn, key, false, backend.commit_tokens())
            .await
    }

    async fn read(
        &self,
        conn: &mut Conn,
        key: &RequestKey,
        locking: bool,
        commit_tokens: bool,
    ) -> Result<Option<Recorded>, GatewayError> {
        type Row = (Vec<u8>, u64, u64, Option<Vec<u8>>);
        let row: Option<Row> = conn
            .exec_first(
                table::select(self.schema(), locking),
                (&key.principal, &key.request_id),
            )
            .await?;
        let Some((fingerprint, rows_affected, last_insert_id, statements)) = row else {
            return Ok(None);
        };
        if fingerprint != key.fingerprint.0 {
            return Err(GatewayError::RequestIdReused(format!(
                "request_id {:?} was used already for another call (a different statement, different parameters, or another kind of call); nothing ran: give each write its own request_id",
                key.request_id
            )));
        }
        let commit_token = if commit_tokens {
            conn.query_first::<String, _>("SELECT @@gtid_binlog_pos")
                .await?
                .filter(|position| !position.is_empty())
        } else {
            None
        };
        Ok(Some(Recorded {
            summary: Summary {
                rows_affected,
                last_insert_id,
                statements: Summary::decode_statements(statements),
            },
            commit_token,
        }))
    }

    /// Commits the lease's transaction, recording `summary` under `key`
    /// first (just before COMMIT, in the same transaction). Without a key,
    /// or in a READ ONLY transaction (nothing to record), a plain commit.
    ///
    /// Run it in a task of its own, like [`Lease::commit`]: once the record
    /// is written, COMMIT runs to its end whatever happens to the call.
    pub async fn commit(
        self,
        lease: Lease,
        key: Option<RequestKey>,
        summary: Summary,
    ) -> Result<Committed, GatewayError> {
        let Some(key) = key.filter(|_| !lease.transaction().read_only()) else {
            return Ok(Committed::Now(lease.commit().await?));
        };
        let statement_results = summary.encoded_statements();
        let record = table::Record {
            principal: &key.principal,
            request_id: key.request_id.as_bytes(),
            fingerprint: &key.fingerprint.0,
            rows_affected: summary.rows_affected,
            last_insert_id: summary.last_insert_id,
            statement_results: statement_results.as_deref(),
        };
        // As text: no PREPARE, which the reset after every call would
        // otherwise force again each time (see `table::insert`); in the
        // same query as the COMMIT, which the server runs only if the
        // INSERT succeeded (one round trip: see `Lease::commit_after`).
        let insert = table::insert(self.schema(), &record);
        let backend = lease.backend().clone();
        let (transactions, transaction) = lease.settlement();
        match lease.commit_after(&insert).await {
            Ok(committed) => match committed {
                Err(GatewayError::CommitOutcomeUnknown(detail)) => {
                    let settled = self
                        .settle(&backend, transaction.owner(), &key, detail)
                        .await;
                    let end = match &settled {
                        Ok(Committed::Now(token)) => Some((EndReason::Committed, token.as_deref())),
                        Err(GatewayError::TransactionAborted(reason)) => Some((*reason, None)),
                        _ => None,
                    };
                    if let Some((reason, token)) = end {
                        transactions.settled(&transaction, reason, token);
                    }
                    settled
                }
                committed => Ok(Committed::Now(committed?)),
            },
            // 1062: a duplicate key, once the transaction that wrote it
            // committed: this is a retry of recorded work.
            Err((mut lease, mysql_async::Error::Server(e))) if e.code == 1062 => {
                let tokens = lease.backend().commit_tokens();
                let recorded = self.read(lease.conn(), &key, true, tokens).await;
                lease.rollback().await;
                match recorded? {
                    Some(recorded) => Ok(Committed::Replayed(recorded)),
                    // Purged in between: rerun the transaction.
                    None => Err(GatewayError::TransactionAborted(EndReason::DatabaseAborted)),
                }
            }
            Err((lease, e)) => {
                lease.rollback().await;
                Err(match &e {
                    // Not a deadlock or a lost connection: the account
                    // cannot write the record.
                    mysql_async::Error::Server(server) if !mysql_codes::ends_transaction(&e) => {
                        GatewayError::OutcomesUnavailable(format!(
                            "the outcome could not be recorded, so nothing was committed: {} (MySQL error {}); the database account needs SELECT and INSERT on {}.{} (see the README, Request ids)",
                            server.message,
                            server.code,
                            self.schema(),
                            table::VIEW
                        ))
                    }
                    _ => GatewayError::Database(e),
                })
            }
        }
    }
}

impl Outcomes {
    /// After a COMMIT whose connection failed (`detail`), with its record
    /// written in the transaction: asks the database how it ended, on a new
    /// connection, by a locking read of the record under `key`, which waits
    /// while the old transaction still holds it (its server has not noticed
    /// the lost connection yet, or its COMMIT is still running). The record
    /// there: it committed (answered as committed); absent: it ended without
    /// committing (ABORTED: rerun it). When the database cannot say within
    /// --acquire-timeout (unreachable, or the old session still open), the
    /// outcome stays unknown, for the client's retry with the same id.
    async fn settle(
        &self,
        backend: &Backend,
        principal: &str,
        key: &RequestKey,
        detail: String,
    ) -> Result<Committed, GatewayError> {
        let limit = backend.acquire_timeout();
        let wait = limit.as_secs().max(1);
        let asked = async {
            let mut conn = backend.acquire(principal).await?;
            // The session is reset when the connection goes back.
            conn.query_drop(format!("SET SESSION innodb_lock_wait_timeout = {wait}"))
                .await?;
            let recorded = self
                .read(&mut conn, key, true, backend.commit_tokens())
                .await?;
            Ok::<_, GatewayError>(recorded.map(|recorded| recorded.commit_token))
        };
        match tokio::time::timeout(limit * 2, asked).await {
            Ok(Ok(Some(token))) => {
                tracing::info!(request_id = %key.request_id, "a COMMIT whose connection failed did commit (its record is there)");
                Ok(Committed::Now(token))
            }
            Ok(Ok(None)) => {
                tracing::info!(request_id = %key.request_id, "a COMMIT whose connection failed did not commit (no record)");
                Err(GatewayError::TransactionAborted(EndReason::DatabaseAborted))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot learn how a COMMIT whose connection failed ended");
                Err(GatewayError::CommitOutcomeUnknown(detail))
            }
            Err(_) => Err(GatewayError::CommitOutcomeUnknown(detail)),
        }
    }
}

/// How a principal is stored: its name, or `sha256:` and the hex digest of
/// a name longer than the column.
fn principal_key(name: &str) -> Vec<u8> {
    if name.len() <= MAX_PRINCIPAL_BYTES {
        return name.as_bytes().to_vec();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: i64) -> api::Value {
        api::Value {
            kind: Some(api::value::Kind::Int64Value(v)),
        }
    }

    #[test]
    fn fingerprints_tell_calls_apart() {
        let a = Fingerprint::statement("INSERT INTO t VALUES (?)", &[value(1)]);
        assert_eq!(
            a,
            Fingerprint::statement("INSERT INTO t VALUES (?)", &[value(1)])
        );
        assert_ne!(
            a,
            Fingerprint::statement("INSERT INTO t VALUES (?)", &[value(2)])
        );
        assert_ne!(
            a,
            Fingerprint::statement("INSERT INTO t VALUES (?) ", &[value(1)])
        );
        let statement = api::Statement {
            sql: "INSERT INTO t VALUES (?)".into(),
            params: vec![value(1)],
        };
        assert_ne!(a, Fingerprint::batch(std::slice::from_ref(&statement)));
        assert_ne!(Fingerprint::commit(), a);
        // The boundaries between statements count.
        let split = |x: &str, y: &str| {
            Fingerprint::batch(&[
                api::Statement {
                    sql: x.into(),
                    params: vec![],
                },
                api::Statement {
                    sql: y.into(),
                    params: vec![],
                },
            ])
        };
        assert_ne!(split("ab", "c"), split("a", "bc"));
    }

    #[test]
    fn batch_summaries_round_trip() {
        let summary = Summary::batch(vec![(1, 7), (2, 0), (0, 0)]);
        assert_eq!(summary.rows_affected, 3);
        assert_eq!(summary.last_insert_id, 7);
        let decoded = Summary::decode_statements(summary.encoded_statements());
        assert_eq!(decoded, summary.statements);
        assert_eq!(Summary::default().encoded_statements(), None);
    }

    #[test]
    fn long_principals_are_stored_as_digests() {
        assert_eq!(principal_key("alice"), b"alice");
        let long = "CN=".to_string() + &"x".repeat(2000);
        let key = principal_key(&long);
        assert!(key.starts_with(b"sha256:") && key.len() == 7 + 64);
    }
}
