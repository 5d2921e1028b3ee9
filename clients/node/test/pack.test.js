'use strict';
// `npm pack` makes a tarball that installs into a fresh directory, carries its
// .proto files, talks to a real gateway, and whose types compile there.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startGateway } = require('./gateway');

const PACKAGE = path.join(__dirname, '..');
const version = require('../package.json').version;
const drizzleVersion = require('../package.json').devDependencies['drizzle-orm'];

let work;
let gateway;

test.before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlgate-node-pack-'));
  gateway = await startGateway();
});

test.after(async () => {
  await gateway.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('the packed tarball installs and works from a fresh directory', async () => {
  npm(['pack', '--silent', '--pack-destination', work], PACKAGE);
  const tarball = path.join(work, `sqlgate-client-${version}.tgz`);
  assert.ok(fs.existsSync(tarball), 'npm pack wrote the tarball');
  assert.ok(!fs.existsSync(path.join(PACKAGE, 'proto')), 'postpack removed the bundled copy from the checkout');

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `drizzle-orm@${drizzleVersion}`], app);
  const installed = path.join(app, 'node_modules', 'sqlgate-client');
  assert.ok(fs.existsSync(path.join(installed, 'proto', 'sqlgate', 'v1', 'sqlgate.proto')));
  assert.ok(fs.existsSync(path.join(installed, 'proto', 'google', 'rpc', 'status.proto')));
  assert.ok(fs.existsSync(path.join(installed, 'index.d.ts')));

  const script = `
    const { Client, SqlgateError, protoRoot } = require('sqlgate-client');
    const { drizzle } = require('sqlgate-client/drizzle');
    const { sql } = require('drizzle-orm');
    (async () => {
      const client = new Client(process.argv[1]);
      const { rows } = await client.execute('SELECT ? + 1', [41n]);
      let reason = null;
      try { await client.execute('SELECT * FROM no_such_table'); } catch (e) { reason = e instanceof SqlgateError && e.reason + ' ' + e.errno; }
      const [drizzleRows] = await drizzle(client).execute(sql\`SELECT \${'hi'} AS greeting\`);
      client.close();
      console.log(JSON.stringify({ protoRoot, answer: String(rows[0][0]), reason, drizzleRows }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, gateway.address], { cwd: app, encoding: 'utf8' }));
  assert.strictEqual(fs.realpathSync(out.protoRoot), fs.realpathSync(path.join(installed, 'proto')), 'the bundled proto is used');
  assert.strictEqual(out.answer, '42');
  assert.strictEqual(out.reason, 'MYSQL_ERROR 1146');
  assert.deepStrictEqual(out.drizzleRows, [{ greeting: 'hi' }]);

  // The same as ES modules: every documented subpath through "exports".
  const esm = `
    import { Client, SqlgateError } from 'sqlgate-client';
    import { drizzle } from 'sqlgate-client/drizzle';
    import { sql } from 'drizzle-orm';
    const client = new Client(process.argv[2]); // node esm.mjs <address>
    let code = null;
    try { await drizzle(client).execute(sql\`SELECT * FROM no_such_table\`); } catch (e) { code = e.cause instanceof SqlgateError && e.cause.code; }
    client.close();
    console.log(JSON.stringify({ code }));`;
  fs.writeFileSync(path.join(app, 'esm.mjs'), esm);
  const esmOut = JSON.parse(execFileSync(process.execPath, ['esm.mjs', gateway.address], { cwd: app, encoding: 'utf8' }));
  assert.deepStrictEqual(esmOut, { code: 'ER_NO_SUCH_TABLE' });

  // The installed package's types, as a TypeScript user of the tarball gets them.
  for (const file of ['usage.ts', 'drizzle-usage.ts', 'esm-usage.mts']) fs.copyFileSync(path.join(__dirname, 'types', file), path.join(app, file));
  const base = { strict: true, noEmit: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], typeRoots: [path.join(PACKAGE, 'node_modules', '@types')] };
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...base, skipLibCheck: false }, files: ['usage.ts'] }));
  fs.writeFileSync(path.join(app, 'tsconfig.drizzle.json'), JSON.stringify({ compilerOptions: { ...base, skipLibCheck: true }, files: ['drizzle-usage.ts', 'esm-usage.mts'] }));
  const tsc = path.join(PACKAGE, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const project of ['tsconfig.json', 'tsconfig.drizzle.json']) {
    try {
      execFileSync(process.execPath, [tsc, '-p', project], { cwd: app, encoding: 'utf8' });
    } catch (error) {
      assert.fail(`tsc -p ${project} in the installed app failed:\n${error.stdout}${error.stderr}`);
    }
  }
});
