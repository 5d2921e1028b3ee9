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

/**
 * An ExecuteBatchResponse as [results, commitToken, replayed], read straight
 * from its bytes when no result has columns or rows (the batches of
 * executeMany: one result per row, all counts), else null: protobufjs then
 * decodes it as every other answer. 5000 results through protobufjs cost more
 * client CPU than encoding the request did (a Long and its decimal text per
 * count); the values are the same (test/bulk.test.js compares them).
 */
function leanBatchResponse(buf) {
  const results = [];
  let commitToken = '';
  let replayed = false;
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos++];
    if (tag === 0x0a) { // results
      let length;
      [length, pos] = readVarint(buf, pos);
      const end = pos + Number(length);
      let rowsAffected = 0n;
      let lastInsertId = 0n;
      let warningCount = 0;
      while (pos < end) {
        const field = buf[pos++];
        if (field === 0x18) [rowsAffected, pos] = readVarint(buf, pos);
        else if (field === 0x20) [lastInsertId, pos] = readVarint(buf, pos);
        else if (field === 0x28) { let w; [w, pos] = readVarint(buf, pos); warningCount = Number(BigInt.asUintN(32, w)); } else return null; // columns, rows, or unknown
      }
      if (pos !== end) return null;
      results.push({
        columns: [], rows: [], rowsAffected, lastInsertId, warningCount, truncated: false, transactionId: '', commitToken: '', replayed: false,
      });
    } else if (tag === 0x12) { // commit_token
      let length;
      [length, pos] = readVarint(buf, pos);
      commitToken = buf.toString('utf8', pos, pos + Number(length));
      pos += Number(length);
    } else if (tag === 0x18) { // replayed
      let flag;
      [flag, pos] = readVarint(buf, pos);
      replayed = flag !== 0n;
    } else {
      return null;
    }
  }
  if (pos !== buf.length) return null;
  return [results, commitToken, replayed];
}

module.exports = { fromValue, result, begun, leanBatchResponse };
