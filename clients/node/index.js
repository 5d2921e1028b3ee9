'use strict';
// A small client for sqlgate over @grpc/grpc-js, loading the proto at run
// time with @grpc/proto-loader (no generated code).
//
// 64-bit integers come back as BigInt (JavaScript numbers lose precision
// above 2^53), DECIMAL as its exact text, temporal values as their text.
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');
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

/** A JavaScript value as a sqlgate Value. */
function toValue(v) {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'bigint') return v < 0n || v <= 9223372036854775807n ? { int64Value: v.toString() } : { uint64Value: v.toString() };
  if (typeof v === 'number') return Number.isInteger(v) ? { int64Value: String(v) } : { doubleValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Buffer.isBuffer(v)) return { bytesValue: v };
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

/** Exact decimal text, sent as decimal_value. */
class Decimal {
  constructor(text) { this.text = String(text); }
}

/** A gRPC error with sqlgate's ErrorInfo reason and metadata, when present. */
function describeError(error) {
  const details = error.metadata && error.metadata.get('grpc-status-details-bin')[0];
  // google.rpc.Status{details: [Any{ErrorInfo}]}: the reason and metadata are
  // plain strings inside; a full decoder needs googleapis protos, so report the
  // code and message, which carry the same information in words.
  return { code: error.code, message: error.details, hasDetails: Boolean(details) };
}

class Client {
  constructor(target = 'localhost:50051', credentials = grpc.credentials.createInsecure()) {
    this.stub = new sqlgate.v1.Database(target, credentials);
  }

  call(method, request) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  /** Runs one statement; returns {columns, rows (arrays of JS values), rowsAffected, ...}. */
  async execute(sql, params = [], { transactionId = '', maxRows = 0 } = {}) {
    const response = await this.call('execute', { sql, params: params.map(toValue), transactionId, maxRows });
    return {
      columns: response.columns || [],
      rows: (response.rows || []).map((row) => (row.values || []).map(fromValue)),
      rowsAffected: BigInt(response.rowsAffected || 0),
      lastInsertId: BigInt(response.lastInsertId || 0),
      truncated: Boolean(response.truncated),
    };
  }

  /** Streams a result: an async iterator of rows (arrays of JS values). */
  async *stream(sql, params = [], { transactionId = '' } = {}) {
    const call = this.stub.executeStream({ sql, params: params.map(toValue), transactionId });
    for await (const message of call) {
      if (message.part === 'rows') {
        for (const row of message.rows.rows || []) yield (row.values || []).map(fromValue);
      }
    }
  }

  async begin(options = {}) {
    return (await this.call('begin', { options })).transactionId;
  }

  async commit(transactionId) { await this.call('commit', { transactionId }); }

  async rollback(transactionId) { await this.call('rollback', { transactionId }); }

  /**
   * Runs `work(tx)` in a transaction and commits it; on ABORTED (deadlock,
   * expired or aborted transaction) runs the whole of it again, up to
   * `retries` times. `tx` has execute(sql, params) and stream(sql, params).
   */
  async transaction(work, { retries = 10, options = {} } = {}) {
    for (let attempt = 0; ; attempt++) {
      const id = await this.begin(options);
      const tx = {
        id,
        execute: (sql, params) => this.execute(sql, params, { transactionId: id }),
        stream: (sql, params) => this.stream(sql, params, { transactionId: id }),
      };
      try {
        const result = await work(tx);
        await this.commit(id);
        return result;
      } catch (error) {
        await this.rollback(id).catch(() => {});
        if (error.code !== grpc.status.ABORTED || attempt >= retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  close() { this.stub.close(); }
}

module.exports = { Client, Decimal, toValue, fromValue, describeError, grpc };
