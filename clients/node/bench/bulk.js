'use strict';
// Bulk inserts through sqlgate and through mysql2 (and Drizzle over each) on
// the same private MariaDB, side by side in one run: executeMany vs mysql2's
// `query('INSERT ... VALUES ?', [rows])`; 300 single inserts in one
// transaction (Client.transaction(), unary calls with transactionId,
// transactionStream(), Drizzle's db.transaction()) vs mysql2's execute()s;
// 300 autocommit inserts (Drizzle without a transaction). Not a test: prints
// a table (BENCHMARKS.md).
//   SQLGATE_BIN=target/release/sqlgate node clients/node/bench/bulk.js [rows] [repeat] [case filter]
const mysql = require('mysql2/promise');
const { drizzle: mysql2Drizzle } = require('drizzle-orm/mysql2');
const { mysqlTable, serial, varchar, int } = require('drizzle-orm/mysql-core');
const { drizzle } = require('../drizzle');
const { startGateway } = require('../test/gateway');
const { startMariadb } = require('../test/mariadb');

const bench = mysqlTable('bench', { id: serial('id').primaryKey(), name: varchar('name', { length: 40 }), qty: int('qty') });
const INSERT = 'INSERT INTO bench (name, qty) VALUES (?, ?)';

async function main() {
  const n = Number(process.argv[2] || 5000);
  const repeat = Number(process.argv[3] || 3);
  const only = process.argv[4] || '';
  const mariadb = await startMariadb();
  const gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  const client = gateway.client;
  const my = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true });
  const myDb = mysql2Drizzle(my);
  const gateDb = drizzle(client);
  const rows = Array.from({ length: n }, (_, i) => [`item ${i}`, i]);
  const few = rows.slice(0, 300);
  const reset = () => my.query('DROP TABLE IF EXISTS bench').then(() => my.query('CREATE TABLE bench (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT)'));
  const timed = async (fn) => { await reset(); const t = process.hrtime.bigint(); await fn(); return Number(process.hrtime.bigint() - t) / 1e9; };
  const mysql2Single = async () => { await my.beginTransaction(); for (const r of few) await my.execute(INSERT, r); await my.commit(); };
  const cases = {
    '300 single inserts in a transaction (sqlgate: transaction())': {
      mysql2: mysql2Single,
      sqlgate: () => client.transaction(async (tx) => { for (const r of few) await tx.execute(INSERT, r); }),
    },
    '300 single inserts in a transaction (sqlgate: unary calls with transactionId)': {
      mysql2: mysql2Single,
      sqlgate: async () => { const tx = await client.begin(); for (const r of few) await client.execute(INSERT, r, { transactionId: tx }); await client.commit(tx); },
    },
    // The same on sqlgate's Transaction stream: one gRPC stream, a message per statement.
    '300 single inserts in a transaction (sqlgate: transactionStream())': {
      mysql2: mysql2Single,
      sqlgate: async () => { const tx = client.transactionStream(); await tx.begun; for (const r of few) await tx.execute(INSERT, r); await tx.commit(); },
    },
    'Drizzle: 300 single inserts in db.transaction()': {
      mysql2: () => myDb.transaction(async (tx) => { for (const [name, qty] of few) await tx.insert(bench).values({ name, qty }); }),
      sqlgate: () => gateDb.transaction(async (tx) => { for (const [name, qty] of few) await tx.insert(bench).values({ name, qty }); }),
    },
    'Drizzle: 300 autocommit inserts': {
      mysql2: async () => { for (const [name, qty] of few) await myDb.insert(bench).values({ name, qty }); },
      sqlgate: async () => { for (const [name, qty] of few) await gateDb.insert(bench).values({ name, qty }); },
    },
    // Last: dropping its 5000 rows leaves InnoDB work (purge) behind for the case after it.
    [`bulk insert, ${n} rows (executeMany)`]: {
      mysql2: () => my.query('INSERT INTO bench (name, qty) VALUES ?', [rows]),
      sqlgate: () => client.executeMany(INSERT, rows),
    },
  };
  // Warm-up, not counted: three runs of every case on both sides first (V8's JIT, prepared
  // statements, MariaDB's buffer pool); with one, the first case measured still found both
  // sides at up to half their later speed.
  for (let i = 0; i < 3; i++) {
    for (const [name, runs] of Object.entries(cases)) if (name.includes(only)) for (const who of ['mysql2', 'sqlgate']) await timed(runs[who]);
  }
  console.log(`| case | mysql2 (s) | sqlgate (s) | ratio |  (best of ${repeat}, alternating)`);
  console.log('|---|---|---|---|');
  for (const [name, runs] of Object.entries(cases)) {
    if (!name.includes(only)) continue;
    const best = { mysql2: Infinity, sqlgate: Infinity };
    for (let i = 0; i < repeat; i++) for (const who of Object.keys(best)) best[who] = Math.min(best[who], await timed(runs[who]));
    console.log(`| ${name} | ${best.mysql2.toFixed(3)} | ${best.sqlgate.toFixed(3)} | ${(best.sqlgate / best.mysql2).toFixed(2)}x |`);
  }
  await my.end();
  await gateway.stop();
  await mariadb.stop();
}

main().catch((error) => { console.error(error); process.exit(1); });
