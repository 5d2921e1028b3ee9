'use strict';
// The lean encoder (encode.js) writes the same bytes protobufjs writes (via
// @grpc/proto-loader's serializer, from toValue's objects) for a value of
// every kind the client sends, at every size where a length prefix grows.
// No gateway needed.
const test = require('node:test');
const assert = require('node:assert');
const { Client, Decimal, toValue } = require('..');
const { encodeStatements, encodeTransactionStatement, encodeExecute } = require('../encode');
const { result, leanBatchResponse, leanStatementResponse } = require('../results');

const client = new Client('127.0.0.1:1'); // never connects: only its method definitions are used
const { ExecuteBatch, Transaction } = client.service;
test.after(() => client.close());

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const VALUES = [
  null, undefined,
  0, 1, -1, 127, 128, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, -(2 ** 32) - 1, MAX_SAFE, -MAX_SAFE, -0,
  2 ** 53, -(2 ** 60), 2 ** 63, 2 ** 64, 2 ** 69, 1e21, -1e300, Number.MAX_VALUE, 1.5, -0.1, 5e-324,
  0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 63n) - 1n, 10n ** 40n,
  true, false,
  '', 'ascii', 'ünïcødé 😀 中文', 'x'.repeat(42), 'é'.repeat(42), 'y'.repeat(43), 'z'.repeat(200), 'ü'.repeat(9000),
  Buffer.alloc(0), Buffer.from([0, 1, 2, 255]), Buffer.alloc(300, 7), new Uint8Array([9, 8, 7, 6]).subarray(1, 3),
  new Decimal('-12345.678900'), new Decimal('0'), new Decimal('1e3'),
];

test('a statement of every value kind: the same bytes as protobufjs', () => {
  const statements = [
    ['INSERT INTO t VALUES (?)', VALUES],
    ...VALUES.map((v) => ['SELECT ?', [v]]),
    { sql: 'SELECT 1' },
    { sql: 'SELECT ?, ?', params: [1n, 'two'] },
    ['INSERT INTO wide VALUES (?)', Array.from({ length: 3000 }, (_, i) => (i % 2 ? `v${i}` : i))], // a statement over 16 KiB
  ];
  const rest = { transactionId: 'tx-1', combineInserts: true, requestId: 'req', options: { isolation: 'ISOLATION_LEVEL_SERIALIZABLE' } };
  const reference = ExecuteBatch.requestSerialize({
    ...rest,
    statements: statements.map((s) => (Array.isArray(s) ? { sql: s[0], params: s[1].map(toValue) } : { sql: s.sql, params: (s.params || []).map(toValue) })),
  });
  const lean = Buffer.concat([encodeStatements(statements), ExecuteBatch.requestSerialize(rest)]);
  assert.deepStrictEqual(ExecuteBatch.requestDeserialize(lean), ExecuteBatch.requestDeserialize(reference));
  assert.ok(lean.equals(reference), 'byte for byte');
});

test('executeMany\'s shape (one SQL text, many rows) and a Transaction statement: the same bytes', () => {
  const rows = Array.from({ length: 500 }, (_, i) => [`item ${i}`, i, i % 7 ? null : 2n ** 64n - 1n, i / 3]);
  const sql = 'INSERT INTO bench (name, qty, big, ratio) VALUES (?, ?, ?, ?)';
  const reference = ExecuteBatch.requestSerialize({ statements: rows.map((r) => ({ sql, params: r.map(toValue) })) });
  assert.ok(encodeStatements(rows.map((r) => [sql, r])).equals(reference));

  for (const maxRows of [5, 2 ** 40]) {
    const expected = Transaction.requestSerialize({ statement: { sql: 'SELECT ?', params: VALUES.map(toValue), maxRows } });
    assert.ok(encodeTransactionStatement('SELECT ?', VALUES, maxRows).equals(expected), `maxRows ${maxRows}`);
  }
  // max_rows 0 is left out (proto3's default): decoded, the same request.
  const plain = encodeTransactionStatement('SELECT 1', [], 0);
  assert.deepStrictEqual(Transaction.requestDeserialize(plain), Transaction.requestDeserialize(Transaction.requestSerialize({ statement: { sql: 'SELECT 1', params: [] } })));
});

