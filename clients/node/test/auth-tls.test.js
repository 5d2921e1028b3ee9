'use strict';
// Bearer tokens and TLS against a gateway started with --auth-tokens-file and
// --tls-cert/--tls-key (a CA and a certificate for localhost made here with openssl).
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, SqlgateError, status } = require('..');
const { startGateway } = require('./gateway');

const RW_TOKEN = 'rw-0123456789abcdef0123456789abcdef';
const RO_TOKEN = 'ro-fedcba9876543210fedcba9876543210';

let certs;
let gateway;
let ca;

function makeCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sqlgate-node-tls-'));
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sqlgate-node-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  fs.writeFileSync(path.join(dir, 'tokens'), `# token,principal,role\n${RW_TOKEN},writer,read-write\n${RO_TOKEN},reader,read-only\n`);
  return dir;
}

test.before(async () => {
  certs = makeCertificates();
  ca = fs.readFileSync(path.join(certs, 'ca.pem'), 'utf8');
  gateway = await startGateway({
    host: 'localhost',
    args: ['--auth-tokens-file', path.join(certs, 'tokens'), '--tls-cert', path.join(certs, 'server.pem'), '--tls-key', path.join(certs, 'server.key'),
      // Works around a gateway bug (as of 52c2234): without --peers, --tls-cert
      // alone panics in ServeArgs::validate ("checked above"), because
      // `(!peers.is_empty()).then_some(FleetConfig { .. })` builds the fleet
      // TLS config eagerly and expects a peer CA. A peer CA without --peers is unused.
      '--peer-tls-ca', path.join(certs, 'ca.pem')],
    clientOptions: { token: RW_TOKEN, tls: { ca } },
  });
  await gateway.client.execute('CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(100))');
});

test.after(async () => {
  await gateway.stop();
  fs.rmSync(certs, { recursive: true, force: true });
});

function withClient(options, fn) {
  const client = new Client(gateway.address, options);
  return Promise.resolve(fn(client)).finally(() => client.close());
}

test('a call without a token, or with an unknown one, fails UNAUTHENTICATED', async () => {
  for (const token of [undefined, 'not-a-valid-token-0000000000']) {
    await withClient({ tls: { ca }, token }, (client) => assert.rejects(client.execute('SELECT 1'), (error) => {
      assert.ok(error instanceof SqlgateError);
      assert.strictEqual(error.code, status.UNAUTHENTICATED);
      assert.strictEqual(error.reason, 'UNAUTHENTICATED');
      return true;
    }));
  }
});

test('with a read-write token every call carries it: statements, transactions, streams', async () => {
  await withClient({ tls: { ca: Buffer.from(ca) }, token: RW_TOKEN }, async (client) => {
    await client.transaction(async (tx) => {
      await tx.execute('INSERT INTO notes VALUES (?, ?)', [1, 'one']);
      await tx.execute('INSERT INTO notes VALUES (?, ?)', [2, 'two']);
    });
    const rows = [];
    for await (const row of client.stream('SELECT id, body FROM notes ORDER BY id')) rows.push(row);
    assert.deepStrictEqual(rows, [[1n, 'one'], [2n, 'two']]);
  });
});

test('a read-only token may read but not write', async () => {
  await withClient({ tls: { ca }, token: RO_TOKEN }, async (client) => {
    assert.deepStrictEqual((await client.execute('SELECT COUNT(*) FROM notes')).rows, [[2n]]);
    await assert.rejects(client.execute('DELETE FROM notes'), (error) => {
      assert.strictEqual(error.code, status.PERMISSION_DENIED);
      assert.strictEqual(error.reason, 'READ_ONLY_PRINCIPAL');
      return true;
    });
  });
});

test('TLS: plaintext, or TLS with the system roots (which do not know this CA), cannot connect', async () => {
  for (const tls of [false, true]) {
    await withClient({ tls, token: RW_TOKEN, deadlineMs: 3000 }, (client) => assert.rejects(client.execute('SELECT 1'),
      (error) => error instanceof SqlgateError && error.code === status.UNAVAILABLE));
  }
});

test('TLS: serverName overrides the name checked against the certificate', async () => {
  // The certificate names only DNS:localhost, so 127.0.0.1 needs the override.
  const ipTarget = `127.0.0.1:${gateway.address.split(':').pop()}`;
  const connect = (tls) => {
    const client = new Client(ipTarget, { tls, token: RW_TOKEN, deadlineMs: 3000 });
    return client.execute('SELECT 7').finally(() => client.close());
  };
  assert.deepStrictEqual((await connect({ ca, serverName: 'localhost' })).rows, [[7n]]);
  await assert.rejects(connect({ ca }), (error) => error.code === status.UNAVAILABLE);
});
