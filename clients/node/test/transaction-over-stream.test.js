'use strict';
// Client.transaction() on one Transaction stream (the default) against a
// real gateway: its calls are the stream's messages (no unary call for
// begin, execute or commit), the unary calls that remain (tx.executeBatch,
// tx.stream, an execute with options the stream has no field for) run in
// the same transaction, in order; statement errors, rowcounts, rollback on
// error and `stream: false` are those of the unary path.
const test = require('node:test');
const assert = require('node:assert');
const { SqlgateError, status } = require('..');
const { startGateway } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway();
  client = gateway.client;
  await client.execute('CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) UNIQUE, qty INT) ENGINE=InnoDB');
});

test.after(async () => {
  await gateway.stop();
});

/** Runs `fn` counting the unary calls the client makes meanwhile, by method. */
async function countingUnary(fn) {
  const calls = [];
  const count = (name, original) => function counted(method, ...rest) { calls.push(method); return original.call(this, method, ...rest); };
  client.call = count('call', client.call);
  client.callEncoded = count('callEncoded', client.callEncoded);
  const { executeStream } = client.stub;
  client.stub.executeStream = function counted(...args) { calls.push('executeStream'); return executeStream.apply(this, args); };
  try {
    return { value: await fn(), calls };
  } finally {
    delete client.call;
    delete client.callEncoded;
    delete client.stub.executeStream;
  }
}

const names = async () => (await client.execute('SELECT name FROM items ORDER BY id')).rows.map((r) => r[0]);

test('transaction() sends begin, statements and commit on one stream: no unary call; same results as unary', async () => {
  const run = (stream, prefix) => client.transaction(async (tx) => {
    assert.ok(tx.id.length >= 32, 'tx.id is the transaction id');
    const a = await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', [`${prefix}a`, 1]);
    const b = await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?), (?, ?)', [`${prefix}b`, 2, `${prefix}c`, 3]);
    const updated = await tx.execute('UPDATE items SET qty = qty + 1 WHERE name LIKE ?', [`${prefix}%`]);
    const read = await tx.execute('SELECT name, qty FROM items WHERE name LIKE ? ORDER BY id', [`${prefix}%`], { maxRows: 2 });
    return { a, b, updated, read };
  }, { stream });
  const over = await countingUnary(() => run(true, 's-'));
  assert.deepStrictEqual(over.calls, [], 'no unary call');
  const unary = await countingUnary(() => run(false, 'u-'));
  assert.deepStrictEqual(unary.calls, ['begin', 'Execute', 'Execute', 'Execute', 'Execute', 'commit']);
  const shape = ({ a, b, updated, read }) => ({
    a: [a.rowsAffected, a.lastInsertId > 0n, a.columns.length],
    b: [b.rowsAffected, b.lastInsertId === a.lastInsertId + 1n],
    updated: updated.rowsAffected,
    read: [read.rows.map((r) => r[1]), read.truncated, read.columns.map((c) => c.name)],
  });
  assert.deepStrictEqual(shape(over.value), shape(unary.value));
  assert.deepStrictEqual(shape(over.value), { a: [1n, true, 0], b: [2n, true], updated: 3n, read: [[2n, 3n], true, ['name', 'qty']] });
  assert.deepStrictEqual(await names(), ['s-a', 's-b', 's-c', 'u-a', 'u-b', 'u-c']);
});

test('tx.executeBatch and tx.stream are unary calls in the stream\'s transaction, in order', async () => {
  const { calls } = await countingUnary(() => client.transaction(async (tx) => {
    await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['m-1', 1]);
    const batch = await tx.executeBatch([['INSERT INTO items (name, qty) VALUES (?, ?)', ['m-2', 2]]]);
    assert.strictEqual(batch[0].rowsAffected, 1n);
    const seen = [];
    for await (const row of tx.stream('SELECT name FROM items WHERE name LIKE ? ORDER BY id', ['m-%'])) seen.push(row[0]);
    assert.deepStrictEqual(seen, ['m-1', 'm-2'], 'the unary stream sees the stream\'s uncommitted rows');
    await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['m-3', 3]);
    const count = await tx.execute('SELECT COUNT(*) FROM items WHERE name LIKE ?', ['m-%']);
    assert.deepStrictEqual(count.rows, [[3n]], 'the stream sees the unary calls\' rows');
    assert.deepStrictEqual(await names().then((all) => all.filter((n) => n.startsWith('m-'))), [], 'nothing committed yet');
  }));
  assert.deepStrictEqual(calls, ['ExecuteBatch', 'executeStream', 'Execute'], 'the last: names(), from outside the transaction');
  assert.deepStrictEqual((await names()).filter((n) => n.startsWith('m-')), ['m-1', 'm-2', 'm-3']);
});

test('a statement error comes back as it does unary (the transaction goes on); a thrown error rolls everything back', async () => {
  const errors = [];
  for (const stream of [true, false]) {
    await client.transaction(async (tx) => {
      await assert.rejects(tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['s-a', 0]), (error) => {
        assert.ok(error instanceof SqlgateError);
        errors.push([error.code, error.errno, error.reason, error.transactionEnded]);
        return true;
      });
      await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', [`e-${stream}`, 0]);
    }, { stream });
  }
  assert.deepStrictEqual(errors[0], [status.ALREADY_EXISTS, 1062, 'MYSQL_ERROR', undefined]);
  assert.deepStrictEqual(errors[1], errors[0]);
  await assert.rejects(client.transaction(async (tx) => {
    await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['r-1', 0]);
    throw new Error('changed my mind');
  }), /changed my mind/);
  const all = await names();
  assert.ok(all.includes('e-true') && all.includes('e-false'));
  assert.ok(!all.includes('r-1'), 'rolled back');
});

test('an error that ends the stream ends the transaction: later calls are refused with it, nothing commits, no rerun', async () => {
  let attempts = 0;
  await assert.rejects(client.transaction(async (tx) => {
    attempts++;
    await tx.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['x-1', 0]);
    // A call cut by its deadline ends the transaction (the stream is cancelled: rolled back at once).
    const ending = await tx.execute('SELECT SLEEP(3)', [], { deadlineMs: 200 }).catch((error) => error);
    assert.ok(ending instanceof SqlgateError && ending.code === status.DEADLINE_EXCEEDED, `cut: ${ending}`);
    await assert.rejects(tx.execute('SELECT 1'), (error) => error.transactionEnded === true && error.cause === ending);
    await assert.rejects(client.execute('SELECT 1', [], { transactionId: tx.id }), (error) => error.transactionEnded === true);
  }), (error) => error.transactionEnded === true);
  assert.strictEqual(attempts, 1, 'DEADLINE_EXCEEDED is not retried');
  // Rolled back already: the unique name is free at once.
  await client.execute('INSERT INTO items (name, qty) VALUES (?, ?)', ['x-1', 1], { deadlineMs: 2000 });
  assert.deepStrictEqual((await client.execute('SELECT qty FROM items WHERE name = ?', ['x-1'])).rows, [[1n]]);
});
