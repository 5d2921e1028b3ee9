'use strict';
// Deadlines, and transaction(fn) rerunning on real ABORTED statuses: an
// expired transaction (gateway started with --tx-idle-timeout 1s) and a
// deadlock made certain by letting both transactions lock their first row
// before either asks for the second.
const test = require('node:test');
const assert = require('node:assert');
const { Client, SqlgateError, status } = require('..');
const { startGateway, waitFor } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway({ args: ['--tx-idle-timeout', '1s'] });
  client = gateway.client;
  await client.execute('CREATE TABLE counters (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB');
  await client.execute('INSERT INTO counters VALUES (1, 0), (2, 0), (3, 0)');
});

test.after(async () => {
  await gateway.stop();
});

/**
 * Waits until row `id` of counters is not locked: polls from outside the
 * transaction holding it (which must stay idle to expire) with NOWAIT.
 */
function rowUnlocked(id) {
  return waitFor(async () => {
    try {
      await client.execute('SELECT n FROM counters WHERE id = ? FOR UPDATE NOWAIT', [id]);
      return true;
    } catch (error) {
      if (error.errno !== 1205) throw error; // 1205: the row is still locked
      return false;
    }
  }, 15000, `row ${id} to be unlocked (the idle transaction to expire)`);
}

// An autocommit statement cut by its deadline: DEADLINE_EXCEEDED once the
// gateway learns that its KILL stopped it, UNKNOWN / COMMIT_OUTCOME_UNKNOWN
// when that answer does not come back within the deadline's margin (README,
// "Cancel and deadlines"): either way an error of sqlgate's, never a result.
function cutByDeadline(error) {
  assert.ok(error instanceof SqlgateError, String(error));
  if (error.grpcCode === status.UNKNOWN) assert.strictEqual(error.reason, 'COMMIT_OUTCOME_UNKNOWN');
  else assert.strictEqual(error.grpcCode, status.DEADLINE_EXCEEDED, String(error));
  return true;
}

test('deadlineMs: the client default fails a slow call DEADLINE_EXCEEDED; a per-call value overrides it', async () => {
  const hasty = new Client(gateway.address, { deadlineMs: 200 });
  try {
    const started = Date.now();
    await assert.rejects(hasty.execute('SELECT SLEEP(2)'), cutByDeadline);
    assert.ok(Date.now() - started < 1500, 'the deadline cut the call short');
    assert.deepStrictEqual((await hasty.execute('SELECT SLEEP(0.5)', [], { deadlineMs: 5000 })).rows, [[0n]]);
    await assert.rejects(gateway.client.execute('SELECT SLEEP(2)', [], { deadlineMs: 200 }), cutByDeadline);
    // streams take deadlines too
    await assert.rejects((async () => { for await (const row of hasty.stream('SELECT SLEEP(2)')) assert.fail(`got ${row}`); })(),
      cutByDeadline);
  } finally { hasty.close(); }
});

test('transaction(fn) reruns the whole function when its transaction expired (ABORTED / TRANSACTION_EXPIRED)', async () => {
  const retries = [];
  let attempts = 0;
  const value = await client.transaction(async (tx) => {
    attempts++;
    await tx.execute('UPDATE counters SET n = n + 1 WHERE id = 1'); // holds the row lock
    if (attempts === 1) {
      // Idle past the 1 s timeout: poll, from outside the transaction, until
      // the gateway has rolled it back and its row lock is free.
      await rowUnlocked(1);
    }
    await tx.execute('UPDATE counters SET n = n + 10 WHERE id = 1');
    return attempts;
  }, { onRetry: (error, attempt) => retries.push({ code: error.code, reason: error.reason, attempt }) });
  assert.strictEqual(value, 2);
  assert.deepStrictEqual(retries, [{ code: status.ABORTED, reason: 'TRANSACTION_EXPIRED', attempt: 1 }]);
  // The first attempt's update was rolled back with it: 11, not 12.
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id = 1')).rows, [[11n]]);
});

test('transaction(fn) reruns the deadlock victim (ABORTED, errno 1213); both transfers land once', async () => {
  let locked = 0;
  let bothLocked;
  const barrier = new Promise((resolve) => { bothLocked = resolve; });
  const retries = [];
  const transfer = (from, to) => client.transaction(async (tx) => {
    await tx.execute('UPDATE counters SET n = n - 1 WHERE id = ?', [from]);
    if (tx.attempt === 0) {
      if (++locked === 2) bothLocked();
      await barrier; // each now holds the row the other wants next
    }
    await tx.execute('UPDATE counters SET n = n + 1 WHERE id = ?', [to]);
  }, { onRetry: (error) => retries.push({ code: error.code, reason: error.reason, errno: error.errno, sqlstate: error.sqlstate }) });
  await Promise.all([transfer(2, 3), transfer(3, 2)]);
  assert.deepStrictEqual(retries, [{ code: status.ABORTED, reason: 'MYSQL_ERROR', errno: 1213, sqlstate: '40001' }]);
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id IN (2, 3) ORDER BY id')).rows, [[0n], [0n]]);
});

