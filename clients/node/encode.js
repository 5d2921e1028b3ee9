'use strict';
// A lean protobuf encoder for the requests that carry statements:
// ExecuteRequest, ExecuteBatchRequest (executeMany, executeBatch) and a
// Transaction stream's statement. It writes the wire format straight from
// JavaScript values, with no sqlgate.v1.Value objects, no protobufjs
// fromObject and no second pass: protobufjs spent 23-36 ms of client CPU on
// the 5000 statements of one executeMany, this 1.7 ms (BENCHMARKS.md). How a
// value is typed is written once, in `valueKind` (toValue, exported by
// index.js, uses it too; Writer.value writes the common kinds without it,
// typed the same). The bytes are those protobufjs writes for the same values
// (test/encode.test.js compares them), except that a statement's max_rows 0
// is left out (proto3's default).

/** Exact decimal text, sent as decimal_value. */
class Decimal {
  constructor(text) { this.text = String(text); }
  toString() { return this.text; }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const TWO_32 = 2 ** 32;

// Value's fields (proto/sqlgate/v1/sqlgate.proto), as the kinds valueKind returns.
const NULL = 1; const INT64 = 2; const UINT64 = 3; const DOUBLE = 4; const BOOL = 6;
const STRING = 7; const BYTES = 8; const DECIMAL = 9;

/**
 * The Value field a whole number given as its exact decimal digits (a BigInt,
 * or a number's String() without an exponent) is sent as: int64 or uint64
 * when it fits, else exact DECIMAL text. Never wrapped.
 */
function integerKind(n) {
  if (n >= INT64_MIN && n <= INT64_MAX) return INT64;
  if (n > INT64_MAX && n <= UINT64_MAX) return UINT64;
  return DECIMAL;
}

/**
 * How a JavaScript value is sent: [field, payload] where payload is what
 * that field carries (a safe integer number or a BigInt for the integers,
 * decimal text, a Buffer...). Typed as MariaDB types the literal mysql2's
 * query() writes (`String(n)`): a whole number without an exponent
 * (|n| < 1e21) is an integer (int64, uint64, or exact DECIMAL text beyond 64
 * bits), a whole number written with an exponent (1e21, -1e300,
 * Number.MAX_VALUE) and a fraction are a DOUBLE (as mysql2's execute() sends
 * them). NaN and ±Infinity have no SQL value.
 */
function valueKind(v) {
  if (v === null || v === undefined) return [NULL, 0];
  switch (typeof v) {
    case 'string': return [STRING, v];
    case 'number': {
      if (!Number.isFinite(v)) throw new TypeError(`cannot send ${v} as a SQL value: MariaDB and MySQL have no NaN or Infinity`);
      if (!Number.isInteger(v)) return [DOUBLE, v];
      // Exact as a number: no BigInt and no decimal text.
      if (Number.isSafeInteger(v)) return [INT64, v];
      const text = String(v);
      if (/e/i.test(text)) return [DOUBLE, v];
      const n = BigInt(text);
      const kind = integerKind(n);
      return [kind, kind === DECIMAL ? text : n];
    }
    case 'bigint': {
      const kind = integerKind(v);
      return [kind, kind === DECIMAL ? v.toString() : v];
    }
    case 'boolean': return [BOOL, v];
    default:
  }
  if (Buffer.isBuffer(v)) return [BYTES, v];
  if (v instanceof Uint8Array) return [BYTES, Buffer.from(v.buffer, v.byteOffset, v.byteLength)];
  if (v instanceof Decimal) return [DECIMAL, v.text];
  throw new TypeError(`cannot send a ${typeof v} as a SQL value; use null, bigint, number, boolean, string, Buffer or Decimal`);
}

const FIELD_NAMES = {
  [NULL]: 'nullValue', [INT64]: 'int64Value', [UINT64]: 'uint64Value', [DOUBLE]: 'doubleValue', [BOOL]: 'boolValue',
  [STRING]: 'stringValue', [BYTES]: 'bytesValue', [DECIMAL]: 'decimalValue',
};

/** A JavaScript value as a sqlgate Value object (proto-loader's shape: integers as decimal text or safe numbers). */
function toValue(v) {
  const [kind, payload] = valueKind(v);
  if (kind === NULL) return { nullValue: 'NULL_VALUE' };
  return { [FIELD_NAMES[kind]]: typeof payload === 'bigint' ? payload.toString() : payload };
}

/** Bytes a varint of `n` (0 <= n < 2^32) takes. */
function varintSize(n) {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A growing buffer the wire format is written into. */
class Writer {
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  /** Room for `n` more bytes. */
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** A varint of 0 <= n < 2^32. */
  varint(n) {
    this.ensure(5);
    const { buf } = this;
    while (n > 127) {
      buf[this.pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    buf[this.pos++] = n;
  }

  /** A 64-bit varint of (hi, lo), two unsigned 32-bit halves. */
  varint64(lo, hi) {
    this.ensure(10);
    const { buf } = this;
    while (hi) {
      buf[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      buf[this.pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    buf[this.pos++] = lo;
  }

  /** An integer as a 64-bit varint: a safe integer number, or a BigInt within int64/uint64 (two's complement). */
  integer(n) {
    if (typeof n === 'number') {
      if (n >= 0 && n < TWO_32) return this.varint(n);
      const hi = Math.floor(n / TWO_32);
      return this.varint64((n - hi * TWO_32) >>> 0, hi >>> 0);
    }
    const bits = BigInt.asUintN(64, n);
    return this.varint64(Number(bits & 0xffffffffn), Number(bits >> 32n));
  }

  /** Starts a length-delimited part: one byte is kept for its length. */
  fork() {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the part started at `start`, moving it on when its length takes more than one byte. */
  join(start) {
    const length = this.pos - start - 1;
    if (length < 128) {
      this.buf[start] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.ensure(extra);
    this.buf.copy(this.buf, start + 1 + extra, start + 1, this.pos);
    const end = this.pos + extra;
    this.pos = start;
    this.varint(length);
    this.pos = end;
  }

  /** A string field (tag, length, UTF-8). */
  string(tag, s) {
    this.varint(tag);
    if (s.length < 43) { // at most 3 bytes a UTF-16 unit: the length fits one byte
      this.ensure(1 + 3 * s.length);
      const start = this.pos++;
      this.pos += this.buf.utf8Write(s, this.pos);
      this.buf[start] = this.pos - start - 1;
      return;
    }
    const length = Buffer.byteLength(s);
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.utf8Write(s, this.pos, length);
  }

  /** Bytes already encoded (a field's whole encoding). */
  raw(bytes) {
    this.ensure(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }

  /** A bytes field. */
  bytes(tag, b) {
    this.varint(tag);
    this.varint(b.length);
    this.raw(b);
  }

  /** A DOUBLE value's field. */
  double(d) {
    this.varint((DOUBLE << 3) | 1);
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(d, this.pos);
  }

  /** One sqlgate.v1.Value of the JavaScript value `v`, as field `tag` of its message. */
  value(tag, v) {
    this.varint(tag);
    const start = this.fork();
    // The common kinds first, typed as valueKind types them, with nothing allocated.
    if (typeof v === 'string') {
      this.string((STRING << 3) | 2, v);
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      this.varint(INT64 << 3);
      this.integer(v);
    } else if (typeof v === 'number' && Number.isFinite(v) && !Number.isInteger(v)) {
      this.double(v);
    } else if (v === null || v === undefined) {
      this.varint(NULL << 3);
      this.varint(0);
    } else {
      this.kind(valueKind(v));
    }
    this.join(start);
  }

  /** A Value's field as valueKind gives it. */
  kind([kind, payload]) {
    switch (kind) {
      case NULL: this.varint(NULL << 3); this.varint(0); break;
      case INT64: case UINT64: this.varint(kind << 3); this.integer(payload); break;
      case DOUBLE: this.double(payload); break;
      case BOOL: this.varint(BOOL << 3); this.varint(payload ? 1 : 0); break;
      case BYTES: this.bytes((BYTES << 3) | 2, payload); break;
      default: this.string((kind << 3) | 2, payload); // STRING, DECIMAL
    }
  }

  /** The written bytes (a copy: the writer's buffer is larger). */
  finish() {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** `sql` as field 1 of a Statement / TransactionStatement: its tag, length and UTF-8. */
function sqlField(sql) {
  const w = new Writer(16 + 3 * sql.length);
  w.string((1 << 3) | 2, sql);
  return w.buf.subarray(0, w.pos);
}

/** Field 2 (params) of a Statement / TransactionStatement: one Value each. */
function writeParams(w, params) {
  for (let i = 0; i < params.length; i++) w.value((2 << 3) | 2, params[i]);
}

/**
 * Field 1 (statements) of an ExecuteBatchRequest: `statements` as [{sql,
 * params}] or [sql, params] pairs, params JavaScript values. A run of
 * statements with the same SQL text (executeMany) encodes it once. The
 * request's other fields are appended by the caller (protobufjs's encoding
 * of them: an encoded message followed by another is the two merged).
 */
function encodeStatements(statements) {
  const w = new Writer(64 + statements.length * 64);
  let lastSql = null;
  let sql = null;
  for (const s of statements) {
    const pair = Array.isArray(s);
    const text = pair ? s[0] : s.sql;
    const params = (pair ? s[1] : s.params) || [];
    if (text !== lastSql) {
      lastSql = text;
      // As protobufjs's fromObject: no field for a missing sql, else its text.
      sql = text === null || text === undefined ? Buffer.alloc(0) : sqlField(String(text));
    }
    w.varint((1 << 3) | 2);
    const start = w.fork();
    w.raw(sql);
    writeParams(w, params);
    w.join(start);
  }
  return w.finish();
}

/** A uint64 field (max_rows) from a number, BigInt or decimal text, when it is not 0. */
function writeUint64(w, tag, n) {
  if (!n || n === '0') return;
  w.varint(tag);
  w.integer(typeof n === 'bigint' ? n : Math.trunc(Number(n)));
}

/**
 * An ExecuteRequest of (sql, params) and the scalar fields transactionId,
 * maxRows, commit and requestId; `begin` and `readConsistency` are appended
 * by the caller (protobufjs's encoding of them), when set.
 */
function encodeExecute(sql, params, { transactionId = '', maxRows = 0, commit = false, requestId = '' } = {}) {
  const text = sql === null || sql === undefined ? '' : String(sql); // as protobufjs's fromObject
  const w = new Writer(32 + 3 * text.length + 16 * params.length);
  if (text) w.string((1 << 3) | 2, text);
  writeParams(w, params);
  if (transactionId) w.string((3 << 3) | 2, transactionId);
  writeUint64(w, 5 << 3, maxRows);
  if (commit) { w.varint(6 << 3); w.varint(1); }
  if (requestId) w.string((8 << 3) | 2, requestId);
  return w.finish();
}

/** A TransactionRequest whose `statement` is (sql, params, maxRows). */
function encodeTransactionStatement(sql, params, maxRows = 0) {
  const w = new Writer(32 + 3 * sql.length + 16 * params.length);
  w.varint((2 << 3) | 2);
  const start = w.fork();
  w.string((1 << 3) | 2, sql);
  writeParams(w, params);
  writeUint64(w, 3 << 3, maxRows);
  w.join(start);
  return w.finish();
}

module.exports = { Decimal, toValue, valueKind, encodeStatements, encodeExecute, encodeTransactionStatement, Writer };