test('values with no SQL meaning are refused as toValue refuses them', () => {
  for (const bad of [NaN, Infinity, -Infinity, {}, [1], new Date(0), Symbol('s')]) {
    assert.throws(() => toValue(bad), TypeError);
    assert.throws(() => encodeStatements([['SELECT ?', [bad]]]), TypeError);
  }
});

test('an ExecuteBatchResponse of counts read straight from its bytes: what protobufjs reads', () => {
  const big = ['0', '1', '127', '128', '16384', String(2 ** 49), String(2 ** 53 + 1), '9223372036854775808', '18446744073709551615'];
  const results = big.map((n, i) => ({ rowsAffected: n, lastInsertId: big[big.length - 1 - i], warningCount: i * 1000 }));
  for (const extra of [{}, { commitToken: 'gtid 0-1-42', replayed: true }]) {
    const bytes = ExecuteBatch.responseSerialize({ results, ...extra });
    const decoded = ExecuteBatch.responseDeserialize(bytes);
    const expected = (decoded.results || []).map(result);
    const [lean, token, replayed] = leanBatchResponse(bytes);
    assert.deepStrictEqual(lean, expected);
    assert.strictEqual(lean[8].rowsAffected, 2n ** 64n - 1n);
    assert.strictEqual(token, decoded.commitToken || '');
    assert.strictEqual(replayed, Boolean(decoded.replayed));
  }
  // A result with rows or columns is left to protobufjs.
  const withRows = ExecuteBatch.responseSerialize({ results: [{ rowsAffected: 1 }, { rows: [{ values: [{ int64Value: 1 }] }] }] });
  assert.strictEqual(leanBatchResponse(withRows), null);
  const withColumns = ExecuteBatch.responseSerialize({ results: [{ columns: [{ name: 'a' }] }] });
  assert.strictEqual(leanBatchResponse(withColumns), null);
});

test('a Transaction stream\'s statement result of counts read straight from its bytes: what protobufjs reads', () => {
  const { Transaction: T } = client.service;
  const answers = [
    { rowsAffected: '1', lastInsertId: '18446744073709551615', warningCount: 3, truncated: true, transactionId: 'tx-é', commitToken: 'gtid', replayed: true },
    { rowsAffected: '0' },
    {},
  ];
  for (const answer of answers) {
    const bytes = T.responseSerialize({ statement: { result: answer } });
    const { converted } = leanStatementResponse(bytes).statement;
    assert.deepStrictEqual(converted, result(T.responseDeserialize(bytes).statement.result));
  }
  for (const other of [
    { statement: { result: { columns: [{ name: 'a' }] } } },
    { statement: { result: { rows: [{ values: [{ nullValue: 'NULL_VALUE' }] }] } } },
    { statement: { error: { code: 6, message: 'duplicate' } } },
    { begun: { transactionId: 'x' } },
    { committed: { commitToken: '' } },
  ]) assert.strictEqual(leanStatementResponse(T.responseSerialize(other)), null, JSON.stringify(other));
});

test('an ExecuteRequest: the same bytes as protobufjs, with and without its scalar fields', () => {
  const { Execute } = client.service;
  const fields = [{}, { transactionId: 'tx-9', maxRows: 2 ** 40, commit: true, requestId: 'req-1' }, { maxRows: 7n }];
  for (const extra of fields) {
    const reference = Execute.requestSerialize({ sql: 'SELECT ?', params: VALUES.map(toValue), ...extra });
    assert.ok(encodeExecute('SELECT ?', VALUES, extra).equals(reference), JSON.stringify(extra, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
  }
  // The message-valued fields appended (decoded: the same request).
  const more = { begin: { isolation: 'ISOLATION_LEVEL_SERIALIZABLE' }, readConsistency: { strong: true } };
  const appended = Buffer.concat([encodeExecute('SELECT 1', [], { transactionId: 't' }), Execute.requestSerialize(more)]);
  assert.deepStrictEqual(Execute.requestDeserialize(appended), Execute.requestDeserialize(Execute.requestSerialize({ sql: 'SELECT 1', params: [], transactionId: 't', ...more })));
});