test('transaction(fn) gives up after `retries` reruns and throws the last ABORTED error', async () => {
  let attempts = 0;
  await assert.rejects(client.transaction(async (tx) => {
    attempts++;
    await tx.execute('UPDATE counters SET n = n + 1 WHERE id = 3');
    await rowUnlocked(3); // every attempt expires
    await tx.execute('SELECT 1');
  }, { retries: 1 }), (error) => {
    assert.ok(error instanceof SqlgateError);
    assert.strictEqual(error.code, status.ABORTED);
    assert.strictEqual(error.reason, 'TRANSACTION_EXPIRED');
    return true;
  });
  assert.strictEqual(attempts, 2);
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id = 3')).rows, [[0n]]);
});

/** Two plain transactions deadlocked on counters rows `a` and `b`; resolves to { victim, winner, error }. */
async function deadlock(a, b) {
  const t1 = await client.begin();
  const t2 = await client.begin();
  await client.execute('UPDATE counters SET n = n + 1 WHERE id = ?', [a], { transactionId: t1 });
  await client.execute('UPDATE counters SET n = n + 1 WHERE id = ?', [b], { transactionId: t2 });
  // Each now asks for the other's row: whichever order the waits form in,
  // InnoDB sees the cycle and rolls one of them back.
  const first = client.execute('UPDATE counters SET n = n + 1 WHERE id = ?', [b], { transactionId: t1 });
  const second = client.execute('UPDATE counters SET n = n + 1 WHERE id = ?', [a], { transactionId: t2 });
  const [r1, r2] = await Promise.allSettled([first, second]);
  assert.ok((r1.status === 'rejected') !== (r2.status === 'rejected'), 'exactly one deadlock victim');
  return r1.status === 'rejected' ? { victim: t1, winner: t2, error: r1.reason } : { victim: t2, winner: t1, error: r2.reason };
}

test('a transaction reported as ended (deadlock) raises on every later call until it is rolled back', async () => {
  const { victim, winner, error } = await deadlock(1, 2);
  assert.strictEqual(error.code, status.ABORTED);
  assert.strictEqual(error.errno, 1213);
  const ended = (e) => {
    assert.ok(e instanceof SqlgateError);
    assert.strictEqual(e.transactionEnded, true, 'refused by the client, without asking the gateway');
    assert.strictEqual(e.code, status.ABORTED);
    assert.strictEqual(e.errno, 1213);
    assert.strictEqual(e.cause, error);
    assert.match(e.message, /ended earlier.*roll it back/);
    return true;
  };
  await assert.rejects(client.execute('UPDATE counters SET n = n + 100 WHERE id = 3', [], { transactionId: victim }), ended);
  await assert.rejects(client.executeBatch([['UPDATE counters SET n = n + 100 WHERE id = 3']], { transactionId: victim }), ended);
  await assert.rejects((async () => { for await (const row of client.stream('SELECT 1', [], { transactionId: victim })) assert.fail(`got ${row}`); })(), ended);
  await assert.rejects(client.commit(victim), ended);
  await assert.rejects(client.commit(victim), ended, 'still refused: only a rollback ends it');
  assert.strictEqual(await client.rollback(victim), false, 'nothing left to roll back; no error');
  // Forgotten after the rollback: the gateway answers for the id now.
  await assert.rejects(client.execute('SELECT 1', [], { transactionId: victim }), (e) => e instanceof SqlgateError && !e.transactionEnded);
  await client.commit(winner);
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id = 3')).rows.length, 1);
});

test('a call of a transaction cut by its deadline ends it for the client: later calls and commit raise, nothing commits', async () => {
  const before = (await client.execute('SELECT n FROM counters WHERE id = 2')).rows;
  const id = await client.begin();
  await client.execute('UPDATE counters SET n = n + 1 WHERE id = 2', [], { transactionId: id });
  await assert.rejects(client.execute('SELECT SLEEP(3)', [], { transactionId: id, deadlineMs: 200 }), (e) => e.code === status.DEADLINE_EXCEEDED);
  await assert.rejects(client.execute('UPDATE counters SET n = n + 1 WHERE id = 2', [], { transactionId: id }),
    (e) => e.transactionEnded === true && e.code === status.DEADLINE_EXCEEDED);
  await assert.rejects(client.commit(id), (e) => e.transactionEnded === true);
  await client.rollback(id);
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id = 2')).rows, before);
});

