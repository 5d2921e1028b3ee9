// Type definitions for sqlgate-client.
/// <reference types="node" />
import * as grpc from '@grpc/grpc-js';

export { grpc };

/** Exact decimal text, sent as decimal_value (never a float). */
export declare class Decimal {
  constructor(text: string | number | bigint);
  readonly text: string;
  toString(): string;
}

/**
 * A value that can be sent as a statement parameter: null/undefined (NULL),
 * bigint (int64, uint64 above 2^63-1, exact DECIMAL text beyond 64 bits),
 * number (typed as MariaDB types the literal mysql2 writes, String(n): a whole
 * number below 1e21 is an integer — int64, uint64 or exact DECIMAL text — one
 * written with an exponent such as 1e21 or 1.5e300 is a DOUBLE, a fraction is
 * a DOUBLE; never wrapped; NaN and Infinity throw a TypeError), boolean,
 * string, Buffer/Uint8Array (bytes), Decimal.
 */
export type SqlParam = null | undefined | bigint | number | boolean | string | Buffer | Uint8Array | Decimal;

/**
 * A result cell: null (NULL), bigint (every integer type, exact), number
 * (FLOAT, DOUBLE), string (text, DECIMAL, DATE, DATETIME, TIMESTAMP, TIME as
 * exact text), Buffer (binary), or parsed JSON (MySQL's JSON type).
 */
export type SqlValue = null | bigint | number | boolean | string | Buffer | JsonValue;
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One result column. */
export interface Column {
  name: string;
  table: string;
  database: string;
  /** The MySQL type name, e.g. "BIGINT", "VARCHAR", "DECIMAL". */
  type: string;
  unsigned: boolean;
  nullable: boolean;
  binary: boolean;
  length: number;
  decimals: number;
}

/** The result of one statement. */
export interface ExecuteResult {
  columns: Column[];
  /** Rows as arrays of values in column order. */
  rows: SqlValue[][];
  rowsAffected: bigint;
  lastInsertId: bigint;
  warningCount: number;
  truncated: boolean;
  /** The id of a transaction begun inline with `begin`; '' otherwise. */
  transactionId: string;
  /** A committed write's replication position ('' unless the gateway has replicas): pass it as readConsistency.minCommitToken. */
  commitToken: string;
  /** True when the call's requestId was recorded already: nothing ran now; the counts are the recorded ones (no rows). */
  replayed: boolean;
}

/** How fresh a read must be (only reads may ask for anything but strong). */
export type ReadConsistency =
  | { strong: true }
  | { maxStalenessMs: number }
  | { minCommitToken: string };

export type IsolationLevel =
  | 'READ UNCOMMITTED' | 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE'
  | 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable'
  | 'ISOLATION_LEVEL_DEFAULT' | 'ISOLATION_LEVEL_READ_UNCOMMITTED' | 'ISOLATION_LEVEL_READ_COMMITTED'
  | 'ISOLATION_LEVEL_REPEATABLE_READ' | 'ISOLATION_LEVEL_SERIALIZABLE';

/** How a transaction starts. */
export interface BeginOptions {
  isolation?: IsolationLevel;
  readOnly?: boolean;
  /** Ask for a shorter idle timeout than the gateway's --tx-idle-timeout. */
  idleTimeoutMs?: number;
  /** A read-only transaction may run on a replica that honours this. */
  readConsistency?: ReadConsistency;
}

export interface CallOptions {
  /** Deadline of this call in milliseconds; overrides the client's deadlineMs (0: none). */
  deadlineMs?: number;
}

export interface ExecuteOptions extends CallOptions {
  /** Run inside this open transaction. */
  transactionId?: string;
  /** Return at most this many rows (`truncated` tells when more were dropped). */
  maxRows?: number;
  /** Begin a transaction for this statement; its id comes back as `transactionId`. */
  begin?: boolean | BeginOptions;
  /** Commit the transaction right after the statement succeeds. */
  commit?: boolean;
  /** An autocommit read may be served by a replica that honours this. */
  readConsistency?: ReadConsistency;
  /** Makes a write that commits safe to retry: its outcome is recorded with this id (unique per principal) and a call with a recorded id answers it (`replayed`). */
  requestId?: string;
}

/** Options of a commit. */
export interface CommitOptions extends CallOptions {
  /** Record the commit under this id (see ExecuteOptions.requestId). */
  requestId?: string;
}

export interface StreamOptions extends CallOptions {
  transactionId?: string;
  maxRows?: number;
  readConsistency?: ReadConsistency;
}

/** A Transaction stream: one transaction as one bidirectional gRPC stream. */
export interface TransactionStream {
  /** Resolves once the transaction began. */
  readonly begun: Promise<BeginResult>;
  /** Runs a statement; rejects with its in-band SqlgateError (the transaction stays open). */
  execute(sql: string, params?: SqlParam[], options?: { maxRows?: number }): Promise<ExecuteResult>;
  /** Commits; resolves to the commit token ('' unless the gateway has replicas). */
  commit(options?: { requestId?: string }): Promise<string>;
  /** After commit({ requestId }): true when the id was recorded already (the recorded commit was the answer). */
  readonly replayed: boolean;
  /** Rolls back; true when an open transaction was rolled back. */
  rollback(): Promise<boolean>;
  /** Ends the stream: the transaction is rolled back at once. */
  cancel(): void;
}

