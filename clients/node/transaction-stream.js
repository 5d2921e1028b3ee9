'use strict';
// The Transaction stream: one transaction as one bidirectional gRPC stream,
// one message per request and one answer per message, in order. It backs
// both Client.transactionStream() (the stream as such) and
// Client.transaction() (a transaction whose calls are the stream's
// messages: one HTTP/2 stream for the whole transaction instead of one per
// call, which is what a call costs the client most; BENCHMARKS.md).
const grpc = require('@grpc/grpc-js');
const { SqlgateError, statusError, wrapError } = require('./errors');
const { encodeTransactionStatement } = require('./encode');
const { result, begun, leanStatementResponse } = require('./results');

/** The DEADLINE_EXCEEDED of the client's own timer for one message of a stream. */
function deadlineError(ms, what) {
  const outcome = what === 'commit'
    ? 'the COMMIT runs to its end if the gateway had read it: its outcome is unknown'
    : 'the gateway rolls its transaction back';
  return new SqlgateError({
    code: grpc.status.DEADLINE_EXCEEDED,
    details: `Deadline exceeded: no answer to the ${what} within ${ms} ms; the Transaction stream was cancelled (${outcome})`,
    metadata: new grpc.Metadata(),
  });
}

/**
 * One open Transaction stream: send(request) resolves to the answer of that
 * request (requests are encoded TransactionRequest bytes, or objects for
 * protobufjs), or rejects with what ended the stream. With
 * `messageDeadlineMs`, an answer that takes longer cancels the stream (the
 * gateway rolls the transaction back at once) and fails DEADLINE_EXCEEDED:
 * the deadline of each call, as unary calls have theirs, where the stream's
 * own deadline (`deadlineMs`) bounds the whole transaction.
 */
class StreamCall {
  constructor(client, { deadlineMs, messageDeadlineMs = 0, onFailure = () => {} }) {
    const def = client.service.Transaction;
    const serialize = (request) => (Buffer.isBuffer(request) ? request : def.requestSerialize(request));
    // A statement's counts read straight from the bytes (results.js), anything else by protobufjs.
    const deserialize = (bytes) => leanStatementResponse(bytes) || def.responseDeserialize(bytes);
    this.call = client.stub.makeBidiStreamRequest(def.path, serialize, deserialize, client.metadata(), client.callOptions(deadlineMs));
    this.messageDeadlineMs = messageDeadlineMs;
    this.onFailure = onFailure;
    this.pending = []; // {resolve, reject, timer}, in the order sent
    this.failure = null;
    this.finished = false; // committed or rolled back: the stream's end is no failure
    this.drained = null; // resolves when nothing is pending
    this.call.on('data', (message) => {
      const waiter = this.pending.shift();
      if (!waiter) return;
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(message);
      if (this.pending.length === 0 && this.drained) { this.drained.resolve(); this.drained = null; }
    });
    this.call.on('error', (error) => this.fail(wrapError(error)));
    this.call.on('end', () => this.fail(new Error('the Transaction stream ended')));
  }

  fail(error) {
    if (!this.failure) {
      this.failure = error;
      if (!this.finished) this.onFailure(error);
    }
    while (this.pending.length) {
      const waiter = this.pending.shift();
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(this.failure);
    }
    if (this.drained) { this.drained.resolve(); this.drained = null; }
  }

  /** Sends `request`; resolves to its answer. `what` names it in a deadline error. */
  send(request, what, ms = this.messageDeadlineMs) {
    return new Promise((resolve, reject) => {
      if (this.failure) { reject(this.failure); return; }
      const waiter = { resolve, reject, timer: null };
      if (ms) {
        waiter.timer = setTimeout(() => { this.fail(deadlineError(ms, what)); this.call.cancel(); }, ms);
      }
      this.pending.push(waiter);
      this.call.write(request);
    });
  }

