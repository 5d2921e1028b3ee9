'use strict';
// Runs against a real gateway with its own private MariaDB: the gateway
// binary is $SQLGATE_BIN (default ../../target/debug/sqlgate).
const test = require('node:test');
const assert = require('node:assert');
const { Client, Decimal, SqlgateError, grpc } = require('..');
const { startGateway } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway();
  client = gateway.client;
  await client.execute('CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL) ENGINE=InnoDB');
  await client.execute('INSERT INTO accounts VALUES (1, 100.00), (2, 100.00)');
});

test.after(async () => {
  await gateway.stop();
});

test('values keep their exact form', async () => {
  const result = await client.execute('SELECT ?, ?, ?, CAST(? AS DECIMAL(30,10)), CAST(? AS BINARY), NULL', [
    18446744073709551615n, -9223372036854775808n, 'héllo 😀', new Decimal('12345678901234567890.0123456789'), Buffer.from([0, 1, 2]),
  ]);
  const [big, small, text, decimal, bytes, nothing] = result.rows[0];
  assert.strictEqual(big, 18446744073709551615n);
  assert.strictEqual(small, -9223372036854775808n);
  assert.strictEqual(text, 'héllo 😀');
  assert.strictEqual(decimal, '12345678901234567890.0123456789');
  assert.deepStrictEqual([...bytes], [0, 1, 2]);
  assert.strictEqual(nothing, null);
});

test('a transaction commits, and a conflicting pair retries on ABORTED', async () => {
  const transfer = (from, to, amount) => client.transaction(async (tx) => {
    await tx.execute('SELECT balance FROM accounts WHERE id = ? FOR UPDATE', [from]);
    await new Promise((resolve) => setTimeout(resolve, 20)); // let the other one lock its row
    await tx.execute('UPDATE accounts SET balance = balance - ? WHERE id = ?', [new Decimal(amount), from]);
    await tx.execute('UPDATE accounts SET balance = balance + ? WHERE id = ?', [new Decimal(amount), to]);
  });
  // Opposite orders: InnoDB may pick a deadlock victim, which the helper retries.
  await Promise.all([transfer(1, 2, '10.00'), transfer(2, 1, '5.00')]);
  const { rows } = await client.execute('SELECT balance FROM accounts ORDER BY id');
  assert.deepStrictEqual(rows.map((row) => row[0]), ['95.00', '105.00']);
});

test('a large result streams row by row', async () => {
  let count = 0n;
  let sum = 0n;
  for await (const [seq] of client.stream('SELECT seq FROM seq_1_to_200000')) {
    count += 1n;
    sum += seq;
  }
  assert.strictEqual(count, 200000n);
  assert.strictEqual(sum, 200000n * 200001n / 2n);
});

test('errors are gRPC statuses with sqlgate reasons', async () => {
  await assert.rejects(client.execute('INSERT INTO accounts VALUES (1, 0)'), (error) => {
    assert.strictEqual(error.code, grpc.status.ALREADY_EXISTS);
    assert.match(error.details, /Duplicate entry/);
    assert.match(error.details, /MySQL error 1062/);
    assert.ok(error instanceof SqlgateError);
    assert.strictEqual(error.reason, 'MYSQL_ERROR');
    assert.strictEqual(error.domain, 'sqlgate');
    assert.strictEqual(error.errno, 1062);
    assert.strictEqual(error.sqlstate, '23000');
    return true;
  });
});

test('ExecuteBatch commits all or nothing, and names the failing statement', async () => {
  await client.execute('CREATE TABLE batch_items (id INT PRIMARY KEY)');
  const results = await client.executeBatch([
    ['INSERT INTO batch_items VALUES (?)', [1]],
    { sql: 'INSERT INTO batch_items VALUES (?), (?)', params: [2, 3] },
  ]);
  assert.deepStrictEqual(results.map((r) => r.rowsAffected), [1n, 2n]);
  await assert.rejects(client.executeBatch([
    ['INSERT INTO batch_items VALUES (?)', [4]],
    ['INSERT INTO batch_items VALUES (?)', [1]],
  ]), (error) => {
    assert.ok(error instanceof SqlgateError);
    assert.strictEqual(error.code, grpc.status.ALREADY_EXISTS);
    assert.strictEqual(error.statementIndex, 1);
    assert.strictEqual(error.errno, 1062);
    return true;
  });
  const { rows, columns } = await client.execute('SELECT id FROM batch_items ORDER BY id');
  assert.deepStrictEqual(rows, [[1n], [2n], [3n]]);
  assert.strictEqual(columns[0].name, 'id');
  assert.strictEqual(columns[0].type, 'INT');
});

test('an inline begin returns the transaction id; commit: true commits with the statement', async () => {
  const begun = await client.execute('INSERT INTO batch_items VALUES (10)', [], { begin: true });
  // <32 random hex>-<8 hex epoch>-<owner address>: the id names its instance's life.
  assert.match(begun.transactionId, /^[0-9a-f]{32}-[0-9a-f]{8}-\S+:\d+$/);
  await client.execute('INSERT INTO batch_items VALUES (11)', [], { transactionId: begun.transactionId, commit: true });
  await client.commit(begun.transactionId); // a repeated Commit of a committed transaction answers OK
  await assert.rejects(client.execute('SELECT 1', [], { transactionId: begun.transactionId }),
    (error) => error.code === grpc.status.NOT_FOUND && error.reason === 'TRANSACTION_NOT_FOUND');
  const { rows } = await client.execute('SELECT COUNT(*) FROM batch_items WHERE id IN (10, 11)');
  assert.strictEqual(rows[0][0], 2n);
  // rollback answers whether it rolled an open transaction back
  const id = await client.begin({ isolation: 'READ COMMITTED', readOnly: true });
  assert.strictEqual(await client.rollback(id), true);
  assert.strictEqual(await client.rollback(id), false);
});

test('a read-only transaction refuses writes, and a non-ABORTED error is not retried', async () => {
  let attempts = 0;
  await assert.rejects(client.transaction(async (tx) => {
    attempts++;
    await tx.execute('INSERT INTO batch_items VALUES (20)');
  }, { readOnly: true }), (error) => error instanceof SqlgateError && error.code !== grpc.status.ABORTED && error.errno === 1792);
  assert.strictEqual(attempts, 1);
  const { rows } = await client.execute('SELECT COUNT(*) FROM batch_items WHERE id = 20');
  assert.strictEqual(rows[0][0], 0n);
});

test('the old constructor form (target, credentials) still works', async () => {
  const old = new Client(gateway.address, grpc.credentials.createInsecure());
  try {
    assert.deepStrictEqual((await old.execute('SELECT 41 + 1')).rows, [[42n]]);
  } finally { old.close(); }
});