/** A statement of a batch: `{ sql, params }` or `[sql, params]`. */
export type BatchStatement = { sql: string; params?: SqlParam[] } | [string, SqlParam[]?];

export interface BatchOptions extends CallOptions {
  /** Run inside this open transaction without committing. */
  transactionId?: string;
  /** A committing batch's request id (see ExecuteOptions.requestId). */
  requestId?: string;
  /** Options of the new transaction when transactionId is empty. */
  options?: BeginOptions;
  /** Let the gateway send runs of the same plain INSERT ... VALUES (...) as multi-row INSERTs (README: executeMany). */
  combineInserts?: boolean;
}

export interface ExecuteManyOptions extends CallOptions {
  /** Run inside this open transaction without committing. */
  transactionId?: string;
  /** Options of the transaction when transactionId is empty. */
  options?: BeginOptions;
  /** Statements per ExecuteBatch call (1000, the gateway's default limit). */
  maxBatchStatements?: number;
}

export interface ExecuteManyResult {
  /** Sum of the rows affected. */
  readonly affectedRows: bigint;
  /** The first AUTO_INCREMENT id generated, or 0n (mysql2's insertId of a multi-row INSERT). */
  readonly insertId: bigint;
  /** One result per row (see ExecuteBatchRequest.combine_inserts). */
  readonly results: ExecuteResult[];
}

export interface TlsOptions {
  /** PEM of the CA to trust instead of the system roots. */
  ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check the server's certificate against, instead of the target's host. */
  serverName?: string;
}

