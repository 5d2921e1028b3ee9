'use strict';
// A small client for sqlgate over @grpc/grpc-js, loading the proto at run
// time with @grpc/proto-loader (no generated code).
//
// 64-bit integers come back as BigInt (JavaScript numbers lose precision
// above 2^53), DECIMAL as its exact text, temporal values as their text.
const { randomUUID } = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { PROTO_ROOT } = require('./proto-root');
const {
  SqlgateError, SqlgateDriverError, statusError, wrapError, describeError, retryableCause, endsTransaction, endedError,
} = require('./errors');

const definition = protoLoader.loadSync('sqlgate/v1/sqlgate.proto', {
  // Imports (google/rpc/status.proto) resolve from the proto root.
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: String, // exact: converted to BigInt below
  enums: String,
  defaults: false,
  oneofs: true,
});
const { sqlgate } = grpc.loadPackageDefinition(definition);

/** Exact decimal text, sent as decimal_value. */
class Decimal {
  constructor(text) { this.text = String(text); }
  toString() { return this.text; }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * A whole number given as its exact decimal digits (a BigInt, or a number's
 * String() without an exponent): int64 or uint64 when it fits, else exact
 * DECIMAL text. Never wrapped.
 */
function integerValue(digits) {
  const n = BigInt(digits);
  if (n >= INT64_MIN && n <= INT64_MAX) return { int64Value: digits };
  if (n > INT64_MAX && n <= UINT64_MAX) return { uint64Value: digits };
  return { decimalValue: digits };
}

/**
 * A JavaScript number as a sqlgate Value, typed as MariaDB types the literal
 * mysql2's query() writes for it (`String(n)`): a whole number without an
 * exponent (|n| < 1e21) is an integer (int64, uint64, or exact DECIMAL text
 * beyond 64 bits), a whole number written with an exponent (1e21,
 * -1e300, Number.MAX_VALUE) is a DOUBLE, and a fraction is a DOUBLE (as
 * mysql2's execute() sends it). NaN and ±Infinity have no SQL value.
 */
function numberValue(v) {
  if (!Number.isFinite(v)) throw new TypeError(`cannot send ${v} as a SQL value: MariaDB and MySQL have no NaN or Infinity`);
  if (!Number.isInteger(v)) return { doubleValue: v };
  // Exact as a number: no BigInt and no decimal text for protobufjs to parse.
  if (Number.isSafeInteger(v)) return { int64Value: v };
  const text = String(v);
  return /e/i.test(text) ? { doubleValue: v } : integerValue(text);
}

/** A JavaScript value as a sqlgate Value. */
function toValue(v) {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'bigint') return integerValue(v.toString());
  if (typeof v === 'number') return numberValue(v);
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Buffer.isBuffer(v)) return { bytesValue: v };
  if (v instanceof Uint8Array) return { bytesValue: Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
  if (v instanceof Decimal) return { decimalValue: v.text };
  throw new TypeError(`cannot send a ${typeof v} as a SQL value; use null, bigint, number, boolean, string, Buffer or Decimal`);
}

/** A sqlgate Value as a JavaScript value. */
function fromValue(value) {
  switch (value.kind) {
    case 'nullValue': return null;
    case 'int64Value': return BigInt(value.int64Value);
    case 'uint64Value': return BigInt(value.uint64Value);
    case 'doubleValue': return value.doubleValue;
    case 'floatValue': return value.floatValue;
    case 'boolValue': return value.boolValue;
    case 'bytesValue': return value.bytesValue;
    case 'jsonValue': return JSON.parse(value.jsonValue);
    default: return value[value.kind]; // string, decimal, date, datetime, time: exact text
  }
}

const ISOLATION = {
  'READ UNCOMMITTED': 'ISOLATION_LEVEL_READ_UNCOMMITTED',
  'READ COMMITTED': 'ISOLATION_LEVEL_READ_COMMITTED',
  'REPEATABLE READ': 'ISOLATION_LEVEL_REPEATABLE_READ',
  SERIALIZABLE: 'ISOLATION_LEVEL_SERIALIZABLE',
};

