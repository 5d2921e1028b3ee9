'use strict';
// What the gateway answers, as the client returns it: values as JavaScript
// values (64-bit integers as BigInt, DECIMAL and temporal values as their
// exact text), columns and counts.

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

/** An ExecuteResponse (or a batch's StatementResult) as the client returns it. */
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

/** A BeginResponse as {transactionId, idleTimeoutMs, maxLifetimeMs}. */
function begun(response) {
  return { transactionId: response.transactionId, idleTimeoutMs: durationMs(response.idleTimeout), maxLifetimeMs: durationMs(response.maxLifetime) };
}

/**
 * A varint of `buf` at `pos` as [BigInt, next position]: uint64 (and int64
 * as its two's complement bits, which the batch counts never are).
 */
function readVarint(buf, pos) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) { // exact in a number up to 2^49
    const byte = buf[pos++];
    if (byte === undefined) throw new RangeError('truncated varint');
    value += (byte & 127) * scale;
    if (byte < 128) return [BigInt(value), pos];
    scale *= 128;
  }
  let big = BigInt(value);
  for (let shift = 49n; shift < 70n; shift += 7n) {
    const byte = buf[pos++];
    if (byte === undefined) throw new RangeError('truncated varint');
    big += BigInt(byte & 127) << shift;
    if (byte < 128) return [BigInt.asUintN(64, big), pos];
  }
  throw new RangeError('varint longer than 10 bytes');
}

/** A length-delimited field's [start, end] after its tag at `pos`. */
function span(buf, pos) {
  const [length, start] = readVarint(buf, pos);
  const end = start + Number(length);
  if (end > buf.length) throw new RangeError('truncated message');
  return [start, end];
}

/**
 * The ExecuteResponse (`full`) or StatementResult between `pos` and `end` as
 * result() returns it, when it has no columns or rows (the answer of an
 * INSERT, UPDATE, DELETE); else null.
 */
function leanResult(buf, pos, end, full) {
  const r = {
    columns: [], rows: [], rowsAffected: 0n, lastInsertId: 0n, warningCount: 0, truncated: false, transactionId: '', commitToken: '', replayed: false,
  };
  while (pos < end) {
    const tag = buf[pos++];
    let v;
    if (tag === 0x18) [r.rowsAffected, pos] = readVarint(buf, pos);
    else if (tag === 0x20) [r.lastInsertId, pos] = readVarint(buf, pos);
    else if (tag === 0x28) { [v, pos] = readVarint(buf, pos); r.warningCount = Number(BigInt.asUintN(32, v)); } else if (full && (tag === 0x30 || tag === 0x48)) {
      [v, pos] = readVarint(buf, pos);
      r[tag === 0x30 ? 'truncated' : 'replayed'] = v !== 0n;
    } else if (full && (tag === 0x3a || tag === 0x42)) {
      const [start, stop] = span(buf, pos);
      r[tag === 0x3a ? 'transactionId' : 'commitToken'] = buf.toString('utf8', start, stop);
      pos = stop;
    } else {
      return null; // columns, rows, or a field this reader does not know
    }
  }
  return pos === end ? r : null;
}

/**
 * An ExecuteBatchResponse as [results, commitToken, replayed], read straight
 * from its bytes when no result has columns or rows (the batches of
 * executeMany: one result per row, all counts), else null: protobufjs then
 * decodes it as every other answer. 5000 results through protobufjs cost more
 * client CPU than encoding the request did (a Long and its decimal text per
 * count); the values are the same (test/encode.test.js compares them).
 */
function leanBatchResponse(buf) {
  const results = [];
  let commitToken = '';
  let replayed = false;
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos++];
    if (tag === 0x0a) { // results
      const [start, end] = span(buf, pos);
      const r = leanResult(buf, start, end, false);
      if (!r) return null;
      results.push(r);
      pos = end;
    } else if (tag === 0x12) { // commit_token
      const [start, end] = span(buf, pos);
      commitToken = buf.toString('utf8', start, end);
      pos = end;
    } else if (tag === 0x18) { // replayed
      let flag;
      [flag, pos] = readVarint(buf, pos);
      replayed = flag !== 0n;
    } else {
      return null;
    }
  }
  return [results, commitToken, replayed];
}

/**
 * A TransactionResponse that is a statement's result without columns or
 * rows, read straight from its bytes: { statement: { outcome: 'result',
 * converted } } with `converted` as result() returns it; else null
 * (protobufjs decodes it).
 */
function leanStatementResponse(buf) {
  if (buf[0] !== 0x12) return null; // statement
  const [start, end] = span(buf, 1);
  if (end !== buf.length || buf[start] !== 0x0a) return null; // StatementOutcome.result
  const [from, to] = span(buf, start + 1);
  if (to !== end) return null;
  const converted = leanResult(buf, from, to, true);
  return converted && { statement: { outcome: 'result', converted } };
}

module.exports = { fromValue, result, begun, leanResult, leanBatchResponse, leanStatementResponse };
