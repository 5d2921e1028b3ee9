//! sqlgate patch: MariaDB's pipelined prepare and execute (see
//! `Conn::prepare_and_execute`).
use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_util::FutureExt;
use mysql_common::{
    constants::Command, packets::ComStmtExecuteRequestBuilder, proto::MySerialize, value::Value,
};

use crate::{
    buffer_pool::PooledBuf, conn::MAX_STATEMENT_PARAMS, queryable::stmt::StmtInner,
    BinaryProtocol, Conn, DriverError, QueryResult, Statement,
};

use super::Routine;

/// The statement id MariaDB (≥ 10.2) reads as "the statement this session
/// prepared last".
const LAST_PREPARED: u32 = 0xFFFF_FFFF;

/// Sends `COM_STMT_PREPARE` and the `COM_STMT_EXECUTE` of the statement it
/// prepares (id `0xFFFFFFFF`) in one write, then reads both replies.
struct PrepareExecuteRoutine<'p> {
    query: Arc<[u8]>,
    params: &'p [Value],
    /// The serialized execute, of one packet.
    execute: PooledBuf,
}

/// Commands of one packet only: a reply's first sequence id is the number
/// of packets of its command, and the replies here are read expecting 1.
const ONE_PACKET: usize = 0xFF_FF_FF;

impl Routine<Arc<StmtInner>> for PrepareExecuteRoutine<'_> {
    fn call<'a>(self, conn: &'a mut Conn) -> BoxFuture<'a, crate::Result<Arc<StmtInner>>>
    where
        Self: 'a,
    {
        async move {
            let mut prepare = crate::buffer_pool().get();
            prepare.as_mut().push(Command::COM_STMT_PREPARE as u8);
            prepare.as_mut().extend_from_slice(&self.query);
            conn.queue_command(prepare).await?;
            conn.write_command_raw(self.execute).await?;

            let prepared = async {
                let packet = conn.read_packet().await?;
                let mut stmt = StmtInner::from_payload(&packet, conn.id(), self.query.clone())?;
                if stmt.num_params() > 0 {
                    let params = conn.read_column_defs(stmt.num_params()).await?;
                    stmt = stmt.with_params(params);
                }
                if stmt.num_columns() > 0 {
                    let columns = conn.read_column_defs(stmt.num_columns()).await?;
                    stmt = stmt.with_columns(columns);
                }
                Ok::<_, crate::Error>(Arc::new(stmt))
            }
            .await;
            let stmt = match prepared {
                Ok(stmt) => stmt,
                Err(e @ crate::Error::Server(_)) => {
                    // Nothing was prepared: the session has no last prepared
                    // statement (see `Conn::can_prepare_and_execute`), so the
                    // execute fails too. Read its error.
                    conn.expect_first_reply_packet()?;
                    if !matches!(conn.read_packet().await, Err(crate::Error::Server(_))) {
                        conn.close_broken_stream();
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if usize::from(stmt.num_params()) != self.params.len() {
                // The server read the execute with another layout than it
                // was written with: its outcome is unknown. The session is
                // never used again.
                conn.close_broken_stream();
                return Err(DriverError::StmtParamsMismatch {
                    required: stmt.num_params(),
                    supplied: self.params.len(),
                }
                .into());
            }
            conn.expect_first_reply_packet()?;
            let statement = Statement::new(stmt.clone(), Vec::new());
            conn.read_result_set::<BinaryProtocol>(true, Some(&statement))
                .await?;
            Ok(stmt)
        }
        .boxed()
    }
}

impl Conn {
    /// sqlgate patch: `true` when [`Conn::prepare_and_execute`] can send the
    /// prepare and the execute in one write: the server is MariaDB ≥ 10.2,
    /// the statement cache is on, the protocol is not compressed, and the
    /// session has prepared nothing since it was opened or reset (so that it
    /// has no last prepared statement that an execute of id `0xFFFFFFFF`
    /// would run if the prepare failed before replacing it, e.g. at
    /// `max_prepared_stmt_count`).
    pub fn can_prepare_and_execute(&self) -> bool {
        self.inner.is_mariadb
            && self.inner.version >= (10, 2, 0)
            && self.inner.opts.stmt_cache_size() > 0
            && self.inner.opts.compression().is_none()
            && !self.inner.prepared_since_reset
            && self.inner.stream.is_some()
    }

    /// sqlgate patch: prepares `query` (with `?` placeholders only) and
    /// executes it with `params` in one round trip, MariaDB's
    /// `COM_STMT_EXECUTE` of the statement just prepared, when
    /// [`Conn::can_prepare_and_execute`]; else as `exec_iter`. The statement
    /// goes into the statement cache.
    ///
    /// The execute is written before the server has said how many
    /// parameters the statement takes: the caller must know that `query`
    /// has exactly `params.len()` placeholders whatever the session's
    /// `sql_mode`. If the server disagrees the call fails and the connection
    /// is closed, but the execute may have run with misread parameters.
    pub async fn prepare_and_execute<'a>(
        &'a mut self,
        query: &str,
        params: Vec<Value>,
    ) -> crate::Result<QueryResult<'a, 'static, BinaryProtocol>> {
        let (execute, as_long_data) = ComStmtExecuteRequestBuilder::new(LAST_PREPARED).build(&params);
        let mut body = crate::buffer_pool().get();
        execute.serialize(body.as_mut());
        drop(execute);
        if !self.can_prepare_and_execute()
            || as_long_data
            || params.len() > MAX_STATEMENT_PARAMS
            || body.len() >= ONE_PACKET
            || query.len() + 1 >= ONE_PACKET
            || self.get_cached_stmt(query.as_bytes()).is_some()
        {
            let params = if params.is_empty() {
                crate::Params::Empty
            } else {
                crate::Params::Positional(params)
            };
            return crate::prelude::Queryable::exec_iter(self, query, params).await;
        }
        let routine = PrepareExecuteRoutine {
            query: query.as_bytes().into(),
            params: &params,
            execute: body,
        };
        let stmt = self.routine(routine).await?;
        // The cache was emptied by the reset: nothing is evicted.
        let _ = self.cache_stmt(&stmt);
        Ok(QueryResult::new(self))
    }
}
