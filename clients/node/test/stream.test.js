'use strict';
// The Transaction stream, read consistency and commit tokens, against a real
// gateway with its own private MariaDB ($SQLGATE_BIN).
const test = require('node:test');
const assert = require('node:assert');
const { SqlgateError, grpc } = require('..');
const { startGateway } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway();
  client = gateway.client;
  await client.execute('CREATE TABLE kv (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
});

test.after(async () => {
  await gateway.stop();
});

const count = async () => Number((await client.execute('SELECT COUNT(*) FROM kv')).rows[0][0]);

test('a Transaction stream answers each request in order and commits', async () => {
  const tx = client.transactionStream();
  const { transactionId } = await tx.begun;
  assert.ok(transactionId.length >= 32);
  const inserted = await tx.execute('INSERT INTO kv VALUES (?, ?)', [1, 10]);
  assert.strictEqual(inserted.rowsAffected, 1n);
  const read = await tx.execute('SELECT v FROM kv WHERE k = ?', [1]);
  assert.strictEqual(Number(read.rows[0][0]), 10);
  assert.strictEqual(await count(), 0, 'not visible before commit');
  const token = await tx.commit();
  assert.strictEqual(typeof token, 'string');
  assert.strictEqual(await count(), 1);
});

test('a statement error comes back in-band and the transaction goes on', async () => {
  const tx = client.transactionStream();
  await tx.begun;
  await tx.execute('INSERT INTO kv VALUES (2, 20)');
  await assert.rejects(tx.execute('INSERT INTO kv VALUES (2, 21)'), (error) => {
    assert.ok(error instanceof SqlgateError);
    assert.strictEqual(error.code, grpc.status.ALREADY_EXISTS);
    assert.strictEqual(error.errno, 1062);
    assert.strictEqual(error.reason, 'MYSQL_ERROR');
    return true;
  });
  await tx.execute('INSERT INTO kv VALUES (3, 30)');
  await tx.commit();
  const rows = (await client.execute('SELECT k FROM kv WHERE k IN (2, 3) ORDER BY k')).rows.map((r) => Number(r[0]));
  assert.deepStrictEqual(rows, [2, 3]);
});

test('rollback and cancel undo the stream\'s work', async () => {
  const rolled = client.transactionStream();
  await rolled.begun;
  await rolled.execute('INSERT INTO kv VALUES (4, 40)');
  assert.strictEqual(await rolled.rollback(), true);
  const cancelled = client.transactionStream();
  await cancelled.begun;
  await cancelled.execute('INSERT INTO kv VALUES (5, 50)');
  cancelled.cancel();
  // The row lock is freed at once: the same key can be inserted now.
  await client.execute('INSERT INTO kv VALUES (5, 51)', [], { deadlineMs: 5000 });
  const rows = (await client.execute('SELECT k, v FROM kv WHERE k IN (4, 5)')).rows.map((r) => r.map(Number));
  assert.deepStrictEqual(rows, [[5, 51]]);
});

test('read consistency options reach the gateway and refuse writes', async () => {
  // Without replicas every read is served by the primary.
  const staleOk = await client.execute('SELECT v FROM kv WHERE k = 1', [], { readConsistency: { maxStalenessMs: 5000 } });
  assert.strictEqual(Number(staleOk.rows[0][0]), 10);
  const strong = await client.execute('SELECT v FROM kv WHERE k = 1', [], { readConsistency: { strong: true } });
  assert.strictEqual(Number(strong.rows[0][0]), 10);
  await assert.rejects(
    client.execute('DELETE FROM kv', [], { readConsistency: { maxStalenessMs: 5000 } }),
    (error) => error.code === grpc.status.INVALID_ARGUMENT,
  );
  await assert.rejects(client.execute('SELECT 1', [], { readConsistency: { nonsense: 1 } }), TypeError);
  const write = await client.execute('INSERT INTO kv VALUES (6, 60)');
  assert.strictEqual(write.commitToken, '', 'no replicas, no token');
});
