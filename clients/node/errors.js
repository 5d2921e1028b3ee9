'use strict';
// Errors of sqlgate calls: SqlgateError (the gRPC status with the gateway's
// google.rpc.ErrorInfo decoded: reason, errno, sqlstate, ...), and which of
// them end the transaction they happened in.
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');
const { PROTO_ROOT } = require('./proto-root');
const MYSQL_ERROR_NAMES = require('./mysql-errors');

// google.rpc.Status from the bundled status.proto (google/protobuf/any.proto is
// built into protobufjs), and google.rpc.ErrorInfo as googleapis'
// google/rpc/error_details.proto defines it:
//   message ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target));
rpcRoot.loadSync('google/rpc/status.proto', { keepCase: true });
const RpcStatus = rpcRoot.lookupType('google.rpc.Status');
const ErrorInfo = new protobuf.Type('ErrorInfo')
  .add(new protobuf.Field('reason', 1, 'string'))
  .add(new protobuf.Field('domain', 2, 'string'))
  .add(new protobuf.MapField('metadata', 3, 'string', 'string'));
rpcRoot.lookup('google.rpc').add(ErrorInfo);
const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

/**
 * A failed call: the gRPC status code and message, and the google.rpc.ErrorInfo
 * the gateway attaches to every error (reason, and errno/sqlstate for
 * database errors, statement_index for ExecuteBatch).
 */
class SqlgateError extends Error {
  constructor(grpcError) {
    super(grpcError.details || grpcError.message);
    this.name = 'SqlgateError';
    this.code = grpcError.code;
    this.grpcCode = grpcError.code;
    this.codeName = CODE_NAMES[grpcError.code] || String(grpcError.code);
    this.details = grpcError.details; // the status message, as grpc-js names it
    this.metadata = grpcError.metadata;
    this.reason = null;
    this.domain = null;
    this.errorMetadata = {};
    this.errno = null;
    this.sqlstate = null;
    this.statementIndex = null;
    const info = errorInfoOf(grpcError.metadata);
    if (info) {
      this.reason = info.reason || null;
      this.domain = info.domain || null;
      this.errorMetadata = { ...info.metadata };
      if (info.metadata.errno !== undefined) this.errno = Number(info.metadata.errno);
      if (info.metadata.sqlstate !== undefined) this.sqlstate = info.metadata.sqlstate;
      if (info.metadata.statement_index !== undefined) this.statementIndex = Number(info.metadata.statement_index);
    }
    // As mysql2 names them: sqlState, sqlMessage (the server's own message),
    // and mysqlCode, mysql2's err.code for the errno (e.g. 'ER_DUP_ENTRY').
    this.sqlState = this.sqlstate;
    this.sqlMessage = this.errno === null ? null : serverMessage(this.details || '', this.errno);
    this.mysqlCode = this.errno === null ? null : (MYSQL_ERROR_NAMES[this.errno] || null);
  }

  /** True for ABORTED: rerun the whole transaction. */
  get retryTransaction() { return this.grpcCode === grpc.status.ABORTED; }
}

/**
 * The server's message inside the gateway's status message, which adds
 * "(MySQL error N, SQLSTATE S)", a batch's "statement i of the batch failed: "
 * and what became of the transaction.
 */
function serverMessage(details, errno) {
  const match = new RegExp(`^(?:statement \\d+ of the batch failed: )?([\\s\\S]*?) \\(MySQL error ${errno}, SQLSTATE [0-9A-Za-z]{5}\\)`).exec(details);
  return match ? match[1] : details;
}

/**
 * A SqlgateError shaped as mysql2's errors, for code written against mysql2
 * (the Drizzle adapter throws these): `code` is mysql2's name for the MySQL
 * error ('ER_DUP_ENTRY', 'ER_LOCK_DEADLOCK', ...; undefined for a number
 * mysql2 does not know, as with mysql2), else the gateway's reason
 * ('TRANSACTION_EXPIRED', ...), else the gRPC code's name
 * ('DEADLINE_EXCEEDED', ...); `message` is the server's message for database
 * errors; `sql` the statement. The gRPC code stays in `grpcCode`.
 */
class SqlgateDriverError extends SqlgateError {
  constructor(error, sql) {
    super({ code: error.grpcCode, details: error.details, metadata: error.metadata });
    if (this.errno !== null) {
      this.code = MYSQL_ERROR_NAMES[this.errno];
      this.message = this.sqlMessage;
    } else {
      this.code = this.reason || this.codeName;
    }
    if (error.transactionEnded) this.transactionEnded = true;
    if (error.cause !== undefined) this.cause = error.cause;
    this.sql = sql;
  }
}