test('transaction(fn) whose fn swallows an ending error never commits the rest as if it were the same transaction', async () => {
  const before = (await client.execute('SELECT n FROM counters WHERE id = 1')).rows;
  let attempts = 0;
  await assert.rejects(client.transaction(async (tx) => {
    attempts++;
    await tx.execute('UPDATE counters SET n = n + 1 WHERE id = 1');
    try { await tx.execute('SELECT SLEEP(3)', [], { deadlineMs: 200 }); } catch { /* swallowed */ }
    await tx.execute('UPDATE counters SET n = n + 1 WHERE id = 1').catch(() => {}); // refused, swallowed too
  }), (e) => e.transactionEnded === true && e.code === status.DEADLINE_EXCEEDED); // from commit
  assert.strictEqual(attempts, 1, 'DEADLINE_EXCEEDED is not retried');
  assert.deepStrictEqual((await client.execute('SELECT n FROM counters WHERE id = 1')).rows, before);
});

test('transaction(fn) holds a hot spot: 100 concurrent transfers over 4 accounts, none fails', { timeout: 60000 }, async () => {
  await client.execute('CREATE TABLE hot (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
  await client.execute('INSERT INTO hot VALUES (0, 1000), (1, 1000), (2, 1000), (3, 1000)');
  const expected = [1000n, 1000n, 1000n, 1000n];
  const retries = [];
  const transfers = [];
  let worst = 0;
  const started = Date.now();
  for (let i = 0; i < 100; i++) {
    const from = i % 4;
    const to = (from + 1 + (Math.floor(i / 4) % 3)) % 4;
    expected[from] -= 1n;
    expected[to] += 1n;
    transfers.push(client.transaction(async (tx) => {
      await tx.execute('UPDATE hot SET balance = balance - 1 WHERE id = ?', [from]);
      await tx.execute('UPDATE hot SET balance = balance + 1 WHERE id = ?', [to]);
    }, { onRetry: (error, attempt) => { retries.push(error.errno ?? error.reason); worst = Math.max(worst, attempt); } }));
  }
  const outcomes = await Promise.allSettled(transfers);
  const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => `${o.reason.codeName} ${o.reason.reason} ${o.reason.message}`);
  const elapsed = Date.now() - started;
  console.log(`hot spot: 100 transfers in ${elapsed} ms, ${retries.length} reruns (${[...new Set(retries)].join(', ')}; at most ${worst} for one transfer), ${failed.length} failed`);
  assert.deepStrictEqual(failed, []);
  assert.ok(retries.length > 0, 'the hot spot was hot: some transfers were rerun');
  assert.deepStrictEqual((await client.execute('SELECT balance FROM hot ORDER BY id')).rows.map((r) => r[0]), expected);
});

test('a lock wait timeout (1205) leaves the transaction open, as in MySQL: it goes on, and commit keeps the work before the error', async () => {
  await client.execute('CREATE TABLE notes (id INT PRIMARY KEY) ENGINE=InnoDB');
  const holder = await client.begin();
  await client.execute('SELECT n FROM counters WHERE id = 3 FOR UPDATE', [], { transactionId: holder });
  try {
    const id = await client.begin();
    await client.execute('INSERT INTO notes VALUES (1)', [], { transactionId: id });
    await assert.rejects(client.execute('SELECT n FROM counters WHERE id = 3 FOR UPDATE NOWAIT', [], { transactionId: id }), (e) => {
      assert.strictEqual(e.errno, 1205);
      assert.strictEqual(e.errorMetadata.transaction_open, 'true');
      assert.strictEqual(e.transactionEnded, undefined);
      return true;
    });
    await client.execute('INSERT INTO notes VALUES (2)', [], { transactionId: id });
    await client.commit(id);

    // The same inside transaction(fn), where fn handles the error itself: one run, both rows.
    let runs = 0;
    await client.transaction(async (tx) => {
      runs++;
      await tx.execute('INSERT INTO notes VALUES (3)');
      await assert.rejects(tx.execute('SELECT n FROM counters WHERE id = 3 FOR UPDATE NOWAIT'), (e) => e.errno === 1205);
      await tx.execute('INSERT INTO notes VALUES (4)');
    });
    assert.strictEqual(runs, 1);
  } finally {
    await client.rollback(holder);
  }
  assert.deepStrictEqual((await client.execute('SELECT id FROM notes ORDER BY id')).rows, [[1], [2], [3], [4]].map(([n]) => [BigInt(n)]));
});
