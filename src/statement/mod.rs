//! Running one statement on a connection and reading its result.
//!
//! Every statement runs as a prepared statement (the binary protocol): the
//! server refuses to stack several statements in one, and values come back
//! typed. Only the first result set is returned (a CALL's later sets are read
//! and dropped).
use std::sync::Arc;

use mysql_async::{
    BinaryProtocol, Conn, Params, QueryResult, prelude::Protocol, prelude::Queryable,
};
use prost::bytes::BytesMut;

use crate::{
    api,
    database::Backend,
    errors::GatewayError,
    values::{self, CellKind, cell},
};

pub mod guard;
mod multirow;
mod placeholders;
mod session_mode;
mod text_path;
mod typed_params;

pub use multirow::combine;
pub use session_mode::SessionSqlMode;

/// What a caller's statements must respect.
#[derive(Debug, Clone, Copy)]
pub struct StatementRules {
    /// Most parameters (--max-params).
    pub max_params: usize,
    /// The caller is read-only: only reads and SET of session variables pass.
    pub read_only: bool,
    /// The statement runs inside a transaction: statements that commit
    /// implicitly are refused.
    pub in_transaction: bool,
    /// The caller has the schema role: it may install code (see
    /// [`guard::GuardContext::schema`]).
    pub schema: bool,
}

/// A checked statement with its converted parameters.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: String,
    params: Vec<mysql_async::Value>,
    may_change_identity: bool,
    plain_read: bool,
    calls: bool,
    /// See [`Statement::reads_leftovers`]; decided once, not per use.
    reads_leftovers: bool,
    /// See [`guard::Checked::may_change_sql_mode`].
    may_change_sql_mode: bool,
    /// Set when the statement reads differently under different `sql_mode`s:
    /// it is checked again under the session's mode before it is sent.
    mode_dependent: Option<Box<ModeDependent>>,
}

/// What a statement that depends on the session's `sql_mode` needs for its
/// second check, once the mode is known.
#[derive(Debug, Clone)]
struct ModeDependent {
    sql: String,
    params: Vec<api::Value>,
    context: guard::GuardContext,
}

/// Words naming what the previous statement left in the session (see
/// [`Statement::reads_leftovers`]) or its diagnostics (`@@warning_count`,
/// `SHOW WARNINGS`, `SHOW ERRORS`, `GET DIAGNOSTICS`), which reading the
/// session's `sql_mode` first would overwrite.
const LEFTOVERS_AND_DIAGNOSTICS: [&str; 5] =
    ["FOUND_ROWS", "ROW_COUNT", "WARNING", "ERROR", "DIAGNOSTICS"];

impl Statement {
    /// Checks the SQL with the guard and converts the parameters.
    pub fn new(
        sql: &str,
        params: &[api::Value],
        rules: &StatementRules,
    ) -> Result<Statement, GatewayError> {
        if params.len() > rules.max_params {
            return Err(GatewayError::InvalidRequest(format!(
                "too many parameters: {} (the limit is {}, --max-params)",
                params.len(),
                rules.max_params
            )));
        }
        // The session's sql_mode is not known before a connection is: read
        // under every mode first; most statements read the same under all.
        let context = guard::GuardContext {
            in_transaction: rules.in_transaction,
            read_only: rules.read_only,
            schema: rules.schema,
            sql_mode: None,
        };
        let converted = |params: &[api::Value]| {
            params
                .iter()
                .map(values::param_to_mysql)
                .collect::<Result<Vec<_>, _>>()
        };
        let reads_leftovers = mentions_any(sql, &["FOUND_ROWS", "ROW_COUNT"]);
        let checked = match guard::check_statement_cached(sql, context) {
            Ok(checked) => checked,
            Err(refusal) => {
                let Some(readings) = guard::mode_dependent(sql, context) else {
                    return Err(refusal);
                };
                // Checked again once the session's mode is known (`start`);
                // meanwhile, what any accepting reading may do.
                return Ok(Statement {
                    sql: String::new(),
                    params: converted(params)?,
                    may_change_identity: readings.may_change_identity,
                    plain_read: false,
                    calls: readings.calls,
                    reads_leftovers,
                    may_change_sql_mode: readings.may_change_sql_mode,
                    mode_dependent: Some(Box::new(ModeDependent {
                        sql: sql.to_string(),
                        params: params.to_vec(),
                        context,
                    })),
                });
            }
        };
        Ok(Statement {
            sql: typed_params::with_typed_placeholders(checked.sql, params, None).into_owned(),
            params: converted(params)?,
            may_change_identity: checked.may_change_identity,
            reads_leftovers,
            plain_read: checked.plain_read,
            calls: checked.kind == guard::StatementKind::Call,
            may_change_sql_mode: checked.may_change_sql_mode,
            mode_dependent: None,
        })
    }

