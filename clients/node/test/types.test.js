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

test('drizzle.d.ts: drizzle(client) and drizzleCallback type-check with drizzle-orm', () => {
  tsc(path.join(__dirname, 'types', 'tsconfig.drizzle.json'));
});
