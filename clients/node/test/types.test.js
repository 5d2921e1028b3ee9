'use strict';
// The TypeScript definitions compile against a usage file (tsc --noEmit).
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const TSC = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');

function tsc(project) {
  try {
    execFileSync(process.execPath, [TSC, '-p', project], { encoding: 'utf8' });
  } catch (error) {
    assert.fail(`tsc -p ${project} failed:\n${error.stdout}${error.stderr}`);
  }
}

test('index.d.ts: the client API type-checks (strict, skipLibCheck off), misuse is rejected', () => {
  tsc(path.join(__dirname, 'types', 'tsconfig.json'));
});

// sqlgate-client resolves through package.json "exports" (the package
// imports itself by name), as in an application that installed it.
test('drizzle.d.ts: drizzle(client) and drizzleCallback type-check with drizzle-orm; so does ESM: a .mts file imports sqlgate-client and sqlgate-client/drizzle', () => {
  tsc(path.join(__dirname, 'types', 'tsconfig.drizzle.json'));
});

test('drizzle.d.mts declares what drizzle.d.ts declares', () => {
  const fs = require('node:fs');
  const body = (file) => fs.readFileSync(path.join(__dirname, '..', file), 'utf8').split('\n').slice(2).join('\n').replace("from './index.js'", "from './index'");
  assert.strictEqual(body('drizzle.d.mts'), body('drizzle.d.ts'));
});
