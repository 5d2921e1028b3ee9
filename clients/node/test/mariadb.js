'use strict';
// A private MariaDB for tests that compare sqlgate with mysql2 on the same
// server: initialised in a temporary directory, listening only on a unix
// socket, with database `t` and account `app` (all privileges on `t`, none
// on the server). The gateway reaches it through --database-url, mysql2
// through `socketPath`.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PASSWORD = 'app-secret';

function findBinary(name) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'])) {
    const candidate = path.join(dir, name);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found (install mariadb-server)`);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs `sql` as root over the socket with the mariadb command-line client; true when it succeeded. */
function rootSql(socket, sql) {
  try {
    execFileSync(findBinary('mariadb'), ['--no-defaults', '-S', socket, '-uroot', '-e', sql], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the server; resolves to { socket, databaseUrl, mysql2Options, stop() }
 * once `app` can connect.
 */
async function startMariadb() {
  // Short: the socket path must stay under ~100 bytes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgm-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'sock');
  const user = isRoot ? ['--user=root'] : [];
  execFileSync(findBinary('mariadb-install-db'), ['--no-defaults', ...user, `--datadir=${data}`,
    '--auth-root-authentication-method=normal', '--skip-test-db', `--tmpdir=${dir}`], { stdio: 'ignore' });
  const child = spawn(findBinary('mariadbd'), ['--no-defaults', ...user, `--datadir=${data}`, `--socket=${socket}`,
    '--skip-networking', `--tmpdir=${dir}`, `--log-error=${path.join(dir, 'error.log')}`, `--pid-file=${path.join(dir, 'pid')}`,
    '--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci', '--innodb-buffer-pool-size=16M'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  let gone = null;
  exited.then((code) => { gone = code; });
  const until = Date.now() + 30000;
  while (!rootSql(socket, 'SELECT 1')) {
    if (gone !== null) throw new Error(`mariadbd exited with ${gone}: ${fs.readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
    if (Date.now() > until) throw new Error('mariadbd did not answer within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!rootSql(socket, `CREATE DATABASE t; CREATE USER app@localhost IDENTIFIED BY '${PASSWORD}'; GRANT ALL ON t.* TO app@localhost`)) {
    throw new Error('could not create database t and account app');
  }
  return {
    socket,
    databaseUrl: `mysql://app:${PASSWORD}@localhost/t?socket=${encodeURIComponent(socket)}`,
    mysql2Options: { socketPath: socket, user: 'app', password: PASSWORD, database: 't' },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startMariadb };