    /// True when the statement may read what the session's previous
    /// statement left (`FOUND_ROWS()`, `ROW_COUNT()`, which even a reset
    /// keeps): see `Session::before_statement`.
    pub fn reads_leftovers(&self) -> bool {
        self.reads_leftovers
    }

    /// The text under which the text protocol's path remembers this
    /// statement, when it may take that path at all (see `text_path`): an
    /// autocommit plain read that reads nothing an earlier statement left.
    fn text_path_key(&self) -> Option<&str> {
        let plain = self.plain_read && self.mode_dependent.is_none() && !self.reads_leftovers;
        (plain && text_path::shape_allows(&self.sql, self.params.len())).then_some(&self.sql)
    }

    /// True when the statement is a CALL of a stored procedure, which may
    /// end the transaction it runs in and begin another.
    pub fn calls(&self) -> bool {
        self.calls
    }

    /// The SQL text (for debug logs only).
    pub fn sql(&self) -> &str {
        match &self.mode_dependent {
            Some(dependent) => &dependent.sql,
            None => &self.sql,
        }
    }

    /// True when the statement might change the connection's default
    /// database or role (see [`guard::Checked::may_change_identity`]).
    pub fn may_change_identity(&self) -> bool {
        self.may_change_identity
    }

    /// True when the statement is a plain read that cannot change the
    /// session (see [`guard::Checked::plain_read`]).
    pub fn plain_read(&self) -> bool {
        self.plain_read
    }

    /// Sends the statement; the result is read from the returned [`QueryResult`].
    ///
    /// `sql_mode` is what the gateway knows of the session's `sql_mode`
    /// (a transaction's; `None` for a session that lives for this statement
    /// only). A statement that reads differently under different modes is
    /// checked again under the session's mode first, read from the server
    /// when not known (see `session_mode`). A statement that may change the
    /// mode makes it forgotten before it is sent.
    pub async fn start<'a>(
        &self,
        conn: &'a mut Conn,
        sql_mode: Option<&SessionSqlMode>,
    ) -> Result<QueryResult<'a, 'static, BinaryProtocol>, GatewayError> {
        let resolved;
        let sql = match &self.mode_dependent {
            None => self.sql.as_str(),
            Some(dependent) => {
                resolved = self.resolve(dependent, conn, sql_mode).await?;
                resolved.as_str()
            }
        };
        if let Some(memory) = sql_mode {
            if self.may_change_sql_mode {
                memory.forget();
            }
            memory.note_statement();
        }
        // On a session that has prepared nothing since its reset (every
        // autocommit call by default), MariaDB prepares and executes in one
        // round trip, when the text's placeholders are beyond doubt.
        if conn.can_prepare_and_execute()
            && placeholders::unambiguous_placeholders(sql) == Some(self.params.len())
        {
            return Ok(conn.prepare_and_execute(sql, self.params.clone()).await?);
        }
        let params = if self.params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(self.params.clone())
        };
        // Prepared (or found in the connection's statement cache) first, so
        // that parameters that do not match its placeholders are refused
        // here: the driver would close the connection over them, ending the
        // transaction the call runs in.
        let prepared = conn.prep(sql).await?;
        let placeholders = usize::from(prepared.num_params());
        if placeholders != self.params.len() {
            return Err(GatewayError::InvalidRequest(
                crate::errors::placeholder_mismatch(placeholders, self.params.len()),
            ));
        }
        Ok(conn.exec_iter(prepared, params).await?)
    }
}

