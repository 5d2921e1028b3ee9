'use strict';
// Drizzle through sqlgate beside drizzle-orm/mysql2 on the same MariaDB: the
// same queries on the same data must give the same results and errors, except
// for the differences README.md lists ("Drizzle beside drizzle-orm/mysql2"),
// which this test pins down: a new difference fails it, and so does one that
// went away.
const test = require('node:test');
const assert = require('node:assert');
const { isDeepStrictEqual, inspect } = require('node:util');
const mysql = require('mysql2/promise');
const { drizzle: mysql2Drizzle } = require('drizzle-orm/mysql2');
const { mysqlTable, serial, varchar, json, decimal, bigint, double, boolean, datetime, int, check } = require('drizzle-orm/mysql-core');
const { eq, sql } = require('drizzle-orm');
const { drizzle } = require('../drizzle');
const { execFileSync } = require('node:child_process');
const { startGateway, BIN } = require('./gateway');
const { startMariadb } = require('./mariadb');

const items = mysqlTable('items', {
  id: serial('id').primaryKey(),
  name: varchar('name', { length: 8 }).notNull().unique(),
  doc: json('doc'),
  amount: decimal('amount', { precision: 20, scale: 2 }),
  big: bigint('big', { mode: 'bigint' }),
  ratio: double('ratio'),
  flag: boolean('flag'),
  created: datetime('created', { mode: 'date', fsp: 3 }),
  qty: int('qty'),
}, (t) => [check('qty_small', sql`${t.qty} < 100`)]);

const DDL = `CREATE TABLE items (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, name VARCHAR(8) NOT NULL UNIQUE, doc JSON NULL,
  amount DECIMAL(20,2) NULL, big BIGINT NULL, ratio DOUBLE NULL, flag BOOLEAN NULL, created DATETIME(3) NULL,
  qty INT NULL, CONSTRAINT qty_small CHECK (qty < 100))`;
const SEED = `INSERT INTO items (name, doc, amount, big, ratio, flag, created, qty) VALUES
  ('ada', '{"a": [1, 2], "s": "x"}', 12.50, 9007199254740993, 0.1, 1, '2024-02-29 12:34:56.789', 1),
  ('bob', '"just a string"', NULL, -5, NULL, 0, NULL, 2),
  ('cy', NULL, 0.00, NULL, 1.5e300, NULL, NULL, NULL)`;

// What each case gives: its value, or the error as mysql2 users read it.
const CASES = {
  'select every column (JSON parsed, DECIMAL text, BIGINT as bigint, DATETIME as Date)': (db) => db.select().from(items).orderBy(items.id),
  'select a JSON column alone': (db) => db.select({ doc: items.doc }).from(items).where(eq(items.name, 'ada')),
  'insert: affectedRows and insertId': async (db) => {
    const [header] = await db.insert(items).values([{ name: 'dee', doc: { b: true } }, { name: 'eve' }]);
    return { affectedRows: header.affectedRows, insertId: header.insertId };
  },
  'insert and read back JSON, large and small doubles': async (db) => {
    await db.insert(items).values({ name: 'fay', doc: [null, { n: 1e21 }], ratio: 1.5e300, big: -(2n ** 63n) });
    await db.insert(items).values({ name: 'gus', ratio: -Number.MAX_VALUE, amount: '123456789012345678.99' });
    return db.select({ doc: items.doc, ratio: items.ratio, big: items.big, amount: items.amount }).from(items).where(sql`${items.name} IN ('fay', 'gus')`).orderBy(items.id);
  },
  'update: affectedRows': async (db) => (await db.update(items).set({ qty: 5 }).where(sql`${items.qty} IS NOT NULL`))[0].affectedRows,
  'update to the same value: affectedRows (rows matched)': async (db) => (await db.update(items).set({ qty: 1 }).where(eq(items.name, 'ada')))[0].affectedRows,
  'delete: affectedRows': async (db) => (await db.delete(items).where(eq(items.name, 'bob')))[0].affectedRows,
  'duplicate key (ER_DUP_ENTRY)': (db) => db.insert(items).values({ name: 'ada' }),
  'NULL into NOT NULL (ER_BAD_NULL_ERROR)': (db) => db.insert(items).values({ name: sql`NULL` }),
  'too long (ER_DATA_TOO_LONG)': (db) => db.insert(items).values({ name: 'much too long' }),
  'out of range (ER_WARN_DATA_OUT_OF_RANGE)': (db) => db.insert(items).values({ name: 'big', big: 2n ** 64n }),
  'CHECK constraint (MariaDB 4025, mysql2\'s name for it)': (db) => db.insert(items).values({ name: 'hal', qty: 500 }),
  'no such table (ER_NO_SUCH_TABLE)': (db) => db.execute(sql`SELECT * FROM no_such_table`),
  'syntax error (ER_PARSE_ERROR)': (db) => db.execute(sql.raw('SELEC 1')),
  'db.execute: SELECT returns [rows, fields], rows as objects': async (db) => (await db.execute(sql`SELECT name, qty FROM items ORDER BY id`))[0],
  'db.execute: a JSON column in raw rows': async (db) => (await db.execute(sql`SELECT doc FROM items WHERE name = 'ada'`))[0],
  'sql`JSON_OBJECT(...)` in a select': (db) => db.select({ o: sql`JSON_OBJECT('k', ${items.qty})` }).from(items).where(eq(items.name, 'ada')),
  'transaction: rollback keeps nothing, commit keeps all': async (db) => {
    await db.transaction(async (tx) => { await tx.insert(items).values({ name: 'ivy' }); tx.rollback(); }).catch((e) => e.constructor.name);
    await db.transaction(async (tx) => { await tx.insert(items).values({ name: 'jo' }); });
    return (await db.select({ name: items.name }).from(items).orderBy(items.id)).map((r) => r.name);
  },
};

