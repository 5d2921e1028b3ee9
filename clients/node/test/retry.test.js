'use strict';
// transaction(fn)'s retry policy against a gateway with one transaction slot:
// a Begin refused for want of capacity (RESOURCE_EXHAUSTED /
// TOO_MANY_TRANSACTIONS) is retried after a back-off, from the same budget;
// the budget is a limit.
const test = require('node:test');
const assert = require('node:assert');
const { SqlgateError, status } = require('..');
const { startGateway } = require('./gateway');

let gateway;
let client;

test.before(async () => {
  gateway = await startGateway({ args: ['--max-transactions', '1', '--acquire-timeout', '300ms'] });
  client = gateway.client;
});

test.after(async () => {
  await gateway.stop();
});

test('a Begin refused TOO_MANY_TRANSACTIONS is retried once the slot is free; with no retries left it is thrown', async () => {
  const holder = await client.begin();
  const seen = [];
  const value = await client.transaction(async (tx) => (await tx.execute('SELECT 42')).rows[0][0], {
    onRetry: async (error, attempt) => {
      seen.push([error.code, error.reason, attempt]);
      if (attempt === 1) await client.rollback(holder); // the slot frees up
    },
  });
  assert.strictEqual(value, 42n);
  assert.deepStrictEqual(seen, [[status.RESOURCE_EXHAUSTED, 'TOO_MANY_TRANSACTIONS', 1]]);

  const again = await client.begin();
  try {
    let runs = 0;
    await assert.rejects(client.transaction(async () => { runs++; }, { retries: 2, backoffMs: 1 }),
      (error) => error instanceof SqlgateError && error.reason === 'TOO_MANY_TRANSACTIONS');
    assert.strictEqual(runs, 0);
  } finally {
    await client.rollback(again);
  }
});