function msDuration(ms) {
  const rounded = Math.round(ms);
  return { seconds: String(Math.floor(rounded / 1000)), nanos: (rounded % 1000) * 1e6 };
}

/**
 * A ReadConsistency from { strong: true } | { maxStalenessMs } |
 * { minCommitToken }; undefined when none is given.
 */
function readConsistency(consistency) {
  if (consistency === undefined || consistency === null) return undefined;
  if (consistency.minCommitToken !== undefined) return { minCommitToken: String(consistency.minCommitToken) };
  if (consistency.maxStalenessMs !== undefined) return { maxStaleness: msDuration(consistency.maxStalenessMs) };
  if (consistency.strong) return { strong: true };
  throw new TypeError('readConsistency must be { strong: true }, { maxStalenessMs } or { minCommitToken }');
}

/** BeginOptions ({isolation, readOnly, idleTimeoutMs, readConsistency}) as TransactionOptions. */
function transactionOptions({ isolation, readOnly, idleTimeoutMs, readConsistency: consistency } = {}) {
  const options = {};
  const bound = readConsistency(consistency);
  if (bound) options.readConsistency = bound;
  if (isolation !== undefined && isolation !== null) {
    const name = ISOLATION[String(isolation).toUpperCase()] || String(isolation);
    if (!Object.values(ISOLATION).includes(name) && name !== 'ISOLATION_LEVEL_DEFAULT') {
      throw new TypeError(`unknown isolation level ${isolation}; use one of ${Object.keys(ISOLATION).join(', ')}`);
    }
    options.isolation = name;
  }
  if (readOnly) options.readOnly = true;
  if (idleTimeoutMs !== undefined && idleTimeoutMs !== null) {
    const ms = Math.round(idleTimeoutMs);
    options.idleTimeout = { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
  }
  return options;
}

function durationMs(duration) {
  if (!duration) return null;
  return Number(duration.seconds || 0) * 1000 + Math.round((duration.nanos || 0) / 1e6);
}

function column(c) {
  return {
    name: c.name || '',
    table: c.table || '',
    database: c.database || '',
    type: c.type || '',
    unsigned: Boolean(c.unsigned),
    nullable: Boolean(c.nullable),
    binary: Boolean(c.binary),
    length: c.length || 0,
    decimals: c.decimals || 0,
  };
}

function result(response) {
  return {
    columns: (response.columns || []).map(column),
    rows: (response.rows || []).map((row) => (row.values || []).map(fromValue)),
    rowsAffected: BigInt(response.rowsAffected || 0),
    lastInsertId: BigInt(response.lastInsertId || 0),
    warningCount: response.warningCount || 0,
    truncated: Boolean(response.truncated),
    transactionId: response.transactionId || '',
    commitToken: response.commitToken || '',
    // The call's requestId was recorded already: nothing ran now, and the
    // counts are the recorded ones (no rows).
    replayed: Boolean(response.replayed),
  };
}

/** The errors of a commit that do not say whether it committed (the answer was lost). */
const UNANSWERED_COMMIT = new Set([grpc.status.UNKNOWN, grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED]);

function channelCredentials(tls) {
  if (tls === undefined || tls === null || tls === false) return grpc.credentials.createInsecure();
  if (tls === true) return grpc.credentials.createSsl();
  if (typeof tls === 'object') {
    const pem = (v) => (v === undefined || v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
    return grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
  }
  throw new TypeError('tls must be false, true, or { ca, cert?, key?, serverName? }');
}

/** How many ended transactions a Client remembers (oldest forgotten first). */
const MAX_ENDED_TRANSACTIONS = 10000;

/**
 * The wait before rerun `attempt + 1`: exponential back-off with "equal
 * jitter": d = min(maxMs, baseMs * 2^attempt), then d/2 + a random part of
 * d/2. It grows with every rerun (so transactions that collided spread out
 * further each time) and is never near 0 after a collision.
 */
function retryDelay(attempt, baseMs, maxMs) {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return d / 2 + Math.random() * (d / 2);
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

class Client {
  /**
   * new Client(target, options): options are { token, tls, deadlineMs,
   * channelOptions }. For compatibility the second argument may also be a
   * grpc.ChannelCredentials.
   */
  constructor(target = 'localhost:50051', options = {}) {
    if (options instanceof grpc.ChannelCredentials) options = { credentials: options };
    const { token, tls, deadlineMs, credentials, channelOptions = {} } = options || {};
    const channel = { ...channelOptions };
    if (tls && typeof tls === 'object' && tls.serverName) channel['grpc.ssl_target_name_override'] = tls.serverName;
    this.stub = new sqlgate.v1.Database(target, credentials || channelCredentials(tls), channel);
    this.token = token || null;
    this.deadlineMs = deadlineMs || null;
    // Transactions a call reported as ended, with the error that ended them:
    // every later call of one raises that error until it is rolled back.
    this.endedTransactions = new Map();
  }

  /** Throws when `transactionId` was reported as ended and not rolled back since. */
  checkNotEnded(transactionId) {
    const original = transactionId ? this.endedTransactions.get(transactionId) : undefined;
    if (original) throw endedError(transactionId, original);
  }

  /** Remembers `transactionId` as ended when `error` ends it; returns `error`. */
  noteFailure(transactionId, error) {
    if (transactionId && endsTransaction(error) && !this.endedTransactions.has(transactionId)) {
      this.endedTransactions.set(transactionId, error);
      if (this.endedTransactions.size > MAX_ENDED_TRANSACTIONS) {
        this.endedTransactions.delete(this.endedTransactions.keys().next().value);
      }
    }
    return error;
  }

  /** A call of transaction `transactionId` ('' for none): refused when it ended, noting an ending failure. */
  async inTransaction(transactionId, run) {
    this.checkNotEnded(transactionId);
    try {
      return await run();
    } catch (error) {
      throw this.noteFailure(transactionId, error);
    }
  }

  metadata() {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  callOptions(deadlineMs) {
    const ms = deadlineMs === undefined ? this.deadlineMs : deadlineMs;
    return ms ? { deadline: new Date(Date.now() + ms) } : {};
  }

  call(method, request, { deadlineMs } = {}) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, this.metadata(), this.callOptions(deadlineMs),
        (error, response) => (error ? reject(wrapError(error)) : resolve(response)));
    });
  }

  /** Runs one statement; returns {columns, rows (arrays of JS values), rowsAffected, ...}. */
  /**
   * `requestId`: makes a write that commits (autocommit, or `commit`) safe to
   * retry: the gateway records its outcome with it, and a call with a
   * recorded id answers that outcome (`replayed: true`) instead of running.
   */
  async execute(sql, params = [], { transactionId = '', maxRows = 0, begin, commit = false, readConsistency: consistency, deadlineMs, requestId } = {}) {
    const request = { sql, params: params.map(toValue), transactionId, maxRows };
    if (requestId) request.requestId = requestId;
    const bound = readConsistency(consistency);
    if (bound) request.readConsistency = bound;
    if (begin) request.begin = transactionOptions(begin === true ? {} : begin);
    if (commit) request.commit = true;
    return this.inTransaction(transactionId, async () => result(await this.call('execute', request, { deadlineMs })));
  }

  /** Streams a result: an async iterator of rows (arrays of JS values). */
  async *stream(sql, params = [], { transactionId = '', maxRows = 0, readConsistency: consistency, deadlineMs } = {}) {
    const request = { sql, params: params.map(toValue), transactionId, maxRows };
    const bound = readConsistency(consistency);
    if (bound) request.readConsistency = bound;
    this.checkNotEnded(transactionId);
    const call = this.stub.executeStream(request, this.metadata(), this.callOptions(deadlineMs));
    try {
      for await (const message of call) {
        if (message.part === 'rows') {
          for (const row of message.rows.rows || []) yield (row.values || []).map(fromValue);
        }
      }
    } catch (error) {
      throw this.noteFailure(transactionId, wrapError(error));
    } finally {
      call.cancel(); // a no-op after the end; stops the statement if the caller broke out early
    }
  }

  /** Starts a transaction; returns its id. */
  async begin(options = {}, { deadlineMs } = {}) {
    return (await this.beginTransaction(options, { deadlineMs })).transactionId;
  }

  /** Starts a transaction; returns {transactionId, idleTimeoutMs, maxLifetimeMs}. */
  async beginTransaction(options = {}, { deadlineMs } = {}) {
    const response = await this.call('begin', { options: transactionOptions(options) }, { deadlineMs });
    return { transactionId: response.transactionId, idleTimeoutMs: durationMs(response.idleTimeout), maxLifetimeMs: durationMs(response.maxLifetime) };
  }

  /** Commits; returns the commit token ('' unless the gateway has replicas). */
  async commit(transactionId, { deadlineMs, requestId } = {}) {
    return (await this.commitResult(transactionId, { deadlineMs, requestId })).commitToken;
  }

  /**
   * Commits; returns {commitToken, replayed}. With `requestId`, the commit is
   * recorded under it; `replayed` says the id was recorded already: this
   * transaction was rolled back and the recorded commit is the answer.
   */
  async commitResult(transactionId, { deadlineMs, requestId } = {}) {
    const request = { transactionId };
    if (requestId) request.requestId = requestId;
    const response = await this.inTransaction(transactionId, () => this.call('commit', request, { deadlineMs }));
    return { commitToken: response.commitToken || '', replayed: Boolean(response.replayed) };
  }

  /**
   * Rolls back; true when an open transaction was rolled back by this call.
   * For a transaction a call reported as ended, it tells the gateway too and
   * resolves false (nothing left to roll back) instead of repeating the error;
   * the id is forgotten either way.
   */
  async rollback(transactionId, { deadlineMs } = {}) {
    const ended = this.endedTransactions.get(transactionId);
    this.endedTransactions.delete(transactionId);
    try {
      return Boolean((await this.call('rollback', { transactionId }, { deadlineMs })).rolledBack);
    } catch (error) {
      if (ended && error instanceof SqlgateError && endsTransaction(error)) return false;
      throw error;
    }
  }

  /**
   * Runs [{sql, params}] (or [sql, params] pairs) in order in one transaction
   * that commits at the end, or inside `transactionId` without committing.
   */
  async executeBatch(statements, { transactionId = '', options, deadlineMs, combineInserts = false, requestId } = {}) {
    const request = {
      statements: statements.map((s) => (Array.isArray(s) ? { sql: s[0], params: (s[1] || []).map(toValue) } : { sql: s.sql, params: (s.params || []).map(toValue) })),
      transactionId,
      combineInserts,
    };
    // A committing batch's requestId (see execute).
    if (requestId) request.requestId = requestId;
    if (options) request.options = transactionOptions(options);
    const response = await this.inTransaction(transactionId, () => this.call('executeBatch', request, { deadlineMs }));
    const results = (response.results || []).map((r) => ({ ...result(r), replayed: Boolean(response.replayed) }));
    // The committing batch's commit token ('' inside a transaction or without replicas).
    Object.defineProperty(results, 'commitToken', { value: response.commitToken || '', enumerable: false });
    return results;
  }

  /**
   * Runs `sql` once per parameter array of `rows`, all or nothing, with
   * ExecuteBatch's combineInserts: the gateway sends a plain
   * `INSERT ... VALUES (?, ...)` as multi-row INSERTs, as mysql2's
   * `query('INSERT ... VALUES ?', [rows])` does. Batches of at most
   * `maxBatchStatements` (1000, the gateway's --max-batch-statements
   * default); more than one run in a transaction of their own (or inside
   * `transactionId`). Returns {affectedRows, insertId, results}: the sum of
   * the rows affected, and the first AUTO_INCREMENT id generated (mysql2's
   * insertId for a multi-row INSERT), as BigInts.
   */
  async executeMany(sql, rows, { transactionId = '', options, deadlineMs, maxBatchStatements = 1000 } = {}) {
    const statements = rows.map((params) => [sql, params]);
    let results = [];
    // Each batch in turn; an error's statementIndex counts from the first row.
    const runAll = async (inTransaction, batchOptions) => {
      for (let start = 0; start < statements.length; start += maxBatchStatements) {
        const chunk = statements.slice(start, start + maxBatchStatements);
        try {
          results = results.concat(await this.executeBatch(chunk, { transactionId: inTransaction, deadlineMs, combineInserts: true, ...batchOptions }));
        } catch (error) {
          if (typeof error.statementIndex === 'number') error.statementIndex += start;
          throw error;
        }
      }
    };
    if (statements.length <= maxBatchStatements || transactionId) {
      await runAll(transactionId, transactionId ? {} : { options });
    } else {
      const id = await this.begin(options || {}, { deadlineMs });
      try {
        await runAll(id, {});
        await this.commit(id, { deadlineMs });
      } catch (error) {
        await this.rollback(id).catch(() => false);
        throw error;
      }
    }
    const first = results.find((r) => r.lastInsertId !== 0n);
    return {
      affectedRows: results.reduce((sum, r) => sum + r.rowsAffected, 0n),
      insertId: first ? first.lastInsertId : 0n,
      results,
    };
  }

  /**
   * Opens a Transaction stream (one transaction as one bidirectional gRPC
   * stream, which stays on one gateway through any proxy). Returns
   * { begun, execute(sql, params, {maxRows}), commit(), rollback(), cancel() }:
   * `begun` resolves to {transactionId, idleTimeoutMs, maxLifetimeMs};
   * execute resolves to a result, or rejects with the statement's in-band
   * SqlgateError (the transaction stays open); commit resolves to the commit
   * token. An error that ends the transaction rejects every pending call and
   * every later execute() and commit(); rollback() then resolves false.
   * Ending without commit() or rollback() (cancel(), or the process leaving)
   * rolls the transaction back at once.
   */
  transactionStream(options = {}, { deadlineMs } = {}) {
    const call = this.stub.transaction(this.metadata(), this.callOptions(deadlineMs));
    const pending = [];
    let failure = null;
    const fail = (error) => {
      failure = failure || error;
      while (pending.length) pending.shift().reject(failure);
    };
    call.on('data', (message) => {
      const waiter = pending.shift();
      if (waiter) waiter.resolve(message);
    });
    call.on('error', (error) => fail(wrapError(error)));
    call.on('end', () => fail(new Error('the Transaction stream ended')));
    const send = (request) => new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      pending.push({ resolve, reject });
      call.write(request);
    });
    const begun = send({ begin: transactionOptions(options) }).then((message) => ({
      transactionId: message.begun.transactionId,
      idleTimeoutMs: durationMs(message.begun.idleTimeout),
      maxLifetimeMs: durationMs(message.begun.maxLifetime),
    }));
    begun.catch(() => {});
    const stream = {
      begun,
      replayed: false,
      execute: async (sql, params = [], { maxRows = 0 } = {}) => {
        const message = await send({ statement: { sql, params: params.map(toValue), maxRows } });
        const outcome = message.statement;
        if (outcome.outcome === 'error') {
          const status = outcome.error;
          throw new SqlgateError(statusError(status));
        }
        return result(outcome.result);
      },
      // requestId: see Client.commitResult; `replayed` is then set on the stream.
      commit: async ({ requestId } = {}) => {
        const message = await send({ commit: requestId ? { requestId } : {} });
        call.end();
        stream.replayed = Boolean(message.committed.replayed);
        return message.committed.commitToken || '';
      },
      // After a failure the stream is over and the gateway has rolled the
      // transaction back (or a statement committed it): nothing to roll back.
      rollback: async () => {
        if (failure) return false;
        const message = await send({ rollback: {} });
        call.end();
        return Boolean(message.rolledBack.rolledBack);
      },
      cancel: () => call.cancel(),
    };
    return stream;
  }

  /**
   * Runs `work(tx)` in a transaction and commits it; on ABORTED (deadlock,
   * lock wait timeout, expired or aborted transaction) rolls back and runs the
   * whole of it again, up to `retries` times (default 24: at most 25 runs),
   * after a back-off that doubles with each rerun, from `backoffMs` up to
   * `maxBackoffMs`, half of it random (see retryDelay). The gateway's
   * refusals for want of capacity (RESOURCE_EXHAUSTED: TOO_MANY_TRANSACTIONS,
   * POOL_EXHAUSTED, TOO_MANY_REQUESTS), of the Begin or of a call inside, are
   * retried the same way, from the same budget. Any other error rolls back
   * and is thrown.
   * `tx` has id, attempt, execute(sql, params), stream(sql, params) and
   * executeBatch(statements).
   * Every run's commit carries one request id (`requestId`, or a random UUID
   * per transaction() call), so a commit whose answer was lost (UNKNOWN,
   * UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: the gateway or its database
   * connection failed during COMMIT) is rerun too: if it did commit, the
   * gateway rolls the rerun back and answers the recorded commit, so the
   * work is applied once.
   */
  async transaction(work, {
    retries = 24, backoffMs = 10, maxBackoffMs = 1000, isolation, readOnly, idleTimeoutMs, options, onRetry, deadlineMs,
    requestId = randomUUID(),
  } = {}) {
    const beginOptions = options || { isolation, readOnly, idleTimeoutMs };
    for (let attempt = 0; ; attempt++) {
      let id;
      try {
        id = await this.begin(beginOptions, { deadlineMs });
      } catch (error) {
        const retry = retryableCause(error);
        if (!retry || attempt >= retries) throw error;
        if (onRetry) await onRetry(retry, attempt + 1);
        await sleep(retryDelay(attempt, backoffMs, maxBackoffMs));
        continue;
      }
      const tx = {
        id,
        attempt,
        execute: (sql, params = [], opts = {}) => this.execute(sql, params, { deadlineMs, ...opts, transactionId: id, begin: undefined }),
        stream: (sql, params = [], opts = {}) => this.stream(sql, params, { deadlineMs, ...opts, transactionId: id }),
        executeBatch: (statements, opts = {}) => this.executeBatch(statements, { deadlineMs, ...opts, transactionId: id }),
      };
      let committing = false;
      try {
        const value = await work(tx);
        committing = true;
        await this.commit(id, { deadlineMs, requestId });
        return value;
      } catch (error) {
        await this.rollback(id).catch(() => {});
        // The commit was sent (not refused by the client for a transaction it
        // knows ended) and its answer says nothing of the outcome.
        const unanswered = committing && error instanceof SqlgateError && !error.transactionEnded
          && UNANSWERED_COMMIT.has(error.grpcCode);
        const retry = retryableCause(error) || (unanswered ? error : null);
        if (!retry || attempt >= retries) throw error;
        if (onRetry) await onRetry(retry, attempt + 1);
        await sleep(retryDelay(attempt, backoffMs, maxBackoffMs));
      }
    }
  }

  close() { this.stub.close(); }
}

module.exports = {
  Client,
  Decimal,
  SqlgateError,
  SqlgateDriverError,
  toValue,
  fromValue,
  describeError,
  status: grpc.status,
  grpc,
  protoRoot: PROTO_ROOT,
};

// The Drizzle ORM adapter's callback (needs nothing from drizzle-orm);
// drizzle(client) itself is require('sqlgate-client/drizzle').drizzle.
module.exports.drizzleCallback = require('./drizzle').drizzleCallback;