/**
 * An in-band google.rpc.Status (a Transaction stream's statement error, as
 * proto-loader decodes it) in the shape of a grpc-js error, so that
 * SqlgateError reads its ErrorInfo the same way.
 */
function statusError(status) {
  const metadata = new grpc.Metadata();
  const details = (status.details || []).map((any) => ({ type_url: any.typeUrl || any.type_url, value: any.value }));
  const bytes = RpcStatus.encode(RpcStatus.fromObject({ code: status.code, message: status.message, details })).finish();
  metadata.set('grpc-status-details-bin', Buffer.from(bytes));
  return { code: status.code, details: status.message, metadata };
}

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

/** The ErrorInfo inside grpc-status-details-bin, or null. */
function errorInfoOf(metadata) {
  const bytes = metadata && typeof metadata.get === 'function' ? metadata.get('grpc-status-details-bin')[0] : undefined;
  if (!bytes) return null;
  let status;
  try { status = RpcStatus.decode(bytes); } catch { return null; }
  for (const any of status.details || []) {
    if (any.type_url === ERROR_INFO_TYPE_URL) {
      const info = ErrorInfo.decode(any.value);
      return { reason: info.reason, domain: info.domain, metadata: info.metadata || {} };
    }
  }
  return null;
}

/** A gRPC error as a SqlgateError; anything else unchanged. */
function wrapError(error) {
  if (error instanceof SqlgateError) return error;
  if (error && typeof error.code === 'number' && error.metadata instanceof grpc.Metadata) return new SqlgateError(error);
  return error;
}

/** Kept for compatibility: a plain description of an error. */
function describeError(error) {
  const e = wrapError(error);
  return { code: e.code, message: e.details, reason: e.reason, errno: e.errno, sqlstate: e.sqlstate, hasDetails: Boolean(e.reason) };
}

/** The gateway's refusals for want of capacity: nothing ran, try again later. */
const OVERLOADED = new Set(['TOO_MANY_TRANSACTIONS', 'POOL_EXHAUSTED', 'TOO_MANY_REQUESTS']);

/**
 * The SqlgateError that `error` is or wraps (through `cause`, as Drizzle's
 * DrizzleQueryError wraps the driver's error) when it says "run the whole
 * transaction again": ABORTED, or a refusal for want of capacity
 * (RESOURCE_EXHAUSTED with reason TOO_MANY_TRANSACTIONS, POOL_EXHAUSTED or
 * TOO_MANY_REQUESTS); else null.
 */
function retryableCause(error) {
  for (let e = error, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (e instanceof SqlgateError) {
      const retry = e.grpcCode === grpc.status.ABORTED || (e.grpcCode === grpc.status.RESOURCE_EXHAUSTED && OVERLOADED.has(e.reason));
      return retry ? e : null;
    }
  }
  return null;
}

/**
 * True when `error`, failing a call of a transaction, means that transaction
 * is over or in a state the client cannot know: the database rolled it back
 * (deadlock, lock wait timeout with the transaction gone, ErrorInfo
 * `transaction_open` "false"), the gateway ended it (expired, aborted, not
 * found), a statement committed it (TRANSACTION_ENDED_BY_STATEMENT), or the
 * call was cut short (deadline, cancel: the gateway rolls back a transaction
 * whose statement was interrupted). A statement error after which the server
 * still has the transaction (`transaction_open` "true", e.g. a lock wait
 * timeout or a duplicate key) does not end it.
 */
function endsTransaction(error) {
  if (!(error instanceof SqlgateError)) return false;
  const open = error.errorMetadata.transaction_open;
  if (open === 'true') return false;
  if (open === 'false') return true;
  if (error.reason === 'TRANSACTION_ENDED_BY_STATEMENT' || error.reason === 'TRANSACTION_NOT_FOUND') return true;
  return [grpc.status.ABORTED, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED].includes(error.grpcCode);
}

/**
 * The error a call of an ended transaction raises: the ending error's code,
 * reason and ErrorInfo (so retry logic sees the same ABORTED), saying that
 * the transaction ended earlier, with the original as `cause`.
 */
function endedError(transactionId, original) {
  const error = new SqlgateError({
    code: original.grpcCode,
    details: `transaction ${transactionId} ended earlier (${original.codeName}${original.reason ? ` / ${original.reason}` : ''}: ${original.message}); nothing more runs in it: roll it back`,
    metadata: original.metadata,
  });
  error.transactionEnded = true;
  error.cause = original;
  return error;
}

module.exports = {
  SqlgateError, SqlgateDriverError, statusError, wrapError, describeError, retryableCause, endsTransaction, endedError, CODE_NAMES,
};
