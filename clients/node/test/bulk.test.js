'use strict';
// executeMany (ExecuteBatch with combineInserts: multi-row INSERTs at the
// gateway) beside mysql2's bulk insert (`query('INSERT ... VALUES ?',
// [rows])`) on the same MariaDB: the same rows, affectedRows, insertId, and
// the same all-or-nothing error.
const test = require('node:test');
const assert = require('node:assert');
const mysql = require('mysql2/promise');
const { startGateway } = require('./gateway');
const { startMariadb } = require('./mariadb');

let mariadb;
let gateway;
let my;

test.before(async () => {
  mariadb = await startMariadb();
  gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  my = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true, bigNumberStrings: true });
});

test.after(async () => {
  if (my) await my.end();
  if (gateway) await gateway.stop();
  if (mariadb) await mariadb.stop();
});

const ROWS = Array.from({ length: 2500 }, (_, i) => [`näme ${i}`, `${i}.25`, i % 3 ? null : '2024-01-02']);

async function table(name) {
  await my.query(`CREATE TABLE ${name} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) UNIQUE, price DECIMAL(8,2), born DATE NULL)`);
}

async function contents(name) {
  const [rows] = await my.query(`SELECT id, name, CAST(price AS CHAR) p, CAST(born AS CHAR) b FROM ${name} ORDER BY id`);
  return rows.map((r) => [r.id, r.name, r.p, r.b]);
}

test('executeMany writes and reports what mysql2 bulk insert does', async () => {
  await table('bulk_mysql2');
  await table('bulk_sqlgate');
  const [ok] = await my.query('INSERT INTO bulk_mysql2 (name, price, born) VALUES ?', [ROWS]);
  const many = await gateway.client.executeMany('INSERT INTO bulk_sqlgate (name, price, born) VALUES (?, ?, ?)', ROWS);
  assert.strictEqual(many.affectedRows, BigInt(ok.affectedRows));
  assert.strictEqual(many.insertId, BigInt(ok.insertId));
  assert.strictEqual(many.results.length, ROWS.length);
  assert.deepStrictEqual(await contents('bulk_sqlgate'), await contents('bulk_mysql2'));

  // A duplicate name in the middle: an error, and nothing of the call written.
  const bad = Array.from({ length: 1500 }, (_, i) => [`new ${i}`, '1', null]);
  bad[1200] = ['näme 7', '1', null];
  const mysql2Error = await my.query('INSERT INTO bulk_mysql2 (name, price, born) VALUES ?', [bad]).catch((e) => e);
  const sqlgateError = await gateway.client.executeMany('INSERT INTO bulk_sqlgate (name, price, born) VALUES (?, ?, ?)', bad).catch((e) => e);
  assert.strictEqual(mysql2Error.errno, 1062);
  assert.strictEqual(sqlgateError.errno, 1062);
  assert.strictEqual(sqlgateError.statementIndex, 1200);
  assert.deepStrictEqual(await contents('bulk_sqlgate'), await contents('bulk_mysql2'));

  // A value with no SQL meaning in a later batch (encoded while the first
  // batch runs): the TypeError, and nothing of the call written either.
  const unsendable = Array.from({ length: 1500 }, (_, i) => [`nan ${i}`, '1', null]);
  unsendable[1300] = ['nan', Number.NaN, null];
  await assert.rejects(gateway.client.executeMany('INSERT INTO bulk_sqlgate (name, price, born) VALUES (?, ?, ?)', unsendable), TypeError);
  assert.deepStrictEqual(await contents('bulk_sqlgate'), await contents('bulk_mysql2'));
});
