'use strict';
// Request ids (issue 23): a write with a requestId runs once, and
// transaction(fn) gives every run's commit one id, so a commit whose answer
// was lost is rerun safely (applied once, answered as a replay).
const test = require('node:test');
const assert = require('node:assert');
const { randomUUID } = require('node:crypto');
const { EventEmitter } = require('node:events');
const { Client, SqlgateError, status, grpc } = require('..');
const { startGateway } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway();
  client = gateway.client;
  await client.execute('CREATE TABLE rid (id INT PRIMARY KEY, n BIGINT NOT NULL)');
  await client.execute('INSERT INTO rid VALUES (1, 0), (2, 0)');
});

test.after(async () => {
  await gateway.stop();
});

test('a write with a requestId runs once; a reused id is refused', async () => {
  const requestId = randomUUID();
  const first = await client.execute('UPDATE rid SET n = n + 1 WHERE id = 1', [], { requestId });
  const again = await client.execute('UPDATE rid SET n = n + 1 WHERE id = 1', [], { requestId });
  assert.strictEqual(first.replayed, false);
  assert.strictEqual(again.replayed, true);
  assert.strictEqual(again.rowsAffected, 1n);
  const batchId = randomUUID();
  const batch = [['UPDATE rid SET n = n + 1 WHERE id = 2', []]];
  assert.strictEqual((await client.executeBatch(batch, { requestId: batchId }))[0].replayed, false);
  assert.strictEqual((await client.executeBatch(batch, { requestId: batchId }))[0].replayed, true);
  const { rows } = await client.execute('SELECT n FROM rid ORDER BY id');
  assert.deepStrictEqual(rows, [[1n], [1n]]);
  await assert.rejects(
    client.execute('UPDATE rid SET n = 5', [], { requestId }),
    (error) => error instanceof SqlgateError && error.grpcCode === status.FAILED_PRECONDITION && error.reason === 'REQUEST_ID_REUSED',
  );
});

test('transaction(fn) on unary calls reruns a commit whose answer was lost, and the work is applied once', async () => {
  const realCommit = client.commit.bind(client);
  const ids = [];
  client.commit = async (transactionId, options = {}) => {
    ids.push(options.requestId);
    const token = await realCommit(transactionId, options);
    if (ids.length === 1) {
      // Committed, but the client never hears it.
      const lost = new Error('answer lost');
      lost.code = status.UNAVAILABLE;
      lost.details = 'the gateway went away';
      lost.metadata = undefined;
      throw new SqlgateError(lost);
    }
    return token;
  };
  let runs = 0;
  try {
    await client.transaction(async (tx) => {
      runs += 1;
      await tx.execute('UPDATE rid SET n = n + 10 WHERE id = 1');
    }, { stream: false });
  } finally {
    delete client.commit;
  }
  assert.strictEqual(runs, 2);
  assert.ok(ids[0] && ids[0] === ids[1], 'both commits carried one request id');
  const { rows } = await client.execute('SELECT n FROM rid WHERE id = 1');
  assert.deepStrictEqual(rows, [[11n]]);
  // The gateway answered the rerun as a replay: the same id replays again.
  const id = await client.begin();
  await client.execute('UPDATE rid SET n = n + 10 WHERE id = 1', [], { transactionId: id });
  assert.strictEqual((await client.commitResult(id, { requestId: ids[0] })).replayed, true);
  assert.deepStrictEqual((await client.execute('SELECT n FROM rid WHERE id = 1')).rows, [[11n]]);
});

test('transaction(fn) on a Transaction stream reruns a commit whose answer was lost, and the work is applied once', async () => {
  // The first stream's `committed` answer never reaches the client: its
  // stream fails UNAVAILABLE instead, as when the gateway goes away after COMMIT.
  const lossy = new Client(gateway.address);
  const { stub } = lossy;
  const open = stub.makeBidiStreamRequest;
  let lost = 0;
  stub.makeBidiStreamRequest = (...args) => {
    const real = open.apply(stub, args);
    const seen = new EventEmitter();
    let dropped = false;
    real.on('data', (message) => {
      if (message.committed && lost++ === 0) {
        dropped = true;
        seen.emit('error', Object.assign(new Error('answer lost'), { code: status.UNAVAILABLE, details: 'the gateway went away', metadata: new grpc.Metadata() }));
      } else if (!dropped) seen.emit('data', message);
    });
    real.on('error', (error) => { if (!dropped) seen.emit('error', error); });
    real.on('end', () => { if (!dropped) seen.emit('end'); });
    return Object.assign(seen, { write: (m) => real.write(m), end: () => real.end(), cancel: () => real.cancel() });
  };
  const retried = [];
  let runs = 0;
  try {
    await lossy.transaction(async (tx) => {
      runs += 1;
      await tx.execute('UPDATE rid SET n = n + 1000 WHERE id = 1');
    }, { onRetry: (error) => retried.push(error.code) });
  } finally {
    lossy.close();
  }
  assert.strictEqual(runs, 2);
  assert.deepStrictEqual(retried, [status.UNAVAILABLE]);
  assert.deepStrictEqual((await client.execute('SELECT n FROM rid WHERE id = 1')).rows, [[1011n]], 'applied once');
});

test('a Transaction stream commit takes a requestId', async () => {
  const requestId = randomUUID();
  for (const expected of [false, true]) {
    const stream = client.transactionStream();
    await stream.begun;
    await stream.execute('UPDATE rid SET n = n + 100 WHERE id = 2');
    await stream.commit({ requestId });
    assert.strictEqual(stream.replayed, expected);
  }
  assert.deepStrictEqual((await client.execute('SELECT n FROM rid WHERE id = 2')).rows, [[101n]]);
});
