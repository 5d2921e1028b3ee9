'use strict';
// The package as an ES module: `import … from 'sqlgate-client'` and
// `'sqlgate-client/drizzle'` resolve through package.json "exports" (the
// package imports itself by name, as an application that installed it does)
// and work against a real gateway, mixed with drizzle-orm's own ES modules.
const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { startGateway } = require('./gateway');

let gateway;

test.before(async () => {
  gateway = await startGateway();
  await gateway.client.execute('CREATE TABLE docs (id INT PRIMARY KEY, body JSON)');
});

test.after(async () => {
  await gateway.stop();
});

const SCRIPT = `
import { Client, SqlgateError, SqlgateDriverError, status } from 'sqlgate-client';
import sqlgate from 'sqlgate-client';
import { drizzle } from 'sqlgate-client/drizzle';
import { mysqlTable, int, json } from 'drizzle-orm/mysql-core';
import { eq } from 'drizzle-orm';

const docs = mysqlTable('docs', { id: int('id').primaryKey(), body: json('body') });
const client = new Client(process.argv[1]);
const db = drizzle(client);
await db.insert(docs).values({ id: 1, body: { a: [1, 2] } });
const rows = await db.select().from(docs).where(eq(docs.id, 1));
let code = null;
try { await db.insert(docs).values({ id: 1, body: null }); } catch (error) { code = error.cause instanceof SqlgateError && error.cause instanceof SqlgateDriverError && error.cause.code; }
const { rows: [[one]] } = await sqlgate.Client.prototype.execute.call(client, 'SELECT 1');
client.close();
console.log(JSON.stringify({ rows, code, one: String(one), aborted: status.ABORTED }));
`;

test('import from sqlgate-client and sqlgate-client/drizzle under ESM', async () => {
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', SCRIPT, gateway.address], { cwd: path.join(__dirname, '..'), timeout: 60000 },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
  assert.deepStrictEqual(JSON.parse(out), { rows: [{ id: 1, body: { a: [1, 2] } }], code: 'ER_DUP_ENTRY', one: '1', aborted: 10 });
});
