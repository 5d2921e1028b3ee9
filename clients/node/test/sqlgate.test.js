'use strict';
// Runs against a real gateway with its own private MariaDB: the gateway
// binary is $SQLGATE_BIN (default ../../target/debug/sqlgate).
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Client, Decimal, grpc } = require('..');

const BIN = process.env.SQLGATE_BIN || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'sqlgate');

let gateway;
let client;
let dataDir;

test.before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlgate-node-'));
  gateway = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dataDir, 'mysql'), '--log-format', 'json'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const address = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: gateway.stderr });
    lines.on('line', (line) => {
      if (line.includes('listening for gRPC')) resolve(JSON.parse(line).address);
    });
    gateway.on('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
  });
  client = new Client(address);
  // Ready once a statement goes through (the private database may still be starting).
  for (let i = 0; ; i++) {
    try { await client.execute('SELECT 1'); break; } catch (error) {
      if (i > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await client.execute('CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(12,2) NOT NULL) ENGINE=InnoDB');
  await client.execute('INSERT INTO accounts VALUES (1, 100.00), (2, 100.00)');
});

test.after(async () => {
  client.close();
  const exited = new Promise((resolve) => gateway.on('exit', resolve));
  gateway.kill('SIGTERM');
  assert.strictEqual(await exited, 0);
  fs.rmSync(dataDir, { recursive: true, force: true });
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
    return true;
  });
});
