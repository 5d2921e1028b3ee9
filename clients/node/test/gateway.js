'use strict';
// Starts a real gateway with its own private MariaDB for a test file: the
// binary is $SQLGATE_BIN (default ../../target/debug/sqlgate).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { Client } = require('..');

const BIN = process.env.SQLGATE_BIN || path.join(__dirname, '..', '..', '..', 'target', 'debug', 'sqlgate');

/**
 * Starts `sqlgate serve` with `args` on 127.0.0.1:0; resolves once a
 * `SELECT 1` (made with `clientOptions`) goes through. stop() asserts a clean exit.
 */
async function startGateway({ args = [], clientOptions = {}, host = '127.0.0.1' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlgate-node-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'mysql'), '--log-format', 'json', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.on('error', (error) => resolve(`${error.message} (set SQLGATE_BIN)`));
  });
  const log = [];
  const address = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stderr });
    lines.on('line', (line) => {
      if (log.length < 200) log.push(line);
      if (line.includes('listening for gRPC')) resolve(JSON.parse(line).address);
    });
    exited.then((code) => reject(new Error(`the gateway exited with ${code}:\n${log.join('\n')}`)));
  });
  const target = host === '127.0.0.1' ? address : address.replace('127.0.0.1', host);
  const client = new Client(target, clientOptions);
  // Ready once a statement goes through (the private database may still be starting).
  for (let i = 0; ; i++) {
    try { await client.execute('SELECT 1'); break; } catch (error) {
      if (i > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    address: target,
    dir,
    client,
    async stop() {
      client.close();
      child.kill('SIGTERM');
      const code = await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      if (code !== 0) throw new Error(`the gateway exited with ${code}`);
    },
  };
}

/** Polls `check` (an async predicate) every 50 ms until it is true, or fails after `timeoutMs`. */
async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

module.exports = { startGateway, waitFor, BIN };
