'use strict';
// Large numbers side by side with mysql2 on the same MariaDB: every value
// inserted through sqlgate and through mysql2's query() (what
// drizzle-orm/mysql2 uses) into the same column reads back equal, or both are
// refused with the same error. No number is ever wrapped to 64 bits.
const test = require('node:test');
const assert = require('node:assert');
const mysql = require('mysql2/promise');
const { toValue } = require('..');
const { startGateway } = require('./gateway');
const { startMariadb } = require('./mariadb');

const NUMBERS = [
  0, 5, -7, 0.5, 2 ** 53 + 2, 2 ** 60, 1e20, 1e21, 2 ** 63, -(2 ** 63), -(2 ** 63) - 4096, 2 ** 64,
  -1e300, 1.5e300, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 1.5e-7,
  9007199254740993n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 63n) - 1n, 10n ** 40n,
];
const COLUMNS = {
  d: 'DOUBLE',
  dc: 'DECIMAL(65,0)',
  bi: 'BIGINT',
  bu: 'BIGINT UNSIGNED',
  v: 'VARCHAR(400)',
};

let mariadb;
let gateway;
let my; // mysql2, reading DECIMAL and BIGINT as exact strings
let row = 0;

test.before(async () => {
  mariadb = await startMariadb();
  gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  my = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true, bigNumberStrings: true });
  const columns = Object.entries(COLUMNS).map(([name, type]) => `${name} ${type} NULL`).join(', ');
  await my.query(`CREATE TABLE nums (id INT PRIMARY KEY, ${columns})`);
});

test.after(async () => {
  if (my) await my.end();
  if (gateway) await gateway.stop();
  if (mariadb) await mariadb.stop();
});

/** Inserts `value` into `column` of a fresh row; resolves to { id } or { errno }. */
async function insert(through, column, value) {
  const id = ++row;
  const sql = `INSERT INTO nums (id, ${column}) VALUES (?, ?)`;
  try {
    if (through === 'mysql2') await my.query(sql, [id, value]);
    else await gateway.client.execute(sql, [id, value]);
    return { id };
  } catch (error) {
    if (error.errno === undefined || error.errno === null) throw error;
    return { errno: error.errno };
  }
}

async function readBoth(column, id) {
  const [[viaMysql2]] = await my.query(`SELECT ${column} AS x FROM nums WHERE id = ?`, [id]);
  const { rows: [[viaSqlgate]] } = await gateway.client.execute(`SELECT ${column} FROM nums WHERE id = ?`, [id]);
  return { mysql2: viaMysql2.x, sqlgate: viaSqlgate };
}

test('numbers and BigInts beyond int64 are never wrapped: sent as the value mysql2 writes', () => {
  assert.deepStrictEqual(toValue(1e20), { decimalValue: '100000000000000000000' });
  assert.deepStrictEqual(toValue(1e21), { doubleValue: 1e21 });
  assert.deepStrictEqual(toValue(2 ** 63), { uint64Value: '9223372036854776000' });
  assert.deepStrictEqual(toValue(-1e300), { doubleValue: -1e300 });
  assert.deepStrictEqual(toValue(Number.MAX_VALUE), { doubleValue: Number.MAX_VALUE });
  assert.deepStrictEqual(toValue(2n ** 64n), { decimalValue: '18446744073709551616' });
  assert.deepStrictEqual(toValue(-(2n ** 63n) - 1n), { decimalValue: '-9223372036854775809' });
  assert.deepStrictEqual(toValue(-(2n ** 63n)), { int64Value: '-9223372036854775808' });
  for (const bad of [NaN, Infinity, -Infinity]) assert.throws(() => toValue(bad), /no NaN or Infinity/);
});

test('the issue\'s values through sqlgate read back as they were written', async () => {
  const cases = [[1e20, 'dc', '100000000000000000000'], [1e21, 'd', 1e21],
    // String(2 ** 63) is '9223372036854776000', the digits mysql2 writes too: the same double.
    [2 ** 63, 'bu', 9223372036854776000n],
    [-1e300, 'd', -1e300], [1.5e300, 'd', 1.5e300], [Number.MAX_VALUE, 'd', Number.MAX_VALUE]];
  for (const [value, column, expected] of cases) {
    const { id, errno } = await insert('sqlgate', column, value);
    assert.strictEqual(errno, undefined, `${value} into ${column}`);
    const back = (await readBoth(column, id)).sqlgate;
    assert.strictEqual(back, expected, `${value} into ${column}`);
    assert.strictEqual(Number(back), value);
  }
  // Out of range is refused, as with mysql2 (strict mode), not wrapped.
  assert.strictEqual((await insert('sqlgate', 'bi', 1e20)).errno, 1264);
  assert.strictEqual((await insert('sqlgate', 'bi', 2n ** 64n)).errno, 1264);
  await assert.rejects(gateway.client.execute('INSERT INTO nums (id, d) VALUES (?, ?)', [++row, NaN]), TypeError);
  assert.deepStrictEqual((await gateway.client.execute('SELECT COUNT(*) FROM nums WHERE id = ?', [row])).rows, [[0n]]);
});

test('the same values inserted through mysql2 and through sqlgate read back equal (or fail alike)', async () => {
  const differences = [];
  for (const value of NUMBERS) {
    for (const column of Object.keys(COLUMNS)) {
      const a = await insert('mysql2', column, value);
      const b = await insert('sqlgate', column, value);
      const what = `${typeof value} ${String(value)} into ${COLUMNS[column]}`;
      if (a.errno !== b.errno) {
        differences.push(`${what}: mysql2 ${a.errno ? `error ${a.errno}` : 'ok'}, sqlgate ${b.errno ? `error ${b.errno}` : 'ok'}`);
        continue;
      }
      if (a.errno) continue;
      const first = await readBoth(column, a.id);
      const second = await readBoth(column, b.id);
      if (first.mysql2 !== second.mysql2 || first.sqlgate !== second.sqlgate) {
        differences.push(`${what}: mysql2's row reads ${first.mysql2} / ${first.sqlgate}, sqlgate's ${second.mysql2} / ${second.sqlgate}`);
      }
    }
  }
  // The one documented difference (README, "Numbers"): a fraction is a DOUBLE
  // (as mysql2's execute() sends it), where query() writes a DECIMAL literal;
  // MariaDB rounds a DOUBLE half to even into an integer column.
  assert.deepStrictEqual(differences, [
    "number 0.5 into BIGINT: mysql2's row reads 1 / 1, sqlgate's 0 / 0",
    "number 0.5 into BIGINT UNSIGNED: mysql2's row reads 1 / 1, sqlgate's 0 / 0",
  ]);
});