// Whether this gateway reports rows matched for UPDATE, as mysql2 asks the
// server to (CLIENT_FOUND_ROWS): with --found-rows (issue 22 item 2), on by
// default where the gateway has it.
const FOUND_ROWS = execFileSync(BIN, ['serve', '--help'], { encoding: 'utf8' }).includes('--found-rows');

// The differences README.md documents; each must still differ.
const KNOWN_DIFFERENCES = [
  ...(FOUND_ROWS ? [] : ['update to the same value: affectedRows (rows matched)']),
  'db.execute: a JSON column in raw rows',
  'sql`JSON_OBJECT(...)` in a select',
];

let mariadb;
let gateway;
let connection;
let databases;

test.before(async () => {
  mariadb = await startMariadb();
  gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  // supportBigNumbers, as drizzle-orm/mysql2 sets it when it makes the pool
  // from a URL (without it mysql2 rounds BIGINTs beyond 2^53).
  connection = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true });
  await connection.query(DDL);
  databases = { mysql2: mysql2Drizzle(connection), sqlgate: drizzle(gateway.client) };
});

test.after(async () => {
  if (connection) await connection.end();
  if (gateway) await gateway.stop();
  if (mariadb) await mariadb.stop();
});

/** The error a case raised, as code written against mysql2 reads it. */
function asSeen(error) {
  const cause = error.cause || {};
  return { error: error.constructor.name, code: cause.code, errno: cause.errno, sqlState: cause.sqlState, sqlMessage: cause.sqlMessage };
}

async function outcome(db, run) {
  await connection.query('TRUNCATE TABLE items');
  await connection.query(SEED);
  try {
    return { value: await run(db) };
  } catch (error) {
    return asSeen(error);
  }
}

test('Drizzle through sqlgate gives what drizzle-orm/mysql2 gives, but for the documented differences', async () => {
  const differences = [];
  const seen = {};
  for (const [name, run] of Object.entries(CASES)) {
    const viaMysql2 = await outcome(databases.mysql2, run);
    const viaSqlgate = await outcome(databases.sqlgate, run);
    seen[name] = { mysql2: viaMysql2, sqlgate: viaSqlgate };
    if (!isDeepStrictEqual(viaMysql2, viaSqlgate)) differences.push(name);
  }
  const report = differences.map((name) => `${name}:\n  mysql2:  ${inspect(seen[name].mysql2, { depth: 5 })}\n  sqlgate: ${inspect(seen[name].sqlgate, { depth: 5 })}`).join('\n');
  assert.deepStrictEqual(differences, KNOWN_DIFFERENCES, report);
  // What the errors look like (the same through both).
  assert.deepStrictEqual(seen['duplicate key (ER_DUP_ENTRY)'].sqlgate, {
    error: 'DrizzleQueryError', code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000', sqlMessage: "Duplicate entry 'ada' for key 'name'",
  });
  assert.deepStrictEqual(seen['select a JSON column alone'].sqlgate, { value: [{ doc: { a: [1, 2], s: 'x' } }] });
});