impl Statement {
    /// The text to send for a statement that depends on the session's
    /// `sql_mode`, checked under the mode the session has now. When it
    /// cannot be known (a mode the guard does not model, or, later in a
    /// transaction, a statement that may read what the previous one left,
    /// which reading the mode would overwrite: see `session_mode`), the
    /// statement is refused as every mode's reading must then agree, and
    /// they do not.
    async fn resolve(
        &self,
        dependent: &ModeDependent,
        conn: &mut Conn,
        sql_mode: Option<&SessionSqlMode>,
    ) -> Result<String, GatewayError> {
        let reads_leftovers = mentions_any(&dependent.sql, &LEFTOVERS_AND_DIAGNOSTICS);
        let mode = session_mode::current(conn, sql_mode, reads_leftovers).await?;
        let context = guard::GuardContext {
            sql_mode: mode,
            ..dependent.context
        };
        let checked =
            guard::check_statement_cached(&dependent.sql, context).map_err(|refusal| {
                match (refusal, mode) {
                    (GatewayError::InvalidRequest(message), Some(mode)) => {
                        GatewayError::InvalidRequest(format!(
                            "{message} (read as the session's sql_mode reads it: {})",
                            mode.describe()
                        ))
                    }
                    (refusal, _) => refusal,
                }
            })?;
        Ok(
            typed_params::with_typed_placeholders(checked.sql, &dependent.params, mode)
                .into_owned(),
        )
    }
}