  /** Resolves once every request sent has its answer (or the stream failed). */
  idle() {
    if (this.pending.length === 0) return Promise.resolve();
    if (!this.drained) {
      let resolve;
      const promise = new Promise((r) => { resolve = r; });
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }

  /** Begins the transaction: resolves to {transactionId, idleTimeoutMs, maxLifetimeMs}. */
  async begin(options) {
    return begun((await this.send({ begin: options }, 'begin')).begun);
  }

  /** Runs a statement: its result, or its in-band SqlgateError (the transaction stays open). */
  statement(sql, params, maxRows, ms) {
    let request;
    try {
      request = encodeTransactionStatement(sql, params, maxRows);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.send(request, 'statement', ms).then(statementResult);
  }

  /** Commits: resolves to the CommitResponse ({commitToken, replayed}). */
  async commit(requestId) {
    const message = await this.send({ commit: requestId ? { requestId } : {} }, 'commit');
    this.finished = true;
    this.call.end();
    return message.committed;
  }

  /** Rolls back: true when the transaction was open. After a failure nothing is left to roll back: false. */
  async rollback() {
    if (this.failure) return false;
    const message = await this.send({ rollback: {} }, 'rollback');
    this.finished = true;
    this.call.end();
    return Boolean(message.rolledBack.rolledBack);
  }

  cancel() { this.call.cancel(); }
}

/** A statement's answer: its result, or its in-band error thrown. */
function statementResult(message) {
  const outcome = message.statement;
  if (outcome.outcome === 'error') throw new SqlgateError(statusError(outcome.error));
  return outcome.converted || result(outcome.result);
}

/** Client.transactionStream(): see index.d.ts. */
function transactionStream(client, options, { deadlineMs } = {}) {
  const stream = new StreamCall(client, { deadlineMs });
  const started = stream.begin(options);
  started.catch(() => {});
  const handle = {
    begun: started,
    replayed: false,
    execute: (sql, params = [], { maxRows = 0 } = {}) => stream.statement(sql, params, maxRows),
    // requestId: see Client.commitResult; `replayed` is then set on the stream.
    commit: async ({ requestId } = {}) => {
      const committed = await stream.commit(requestId);
      handle.replayed = Boolean(committed.replayed);
      return committed.commitToken || '';
    },
    // After a failure the stream is over and the gateway has rolled the
    // transaction back (or a statement committed it): nothing to roll back.
    rollback: () => stream.rollback(),
    cancel: () => stream.cancel(),
  };
  return handle;
}

/** Options of tx.execute() that a stream's statement carries; any other sends the call as a unary Execute. */
const STREAM_OPTIONS = new Set(['maxRows', 'deadlineMs', 'transactionId', 'begin']);

/**
 * Begins one run of Client.transaction() on a Transaction stream; resolves
 * to {tx, commit(requestId), rollback()} once begun (a Begin's failure
 * rejects, as Begin's would). `tx.execute` is a message of the stream;
 * `tx.stream`, `tx.executeBatch` and an execute with options the stream has
 * no field for (commit, readConsistency, requestId) are unary calls with the
 * transaction's id, sent once every message before them is answered. Each
 * call has `deadlineMs` (else the client's) as its own deadline. A failure
 * that ends the stream ends the transaction: the client refuses its later
 * calls with that error (transactionEnded), as for any ended transaction.
 */
async function streamTransaction(client, beginOptions, { deadlineMs, attempt }) {
  const callMs = deadlineMs === undefined ? client.deadlineMs : deadlineMs;
  let id = '';
  const stream = new StreamCall(client, {
    deadlineMs: 0, // no deadline for the stream as a whole: each message has one
    messageDeadlineMs: callMs || 0,
    onFailure: (error) => { if (id) client.noteEnded(id, error); },
  });
  try {
    id = (await stream.begin(beginOptions)).transactionId;
  } catch (error) {
    stream.cancel();
    throw error;
  }
  const unary = async (run) => {
    await stream.idle();
    return run();
  };
  const tx = {
    id,
    attempt,
    execute: (sql, params = [], opts = {}) => {
      for (const key of Object.keys(opts)) {
        if (!STREAM_OPTIONS.has(key) && opts[key] !== undefined && opts[key] !== false) {
          return unary(() => client.execute(sql, params, { deadlineMs, ...opts, transactionId: id, begin: undefined }));
        }
      }
      // As client.inTransaction(), without an async function's promises per call.
      try {
        client.checkNotEnded(id);
      } catch (error) {
        return Promise.reject(error);
      }
      const ms = opts.deadlineMs === undefined ? stream.messageDeadlineMs : opts.deadlineMs;
      return stream.statement(sql, params, opts.maxRows || 0, ms).catch((error) => { throw client.noteFailure(id, error); });
    },
    stream: (sql, params = [], opts = {}) => (async function* unaryStream() {
      await stream.idle();
      yield* client.stream(sql, params, { deadlineMs, ...opts, transactionId: id });
    }()),
    executeBatch: (statements, opts = {}) => unary(() => client.executeBatch(statements, { deadlineMs, ...opts, transactionId: id })),
  };
  return {
    tx,
    commit: (requestId) => client.inTransaction(id, () => stream.commit(requestId)),
    rollback: async () => {
      const ended = client.endedTransactions.has(id);
      client.endedTransactions.delete(id);
      if (ended || stream.failure) { stream.cancel(); return false; }
      try {
        return await stream.rollback();
      } catch (error) {
        stream.cancel();
        throw error;
      }
    },
  };
}

module.exports = { transactionStream, streamTransaction };
