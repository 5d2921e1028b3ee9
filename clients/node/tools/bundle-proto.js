'use strict';
// `npm pack` / `npm publish` (prepack): copies the repository's proto/ into
// ./proto so the package carries its .proto files; index.js looks there
// first. With --clean (postpack) it removes the copy again, so a checkout
// keeps using ../../proto and never a stale copy.
const fs = require('node:fs');
const path = require('node:path');

const here = path.join(__dirname, '..');
const bundled = path.join(here, 'proto');
const source = path.join(here, '..', '..', 'proto');

if (process.argv.includes('--clean')) {
  fs.rmSync(bundled, { recursive: true, force: true });
} else {
  if (!fs.existsSync(path.join(source, 'sqlgate', 'v1', 'sqlgate.proto'))) {
    throw new Error(`bundle-proto: ${source}/sqlgate/v1/sqlgate.proto not found (pack from the sqlgate repository)`);
  }
  fs.rmSync(bundled, { recursive: true, force: true });
  for (const file of ['sqlgate/v1/sqlgate.proto', 'google/rpc/status.proto', 'google/rpc/README.md']) {
    fs.mkdirSync(path.dirname(path.join(bundled, file)), { recursive: true });
    fs.copyFileSync(path.join(source, file), path.join(bundled, file));
  }
}
