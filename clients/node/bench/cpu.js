'use strict';
// Where the time of a bulk case goes: wall time, and the CPU of this process
// (the client), of the gateway and of MariaDB (from /proc/<pid>/stat, 10 ms
// ticks) per run, mysql2 and sqlgate alternating (BENCHMARKS.md).
//   SQLGATE_BIN=target/release/sqlgate node clients/node/bench/cpu.js single|stream|tx|auto|bulk [runs]
const fs = require('fs'); const path = require('path'); const { execSync } = require('child_process');
const mysql = require('mysql2/promise');
const { startGateway } = require('../test/gateway');
const { startMariadb } = require('../test/mariadb');
const ticks = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; }; // ms
async function main() {
  const mode = process.argv[2] || 'single';
  const mariadb = await startMariadb();
  const gateway = await startGateway({ args: ['--database-url', mariadb.databaseUrl] });
  const mpid = Number(fs.readFileSync(path.join(path.dirname(mariadb.socket), 'pid'), 'utf8'));
  const gpid = Number(execSync(`pgrep -f -- '--data-dir ${gateway.dir}'`).toString().trim().split('\n')[0]);
  const my = await mysql.createConnection({ ...mariadb.mysql2Options, supportBigNumbers: true });
  await my.query('CREATE TABLE bench (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), qty INT)');
  const rows = Array.from({ length: 5000 }, (_, i) => [`item ${i}`, i]);
  const runs = {
    mysql2: {
      single: async () => { await my.beginTransaction(); for (const r of rows.slice(0, 300)) await my.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); await my.commit(); },
      bulk: () => my.query('INSERT INTO bench (name, qty) VALUES ?', [rows]),
    },
    sqlgate: {
      single: async () => { const tx = await gateway.client.begin(); for (const r of rows.slice(0, 300)) await gateway.client.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r, { transactionId: tx }); await gateway.client.commit(tx); },
      bulk: () => gateway.client.executeMany('INSERT INTO bench (name, qty) VALUES (?, ?)', rows),
      stream: async () => { const tx = gateway.client.transactionStream(); await tx.begun; for (const r of rows.slice(0, 300)) await tx.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); await tx.commit(); },
      // Client.transaction(): one Transaction stream per run since issue 21.
      tx: () => gateway.client.transaction(async (tx) => { for (const r of rows.slice(0, 300)) await tx.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); }),
      auto: async () => { for (const r of rows.slice(0, 300)) await gateway.client.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); },
    },
  };
  runs.mysql2.stream = runs.mysql2.single;
  runs.mysql2.tx = runs.mysql2.single;
  runs.mysql2.auto = async () => { for (const r of rows.slice(0, 300)) await my.execute('INSERT INTO bench (name, qty) VALUES (?, ?)', r); };
  const N = Number(process.argv[3] || 10);
  for (const who of ['mysql2', 'sqlgate', 'mysql2', 'sqlgate']) {
    await runs[who][mode]();
    const c0 = process.cpuUsage(); const g0 = ticks(gpid); const m0 = ticks(mpid); const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await runs[who][mode]();
    const wall = Number(process.hrtime.bigint() - t0) / 1e6 / N; const c = process.cpuUsage(c0);
    console.log(`${who} ${mode}: wall ${wall.toFixed(1)} ms/run, node CPU ${((c.user + c.system) / 1000 / N).toFixed(1)} (system ${(c.system / 1000 / N).toFixed(1)}), gateway ${((ticks(gpid) - g0) / N).toFixed(1)}, mariadb ${((ticks(mpid) - m0) / N).toFixed(1)} ms/run`);
  }
  await my.end(); await gateway.stop(); await mariadb.stop();
}
main().catch((e) => { console.error(e); process.exit(1); });
