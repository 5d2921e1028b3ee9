'use strict';
// Runs the Node.js examples of the top-level README's "## Clients" section
// word for word, as a user who ran `npm install ./clients/node` (and
// `npm install drizzle-orm`) would: each ```js block is written to a file in
// a fresh directory whose node_modules/sqlgate-client is a link to this
// package (what npm does for a directory install) and whose
// node_modules/drizzle-orm is a link to our dev dependency, and run there
// with `node` in its own process. The only change made to a block is the
// address, localhost:50051 -> the test gateway's. Before each block the
// `accounts` table of the README's grpcurl section is created afresh with
// alice (id 1, 100.00) and bob (id 2, 50.00); afterwards the block's output
// and the balances it left are checked. If an example changes, its
// expectation below changes with it.
const test = require('node:test');
const assert = require('node:assert');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startGateway } = require('./gateway');

const PACKAGE = path.join(__dirname, '..');
const README = path.join(PACKAGE, '..', '..', 'README.md');
const NAME = require('../package.json').name;

// (a phrase that identifies the block, its exact stdout, the balances of ids 1 and 2 after it)
const EXPECTATIONS = [
  {
    phrase: 'db.stream(',
    stdout: "[ [ '90.00' ] ]\n1n alice 90.00\n2n bob 60.00\n",
    balances: ['90.00', '60.00'],
  },
  {
    phrase: "require('sqlgate-client/drizzle')",
    stdout: "[\n  { id: 1, owner: 'alice', balance: '99.00' },\n  { id: 2, owner: 'bob', balance: '51.00' }\n]\n",
    balances: ['99.00', '51.00'],
  },
];

function readmeBlocks() {
  const text = fs.readFileSync(README, 'utf8');
  const start = text.indexOf('\n## Clients\n');
  assert.ok(start >= 0, 'README.md has a "## Clients" section');
  const section = text.slice(start + 1).split('\n## ')[0];
  return [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

function run(file, cwd) {
  const env = { ...process.env };
  delete env.NODE_PATH; // the package must resolve through node_modules, as installed
  delete env.NODE_OPTIONS;
  return new Promise((resolve) => {
    execFile(process.execPath, [file], { cwd, env, timeout: 60000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr });
    });
  });
}

let gateway;
let app;

test.before(async () => {
  gateway = await startGateway();
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlgate-node-readme-'));
  fs.mkdirSync(path.join(app, 'node_modules'));
  fs.symlinkSync(PACKAGE, path.join(app, 'node_modules', NAME), 'dir');
  fs.symlinkSync(path.join(PACKAGE, 'node_modules', 'drizzle-orm'), path.join(app, 'node_modules', 'drizzle-orm'), 'dir');
});

test.after(async () => {
  await gateway.stop();
  fs.rmSync(app, { recursive: true, force: true });
});

test('every README example has an expectation, and every expectation an example', () => {
  const blocks = readmeBlocks();
  assert.ok(blocks.length > 0, 'the Clients section has ```js blocks');
  for (const block of blocks) {
    const matching = EXPECTATIONS.filter((e) => block.includes(e.phrase));
    assert.strictEqual(matching.length, 1, `a README example matches ${matching.length} expectations:\n${block}`);
  }
  for (const expectation of EXPECTATIONS) {
    assert.ok(blocks.some((b) => b.includes(expectation.phrase)), `no README example matches ${expectation.phrase}`);
  }
});

for (const [index, expectation] of EXPECTATIONS.entries()) {
  test(`README example ${index + 1} (${expectation.phrase}) runs word for word`, async () => {
    const block = readmeBlocks().find((b) => b.includes(expectation.phrase));
    assert.ok(block, `no README example matches ${expectation.phrase}`);
    assert.strictEqual(block.split('localhost:50051').length - 1, 1, 'the example names localhost:50051 once');
    assert.match(block, new RegExp(`require\\('${NAME}'\\)`), `the example requires the package by its name, ${NAME}`);

    const client = gateway.client;
    await client.execute('DROP TABLE IF EXISTS accounts');
    // The grpcurl section's table and rows.
    await client.execute('CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(50), balance DECIMAL(12,2))');
    await client.execute("INSERT INTO accounts VALUES (1, 'alice', 100.00), (2, 'bob', 50.00)");

    const file = path.join(app, `example${index + 1}.js`);
    fs.writeFileSync(file, block.replace('localhost:50051', gateway.address));
    const { code, stdout, stderr } = await run(file, app);
    assert.strictEqual(code, 0, `the example failed:\n${stderr}\n${stdout}`);
    assert.strictEqual(stdout, expectation.stdout);

    const { rows } = await client.execute('SELECT id, balance FROM accounts ORDER BY id');
    assert.deepStrictEqual(rows, [[1n, expectation.balances[0]], [2n, expectation.balances[1]]]);
  });
}
