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
const { Decimal, toValue, encodeStatements, encodeExecute } = require('./encode');
const { fromValue, result, begun, leanBatchResponse, leanResult } = require('./results');
const { transactionStream, streamTransaction } = require('./transaction-stream');

/** The methods' definitions (path, serializers), for calls whose request is encoded already. */
const SERVICE = sqlgate.v1.Database.service;
const encoded = (bytes) => bytes;
/** An ExecuteResponse: { converted } when leanResult reads it (no columns or rows), else protobufjs's object. */
const executeResponse = (bytes) => {
  const converted = leanResult(bytes, 0, bytes.length, true);
  return converted ? { converted } : SERVICE.Execute.responseDeserialize(bytes);
};
/** An ExecuteBatchResponse: { lean: [results, commitToken, replayed] } when leanBatchResponse reads it, else protobufjs's object. */
const batchResponse = (bytes) => {
  const lean = leanBatchResponse(bytes);
  return lean ? { lean } : SERVICE.ExecuteBatch.responseDeserialize(bytes);
};

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

/**
 * An ExecuteBatchRequest's bytes: the statements written straight from the
 * values (encode.js), then the request's other fields as protobufjs encodes
 * them (an encoded message followed by another is the two merged).
 */
function batchRequest(statements, { transactionId = '', options, combineInserts = false, requestId } = {}) {
  const rest = { transactionId, combineInserts };
  // A committing batch's requestId (see Client.execute).
  if (requestId) rest.requestId = requestId;
  if (options) rest.options = transactionOptions(options);
  return Buffer.concat([encodeStatements(statements), SERVICE.ExecuteBatch.requestSerialize(rest)]);
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
    this.service = SERVICE;
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
    if (transactionId && endsTransaction(error)) this.noteEnded(transactionId, error);
    return error;
  }

  /** Remembers `transactionId` as ended by `error` (unless it is already). */
  noteEnded(transactionId, error) {
    if (this.endedTransactions.has(transactionId)) return;
    this.endedTransactions.set(transactionId, error);
    if (this.endedTransactions.size > MAX_ENDED_TRANSACTIONS) {
      this.endedTransactions.delete(this.endedTransactions.keys().next().value);
    }
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

  /**
   * A unary call of method `name` ('ExecuteBatch') whose request is encoded
   * already (`bytes`); the answer is read by `deserialize` (protobufjs's by default).
   */
  callEncoded(name, bytes, { deadlineMs } = {}, deserialize = SERVICE[name].responseDeserialize) {
    const def = SERVICE[name];
    return new Promise((resolve, reject) => {
      this.stub.makeUnaryRequest(def.path, encoded, deserialize, bytes, this.metadata(), this.callOptions(deadlineMs),
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
    // Written straight from the values (encode.js); the message-valued
    // fields, when set, as protobufjs encodes them, appended.
    let request = encodeExecute(sql, params, { transactionId, maxRows, commit, requestId });
    const bound = readConsistency(consistency);
    if (bound || begin) {
      const more = {};
      if (bound) more.readConsistency = bound;
      if (begin) more.begin = transactionOptions(begin === true ? {} : begin);
      request = Buffer.concat([request, SERVICE.Execute.requestSerialize(more)]);
    }
    return this.inTransaction(transactionId, async () => {
      const response = await this.callEncoded('Execute', request, { deadlineMs }, executeResponse);
      return response.converted || result(response);
    });
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
    return begun(await this.call('begin', { options: transactionOptions(options) }, { deadlineMs }));
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
  executeBatch(statements, options = {}) {
    let request;
    try {
      request = batchRequest(statements, options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.sendBatch(request, options);
  }

  /** Sends an ExecuteBatchRequest made by batchRequest(); resolves to executeBatch()'s results. */
  async sendBatch(request, { transactionId = '', deadlineMs } = {}) {
    const response = await this.inTransaction(transactionId, () => this.callEncoded('ExecuteBatch', request, { deadlineMs }, batchResponse));
    let results;
    let commitToken;
    if (response.lean) {
      [results, commitToken] = response.lean;
      if (response.lean[2]) for (const r of results) r.replayed = true;
    } else {
      results = (response.results || []).map((r) => ({ ...result(r), replayed: Boolean(response.replayed) }));
      commitToken = response.commitToken || '';
    }
    // The committing batch's commit token ('' inside a transaction or without replicas).
    Object.defineProperty(results, 'commitToken', { value: commitToken, enumerable: false });
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
    // The next batch is encoded while the gateway runs the one before.
    const runAll = async (inTransaction, batchOptions) => {
      const opts = { transactionId: inTransaction, deadlineMs, combineInserts: true, ...batchOptions };
      const encode = (start) => batchRequest(statements.slice(start, start + maxBatchStatements), opts);
      let next = encode(0);
      for (let start = 0; start < statements.length; start += maxBatchStatements) {
        const sent = this.sendBatch(next, opts);
        let unencodable = null;
        try {
          next = start + maxBatchStatements < statements.length ? encode(start + maxBatchStatements) : null;
        } catch (error) {
          unencodable = error; // thrown once the batch sent has its answer, as without the overlap
        }
        try {
          results = results.concat(await sent);
        } catch (error) {
          if (typeof error.statementIndex === 'number') error.statementIndex += start;
          throw error;
        }
        if (unencodable) throw unencodable;
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
    return transactionStream(this, transactionOptions(options), { deadlineMs });
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
   * Each run is one Transaction stream (`stream: true`, the default):
   * tx.execute() is a message of it, so the transaction costs one HTTP/2
   * stream, not one per call; tx.stream(), tx.executeBatch() and an
   * execute() with commit, readConsistency or requestId are unary calls with
   * tx.id, sent once the stream's earlier messages are answered. `deadlineMs`
   * (else the client's) bounds each call, as with unary calls: a message
   * unanswered for that long cancels the stream, which rolls the transaction
   * back. `stream: false` runs Begin, unary calls with the id, and Commit.
   * Every run's commit carries one request id (`requestId`, or a random UUID
   * per transaction() call), so a commit whose answer was lost (UNKNOWN,
   * UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: the gateway or its database
   * connection failed during COMMIT) is rerun too: if it did commit, the
   * gateway rolls the rerun back and answers the recorded commit, so the
   * work is applied once.
   */
  async transaction(work, {
    retries = 24, backoffMs = 10, maxBackoffMs = 1000, isolation, readOnly, idleTimeoutMs, options, onRetry, deadlineMs,
    requestId = randomUUID(), stream = true,
  } = {}) {
    const beginOptions = options || { isolation, readOnly, idleTimeoutMs };
    for (let attempt = 0; ; attempt++) {
      let run;
      try {
        run = stream
          ? await streamTransaction(this, transactionOptions(beginOptions), { deadlineMs, attempt })
          : await this.unaryTransaction(beginOptions, { deadlineMs, attempt });
      } catch (error) {
        const retry = retryableCause(error);
        if (!retry || attempt >= retries) throw error;
        if (onRetry) await onRetry(retry, attempt + 1);
        await sleep(retryDelay(attempt, backoffMs, maxBackoffMs));
        continue;
      }
      let committing = false;
      try {
        const value = await work(run.tx);
        committing = true;
        await run.commit(requestId);
        return value;
      } catch (error) {
        await run.rollback().catch(() => {});
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

  /** One run of transaction() with `{ stream: false }`: Begin, unary calls with the id, Commit. */
  async unaryTransaction(beginOptions, { deadlineMs, attempt }) {
    const id = await this.begin(beginOptions, { deadlineMs });
    return {
      tx: {
        id,
        attempt,
        execute: (sql, params = [], opts = {}) => this.execute(sql, params, { deadlineMs, ...opts, transactionId: id, begin: undefined }),
        stream: (sql, params = [], opts = {}) => this.stream(sql, params, { deadlineMs, ...opts, transactionId: id }),
        executeBatch: (statements, opts = {}) => this.executeBatch(statements, { deadlineMs, ...opts, transactionId: id }),
      },
      commit: (requestId) => this.commit(id, { deadlineMs, requestId }),
      rollback: () => this.rollback(id),
    };
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
