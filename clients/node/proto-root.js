'use strict';
// Where the client's .proto files are.
const fs = require('node:fs');
const path = require('node:path');

/**
 * Where the .proto files are: the copy bundled into the package by `npm pack`
 * (see tools/bundle-proto.js) first, else the repository's proto/ (a checkout).
 */
function findProtoRoot() {
  const candidates = [path.join(__dirname, 'proto'), path.join(__dirname, '..', '..', 'proto')];
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'sqlgate', 'v1', 'sqlgate.proto'))) return dir;
  }
  throw new Error(`sqlgate-client: sqlgate/v1/sqlgate.proto not found in ${candidates.join(' or ')}`);
}

const PROTO_ROOT = findProtoRoot();

module.exports = { PROTO_ROOT };