export interface ClientOptions {
  /** Sent as `authorization: Bearer <token>` with every call. */
  token?: string;
  /** false/undefined: plaintext; true: TLS with the system roots; an object: TLS with these settings. */
  tls?: boolean | TlsOptions;
  /** Default deadline of every call in milliseconds (none when unset). */
  deadlineMs?: number;
  /** Channel credentials to use instead of `tls`. */
  credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export interface TransactionHelperOptions extends BeginOptions, CallOptions {
  /** The request id every run's commit carries (default: a random UUID per call), so a commit whose answer was lost is rerun safely. */
  requestId?: string;
  /** Reruns on ABORTED (or the gateway's RESOURCE_EXHAUSTED refusals for want of capacity) before giving up (default 24: at most 25 runs, as the Python client). */
  retries?: number;
  /** First back-off in ms (default 10); it doubles with each rerun, half of it random. */
  backoffMs?: number;
  /** Longest back-off in ms (default 1000). */
  maxBackoffMs?: number;
  /** Raw TransactionOptions (proto field names, camelCase) instead of isolation/readOnly/idleTimeoutMs. */
  options?: Record<string, unknown>;
  /** Called with the ABORTED (or RESOURCE_EXHAUSTED) error and the number of the rerun (1, 2, ...) before each rerun. */
  onRetry?: (error: SqlgateError, attempt: number) => void | Promise<void>;
  /**
   * Run each attempt on one Transaction stream (default true): tx.execute() is a message of it; tx.stream(),
   * tx.executeBatch() and an execute() with commit, readConsistency or requestId are unary calls with tx.id.
   * false: Begin, unary calls with the id, Commit.
   */
  stream?: boolean;
}

/** The open transaction handed to `transaction(fn)`. */
export interface Transaction {
  readonly id: string;
  /** 0 on the first run, 1 on the first rerun, ... */
  readonly attempt: number;
  execute(sql: string, params?: SqlParam[], options?: Omit<ExecuteOptions, 'transactionId' | 'begin'>): Promise<ExecuteResult>;
  stream(sql: string, params?: SqlParam[], options?: Omit<StreamOptions, 'transactionId'>): AsyncGenerator<SqlValue[], void, undefined>;
  executeBatch(statements: BatchStatement[], options?: CallOptions): Promise<ExecuteResult[]>;
}

export interface BeginResult {
  transactionId: string;
  idleTimeoutMs: number | null;
  maxLifetimeMs: number | null;
}

export declare class Client {
  constructor(target?: string, options?: ClientOptions | grpc.ChannelCredentials);
  readonly token: string | null;
  readonly deadlineMs: number | null;
  /** Runs one statement (autocommit unless transactionId or begin is given). */
  execute(sql: string, params?: SqlParam[], options?: ExecuteOptions): Promise<ExecuteResult>;
  /** Streams a result of any size, row by row. */
  stream(sql: string, params?: SqlParam[], options?: StreamOptions): AsyncGenerator<SqlValue[], void, undefined>;
  /** Starts a transaction; returns its id. */
  begin(options?: BeginOptions, callOptions?: CallOptions): Promise<string>;
  beginTransaction(options?: BeginOptions, callOptions?: CallOptions): Promise<BeginResult>;
  /** Commits; resolves to the commit token ('' unless the gateway has replicas). */
  commit(transactionId: string, options?: CommitOptions): Promise<string>;
  /** Commits; `replayed` when options.requestId was recorded already (this transaction was rolled back). */
  commitResult(transactionId: string, options?: CommitOptions): Promise<{ commitToken: string; replayed: boolean }>;
  /** True when an open transaction was rolled back by this call. */
  rollback(transactionId: string, callOptions?: CallOptions): Promise<boolean>;
  /** Statements in order in one transaction that commits at the end (or inside transactionId). */
  executeBatch(statements: BatchStatement[], options?: BatchOptions): Promise<ExecuteResult[] & { readonly commitToken: string }>;
  /** Runs sql once per parameter array, all or nothing, as multi-row INSERTs where it can. */
  executeMany(sql: string, rows: SqlParam[][], options?: ExecuteManyOptions): Promise<ExecuteManyResult>;
  /** Opens a Transaction stream (see TransactionStream). */
  transactionStream(options?: BeginOptions, callOptions?: CallOptions): TransactionStream;
  /**
   * Begins a transaction, runs fn(tx), commits; on ABORTED reruns all of it
   * (with a jittered backoff) up to `retries` times; any other error rolls back and is thrown.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T> | T, options?: TransactionHelperOptions): Promise<T>;
  close(): void;
}

/** What every sqlgate error carries besides `code`. */
export interface SqlgateErrorFields {
  /** The code's name, e.g. "ABORTED". */
  readonly codeName: string;
  /** The status message. */
  readonly details: string;
  /** The trailers of the failed call. */
  readonly metadata: grpc.Metadata;
  /** ErrorInfo reason, e.g. "MYSQL_ERROR", "TRANSACTION_EXPIRED"; null when the status carried none. */
  readonly reason: string | null;
  /** ErrorInfo domain ("sqlgate"). */
  readonly domain: string | null;
  /** All ErrorInfo metadata (e.g. errno, sqlstate, statement_index, transaction_open). */
  readonly errorMetadata: Record<string, string>;
  /** The MySQL error number, for database errors. */
  readonly errno: number | null;
  /** The SQLSTATE, for database errors. */
  readonly sqlstate: string | null;
  /** The failing statement of an ExecuteBatch. */
  readonly statementIndex: number | null;
  /** The gRPC status code (`code` too in SqlgateError; in SqlgateDriverError `code` is mysql2's name). */
  readonly grpcCode: grpc.status;
  /** The SQLSTATE, as mysql2 names it (same as `sqlstate`). */
  readonly sqlState: string | null;
  /** The server's own message, for database errors (mysql2's `sqlMessage`). */
  readonly sqlMessage: string | null;
  /** mysql2's code name for `errno`, e.g. "ER_DUP_ENTRY"; null without errno or when mysql2 has no name for it. */
  readonly mysqlCode: string | null;
  /** True for ABORTED: rerun the whole transaction. */
  readonly retryTransaction: boolean;
  /**
   * True when the client refused a call of a transaction that an earlier call
   * reported as ended (its `cause` is that earlier error); roll it back.
   */
  readonly transactionEnded?: boolean;
}

/** A failed call, with the google.rpc.ErrorInfo the gateway attaches. */
export declare class SqlgateError extends Error {
  readonly name: 'SqlgateError';
  /** The gRPC status code (see `status`). */
  readonly code: grpc.status;
}
export interface SqlgateError extends SqlgateErrorFields {}

/**
 * A SqlgateError (at run time a subclass of it) shaped as mysql2's errors:
 * the Drizzle adapter throws these, as the `cause` of drizzle's
 * DrizzleQueryError. `code` is mysql2's name for the MySQL error
 * ("ER_DUP_ENTRY", "ER_LOCK_DEADLOCK"; undefined when mysql2 has none, as with
 * mysql2), else the gateway's reason ("TRANSACTION_EXPIRED"), else the gRPC
 * code's name ("DEADLINE_EXCEEDED"); `message` is the server's message for
 * database errors; `sql` the statement.
 */
export declare class SqlgateDriverError extends Error {
  readonly name: 'SqlgateError';
  readonly code: string | undefined;
  readonly sql: string;
}
export interface SqlgateDriverError extends SqlgateErrorFields {}

export declare function toValue(value: SqlParam): Record<string, unknown>;
export declare function fromValue(value: Record<string, unknown>): SqlValue;
export declare function describeError(error: unknown): {
  code: number; message: string; reason: string | null; errno: number | null; sqlstate: string | null; hasDetails: boolean;
};

/** gRPC status codes. */
export declare const status: typeof grpc.status;
/** The directory the .proto files were loaded from. */
export declare const protoRoot: string;

/**
 * The callback for drizzle-orm/mysql-proxy's drizzle(callback) (the same
 * function as 'sqlgate-client/drizzle' exports; typed here without drizzle-orm).
 * For a drizzle database with transactions, use drizzle() from 'sqlgate-client/drizzle'.
 */
export declare function drizzleCallback(executor: Client | Transaction, config?: { deadlineMs?: number }):
  (sql: string, params: any[], method: 'all' | 'execute') => Promise<{ rows: any[]; insertId?: number; affectedRows?: number }>;
