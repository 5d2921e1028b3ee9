'use strict';
// Drizzle ORM (drizzle-orm/mysql-proxy) through the sqlgate adapter, against a real gateway.
const test = require('node:test');
const assert = require('node:assert');
const { mysqlTable, int, varchar, decimal, bigint, boolean, datetime, serial } = require('drizzle-orm/mysql-core');
const { eq, and, gt, sql } = require('drizzle-orm');
const { drizzle: proxyDrizzle } = require('drizzle-orm/mysql-proxy');
const { drizzleCallback, status } = require('..');
const { drizzle } = require('../drizzle');
const { startGateway } = require('./gateway');

const accounts = mysqlTable('drizzle_accounts', {
  id: serial('id').primaryKey(),
  owner: varchar('owner', { length: 64 }).notNull(),
  balance: decimal('balance', { precision: 20, scale: 2 }).notNull(),
  visits: int('visits').notNull().default(0),
  big: bigint('big', { mode: 'bigint' }).notNull().default(0n),
  active: boolean('active').notNull().default(true),
  openedAt: datetime('opened_at', { mode: 'date', fsp: 3 }),
});

let gateway;
let db;

test.before(async () => {
  gateway = await startGateway();
  db = drizzle(gateway.client);
  await db.execute(sql`CREATE TABLE drizzle_accounts (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    owner VARCHAR(64) NOT NULL,
    balance DECIMAL(20,2) NOT NULL,
    visits INT NOT NULL DEFAULT 0,
    big BIGINT NOT NULL DEFAULT 0,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    opened_at DATETIME(3) NULL
  ) ENGINE=InnoDB`);
});

test.after(async () => {
  await gateway.stop();
});

test('insert, select with where, update, delete', async () => {
  const opened = new Date('2024-02-29T12:34:56.789Z');
  const [header] = await db.insert(accounts).values([
    { owner: 'ada', balance: '123456789012345678.90', big: 9007199254740993n, openedAt: opened },
    { owner: 'bob', balance: '5.00', active: false },
  ]);
  assert.strictEqual(header.affectedRows, 2);
  assert.strictEqual(header.insertId, 1);

  const ada = await db.select().from(accounts).where(eq(accounts.owner, 'ada'));
  assert.deepStrictEqual(ada, [{
    id: 1, owner: 'ada', balance: '123456789012345678.90', visits: 0, big: 9007199254740993n, active: true, openedAt: opened,
  }]);

  const [updated] = await db.update(accounts).set({ visits: sql`${accounts.visits} + 1` }).where(and(eq(accounts.active, false), gt(accounts.balance, '1')));
  assert.strictEqual(updated.affectedRows, 1);
  const picked = await db.select({ owner: accounts.owner, visits: accounts.visits, active: accounts.active }).from(accounts).orderBy(accounts.id);
  assert.deepStrictEqual(picked, [{ owner: 'ada', visits: 0, active: true }, { owner: 'bob', visits: 1, active: false }]);

  const [deleted] = await db.delete(accounts).where(eq(accounts.owner, 'bob'));
  assert.strictEqual(deleted.affectedRows, 1);
  assert.deepStrictEqual(await db.select({ n: sql`count(*)`.mapWith(Number) }).from(accounts), [{ n: 1 }]);
});

test('db.transaction commits; a thrown error or tx.rollback() rolls everything back', async () => {
  await db.transaction(async (tx) => {
    await tx.insert(accounts).values({ owner: 'carol', balance: '10.00' });
    await tx.update(accounts).set({ balance: '0.50' }).where(eq(accounts.owner, 'carol'));
  });
  assert.deepStrictEqual(await db.select({ balance: accounts.balance }).from(accounts).where(eq(accounts.owner, 'carol')), [{ balance: '0.50' }]);

  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(accounts).values({ owner: 'dave', balance: '1.00' });
    assert.strictEqual((await tx.select().from(accounts).where(eq(accounts.owner, 'dave'))).length, 1); // visible inside
    tx.rollback();
  }), (error) => error.constructor.name === 'TransactionRollbackError');
  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(accounts).values({ owner: 'erin', balance: '1.00' });
    await tx.insert(accounts).values({ id: 1, owner: 'duplicate', balance: '1.00' });
  }), (error) => error.cause.code === 'ER_DUP_ENTRY' && error.cause.grpcCode === status.ALREADY_EXISTS && error.cause.errno === 1062); // DrizzleQueryError wraps the error, shaped as mysql2's
  const owners = (await db.select({ owner: accounts.owner }).from(accounts).orderBy(accounts.owner)).map((r) => r.owner);
  assert.deepStrictEqual(owners, ['ada', 'carol']);
});

test('db.transaction runs in the gateway transaction: isolation, read-only access mode', async () => {
  await assert.rejects(db.transaction(async (tx) => {
    await tx.insert(accounts).values({ owner: 'frank', balance: '1.00' });
  }, { accessMode: 'read only', isolationLevel: 'read committed' }), (error) => error.cause.errno === 1792);
  assert.strictEqual((await db.select().from(accounts).where(eq(accounts.owner, 'frank'))).length, 0);
});

test('drizzleCallback works with drizzle-orm/mysql-proxy directly, and db.execute returns [rows, fields]', async () => {
  const direct = proxyDrizzle(drizzleCallback(gateway.client));
  const [rows, fields] = await direct.execute(sql`SELECT ${'x'} AS label, CAST(${'18446744073709551615'} AS UNSIGNED) AS huge, 7 AS small`);
  assert.deepStrictEqual(rows, [{ label: 'x', huge: '18446744073709551615', small: 7 }]);
  assert.deepStrictEqual(fields.map((f) => f.name), ['label', 'huge', 'small']);
  // The proxy driver alone refuses transactions: that is what drizzle(client) adds.
  await assert.rejects(direct.transaction(async () => {}), /not supported/);
});

test('db.transaction reruns the function when the gateway answers ABORTED (a deadlock), through DrizzleQueryError', async () => {
  const [{ insertId: a }] = await db.insert(accounts).values({ owner: 'left', balance: '100.00' });
  const [{ insertId: b }] = await db.insert(accounts).values({ owner: 'right', balance: '100.00' });
  let locked = 0;
  let bothLocked;
  const barrier = new Promise((resolve) => { bothLocked = resolve; });
  const retried = [];
  let attempts = 0;
  const move = (from, to) => {
    let first = true;
    return db.transaction(async (tx) => {
      attempts++;
      await tx.update(accounts).set({ balance: sql`${accounts.balance} - 1` }).where(eq(accounts.id, from));
      if (first) {
        first = false;
        if (++locked === 2) bothLocked();
        await barrier;
      }
      await tx.update(accounts).set({ balance: sql`${accounts.balance} + 1` }).where(eq(accounts.id, to));
    }, { onRetry: (error) => retried.push(error.errno) });
  };
  await Promise.all([move(a, b), move(b, a)]);
  assert.deepStrictEqual(retried, [1213]);
  assert.strictEqual(attempts, 3);
  const balances = await db.select({ balance: accounts.balance }).from(accounts).where(sql`${accounts.id} IN (${a}, ${b})`).orderBy(accounts.id);
  assert.deepStrictEqual(balances, [{ balance: '100.00' }, { balance: '100.00' }]);
});
