'use strict';
// Bulk inserts through sqlgate (executeMany: ExecuteBatch with
// combineInserts) and through mysql2 (`query('INSERT ... VALUES ?', [rows])`
// and 300 single execute()s in one transaction, as unary calls and on a
// Transaction stream) on the same private MariaDB,
// side by side in one run. Not a test: prints a table (BENCHMARKS.md).
//   SQLGATE_BIN=target/release/sqlgate node clients/node/bench/bulk.js [rows] [repeat]
const mysql = require('mysql2/promise');
const { startGateway } = require('../test/gateway');
const { startMariadb } = require('../test/mariadb');

async function main() {
  const n = Number(process.argv[2] || 5000);
  const repeat = Number(process.argv[3] || 3);
  const mariadb = await startMariadb();
  const gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  const my = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true });
  const rows = Array.from({ length: n }, (_, i) => [`item ${i}`, i]);
  const reset = () => my.query('DROP TABLE IF EXISTS bench').then(() => my.query('CREATE TABLE bench (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT)'));
  const timed = async (fn) => { await reset(); const t = process.hrtime.bigint(); await fn(); return Number(process.hrtime.bigint() - t) / 1e9; };
  const cases = {
    [`bulk insert, ${n} rows`]: {
      mysql2: () => my.query('INSERT INTO bench (name, qty) VALUES ?', [rows]),
      sqlgate: () => gateway.client.executeMany('INSERT INTO bench (name, qty) VALUES (?, ?)', rows),
    },
    '300 single inserts in a transaction': {
      mysql2: async () => { await my.beginTransaction(); for (const r of rows.slice(0, 300)) await my.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); await my.commit(); },
      sqlgate: async () => { const tx = await gateway.client.begin(); for (const r of rows.slice(0, 300)) await gateway.client.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r, { transactionId: tx }); await gateway.client.commit(tx); },
    },
    // The same on sqlgate's Transaction stream: one gRPC stream, a message per statement.
    '300 single inserts in a transaction (sqlgate: transactionStream)': {
      mysql2: async () => { await my.beginTransaction(); for (const r of rows.slice(0, 300)) await my.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); await my.commit(); },
      sqlgate: async () => { const tx = gateway.client.transactionStream(); await tx.begun; for (const r of rows.slice(0, 300)) await tx.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); await tx.commit(); },
    },
  };
  console.log(`| case | mysql2 (s) | sqlgate (s) | ratio |  (best of ${repeat}, alternating)`);
  console.log('|---|---|---|---|');
  for (const [name, runs] of Object.entries(cases)) {
    const best = { mysql2: Infinity, sqlgate: Infinity };
    for (let i = 0; i < repeat; i++) for (const who of Object.keys(best)) best[who] = Math.min(best[who], await timed(runs[who]));
    console.log(`| ${name} | ${best.mysql2.toFixed(3)} | ${best.sqlgate.toFixed(3)} | ${(best.sqlgate / best.mysql2).toFixed(2)}x |`);
  }
  await my.end();
  await gateway.stop();
  await mariadb.stop();
}

main().catch((error) => { console.error(error); process.exit(1); });