/// True when `text` contains one of `words` (ASCII, any case), without
/// allocating: it runs for every statement.
fn mentions_any(text: &str, words: &[&str]) -> bool {
    let text = text.as_bytes();
    words.iter().any(|word| {
        text.windows(word.len())
            .any(|window| window.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// Converts rows of one result set into protobuf rows.
pub struct RowConverter {
    kinds: Vec<CellKind>,
}

impl RowConverter {
    /// A converter for rows with these columns.
    pub fn new(columns: &[mysql_async::Column]) -> RowConverter {
        RowConverter {
            kinds: columns.iter().map(CellKind::for_column).collect(),
        }
    }

    /// Converts one row; also returns its approximate encoded size.
    pub fn convert(&self, row: mysql_async::Row) -> Result<(api::Row, usize), GatewayError> {
        let mut size = 4;
        let mut values = Vec::with_capacity(self.kinds.len());
        // `unwrap_raw` hands over the cells without another pass over them.
        for (cell, kind) in row.unwrap_raw().into_iter().zip(&self.kinds) {
            let cell = cell.unwrap_or(mysql_async::Value::NULL);
            let value = values::cell_to_value(*kind, cell)?;
            size += values::approximate_size(&value);
            values.push(value);
        }
        Ok((api::Row { values }, size))
    }

    /// Appends one row to `batch` in wire form, as a `rows` field of
    /// `RowBatch` (see [`api::RowBatch::from_encoded`]), without building
    /// protobuf values; `scratch` is reused between rows.
    pub fn encode_row(
        &self,
        row: &mysql_async::Row,
        scratch: &mut Vec<u8>,
        batch: &mut BytesMut,
    ) -> Result<(), GatewayError> {
        scratch.clear();
        for (index, kind) in self.kinds.iter().enumerate() {
            let cell = row.as_ref(index).unwrap_or(&mysql_async::Value::NULL);
            cell::convert(*kind, cell)?.encode_as_field(api::ROW_VALUES, scratch);
        }
        api::RowBatch::append_encoded_row(scratch, batch);
        Ok(())
    }
}

/// Describes the columns of a result for clients.
pub fn describe_columns(columns: &[mysql_async::Column]) -> Vec<api::Column> {
    columns.iter().map(values::describe_column).collect()
}

/// What the server's caps and the client's `max_rows` allow in one unary result.
#[derive(Debug, Clone, Copy)]
pub struct ResultLimits {
    /// The server's row cap (--max-result-rows).
    pub max_rows: u64,
    /// The server's byte cap (--max-result-bytes).
    pub max_bytes: u64,
    /// The client's own limit; when set, rows past it (or past the byte cap)
    /// are dropped and the result is marked truncated, instead of an error.
    pub client_max_rows: Option<u64>,
}

/// A whole statement result, for Execute and ExecuteBatch.
#[derive(Debug, Default)]
pub struct StatementResult {
    /// The result's columns as the server described them (empty for a
    /// statement without a result set): see [`describe_columns`] and
    /// `values::encoded_columns` for what clients get.
    pub columns: Arc<[mysql_async::Column]>,
    /// Rows (within the limits).
    pub rows: Vec<api::Row>,
    /// Rows changed.
    pub rows_affected: u64,
    /// Generated AUTO_INCREMENT value or 0.
    pub last_insert_id: u64,
    /// Warnings produced.
    pub warning_count: u32,
    /// True when rows were dropped because of the client's max_rows.
    pub truncated: bool,
}

/// Runs a statement and reads its whole result within `limits`.
///
/// `bytes_used` counts bytes already returned by earlier statements of the
/// same response (ExecuteBatch caps the batch as a whole). `sql_mode`: see
/// [`Statement::start`]. `may_write`, if given, turns true when the
/// statement is sent in a form that may write: not (yet) when it runs as a
/// text-path read, READ ONLY (see `text_path`), until it falls back to
/// the binary protocol.
pub async fn run_to_completion(
    backend: &Backend,
    conn: &mut Conn,
    sql_mode: Option<&SessionSqlMode>,
    statement: &Statement,
    limits: ResultLimits,
    bytes_used: &mut u64,
    may_write: Option<&std::sync::atomic::AtomicBool>,
) -> Result<StatementResult, GatewayError> {
    // An autocommit statement (no `sql_mode` to keep) on a session that would
    // have to PREPARE it (a fresh reset) may go as text (`text_path`).
    let text_key =
        (backend.text_protocol() && sql_mode.is_none() && conn.can_prepare_and_execute())
            .then(|| statement.text_path_key())
            .flatten();
    if let Some(sql) = text_key
        && let Some((text, expected)) = text_path::query_for(sql, &statement.params)
    {
        let before = *bytes_used;
        let output =
            text_path::run(backend, conn, sql, text, &expected, limits, bytes_used).await?;
        if let Some(output) = output {
            return Ok(output);
        }
        *bytes_used = before;
    }
    if let Some(may_write) = may_write {
        may_write.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let connection_id = conn.id();
    let result = statement.start(conn, sql_mode).await?;
    let columns = result.columns();
    let output = read_result(backend, connection_id, result, limits, bytes_used).await?;
    if let (Some(sql), Some(columns), 0) = (text_key, columns, output.warning_count) {
        text_path::remember(sql, columns);
    }
    Ok(output)
}

/// Reads a whole result (either protocol) within `limits`.
async fn read_result<P: Protocol>(
    backend: &Backend,
    connection_id: u32,
    mut result: QueryResult<'_, 'static, P>,
    limits: ResultLimits,
    bytes_used: &mut u64,
) -> Result<StatementResult, GatewayError> {
    let columns = result.columns().unwrap_or_default();
    let converter = RowConverter::new(&columns);
    let mut output = StatementResult {
        columns,
        ..StatementResult::default()
    };
    let mut stopped_early = false;
    while let Some(row) = result.next().await? {
        if let Some(client_max) = limits.client_max_rows {
            if output.rows.len() as u64 >= client_max {
                output.truncated = true;
                stopped_early = true;
                break;
            }
        } else if output.rows.len() as u64 >= limits.max_rows {
            stop_reading(backend, connection_id, result).await;
            return Err(GatewayError::ResultTooLarge {
                limit: format!("{} rows (--max-result-rows)", limits.max_rows),
            });
        }
        let (row, size) = converter.convert(row)?;
        *bytes_used += size as u64;
        if *bytes_used > limits.max_bytes {
            // A client that set max_rows asked for a prefix: it gets the rows
            // that fit. Otherwise the result is refused whole.
            if limits.client_max_rows.is_some() {
                output.truncated = true;
                stopped_early = true;
                break;
            }
            stop_reading(backend, connection_id, result).await;
            return Err(GatewayError::ResultTooLarge {
                limit: format!("{} bytes (--max-result-bytes)", limits.max_bytes),
            });
        }
        output.rows.push(row);
    }
    output.rows_affected = result.affected_rows();
    output.last_insert_id = result.last_insert_id().unwrap_or(0);
    output.warning_count = u32::from(result.warnings());
    if stopped_early {
        stop_reading(backend, connection_id, result).await;
    } else {
        // Later result sets (of a CALL) are read and dropped.
        result.drop_result().await?;
    }
    Ok(output)
}

/// Abandons a result that is still being sent: kills the statement on the
/// server so that the rest need not be read, then reads what is already on
/// the way, leaving the connection clean for its next statement.
pub async fn stop_reading<P: Protocol>(
    backend: &Backend,
    connection_id: u32,
    result: QueryResult<'_, 'static, P>,
) {
    backend.kill_query(connection_id).await;
    if let Err(e) = result.drop_result().await {
        // 1317 "query interrupted" is the expected answer to the kill.
        if !matches!(&e, mysql_async::Error::Server(s) if s.code == 1317) {
            tracing::debug!(error = %e, "error while discarding an abandoned result");
        }
    }
}
