'use strict';
// SqlgateError's mysql2-shaped fields, without a gateway: the status message
// the gateway sends, read back into sqlMessage and mysql2's code name.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { SqlgateError, SqlgateDriverError, grpc } = require('..');
const { statusError } = require('../errors');
const { render, target } = require('../tools/gen-mysql-errors');

/** A SqlgateError as a failed call would give it (the in-band Status path builds the same trailer). */
function failed(code, message, metadata) {
  const details = [{ typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo', value: encodeErrorInfo('MYSQL_ERROR', metadata) }];
  return new SqlgateError(statusError({ code, message, details }));
}

function encodeErrorInfo(reason, metadata) {
  const protobuf = require('protobufjs');
  const ErrorInfo = new protobuf.Type('ErrorInfo')
    .add(new protobuf.Field('reason', 1, 'string'))
    .add(new protobuf.Field('domain', 2, 'string'))
    .add(new protobuf.MapField('metadata', 3, 'string', 'string'));
  new protobuf.Root().define('google.rpc').add(ErrorInfo);
  return ErrorInfo.encode({ reason, domain: 'sqlgate', metadata }).finish();
}

test('mysql-errors.js is what tools/gen-mysql-errors.js makes from the pinned mysql2', () => {
  assert.strictEqual(fs.readFileSync(target, 'utf8'), render(), 'run node tools/gen-mysql-errors.js');
});

test('sqlMessage is the server\'s message, also in a batch and with what became of the transaction', () => {
  const plain = failed(grpc.status.ALREADY_EXISTS, "Duplicate entry '1' for key 'PRIMARY' (MySQL error 1062, SQLSTATE 23000)", { errno: '1062', sqlstate: '23000' });
  assert.strictEqual(plain.sqlMessage, "Duplicate entry '1' for key 'PRIMARY'");
  assert.strictEqual(plain.mysqlCode, 'ER_DUP_ENTRY');
  assert.strictEqual(plain.sqlState, '23000');
  assert.strictEqual(plain.code, grpc.status.ALREADY_EXISTS);
  const batch = failed(grpc.status.ABORTED, 'statement 2 of the batch failed: Lock wait timeout exceeded; try restarting transaction (MySQL error 1205, SQLSTATE HY000); the transaction is still open (only this statement was undone): continue it or roll it back',
    { errno: '1205', sqlstate: 'HY000', statement_index: '2', transaction_open: 'true' });
  assert.strictEqual(batch.sqlMessage, 'Lock wait timeout exceeded; try restarting transaction');
  assert.strictEqual(batch.statementIndex, 2);
  const driver = new SqlgateDriverError(batch, 'UPDATE t SET x = 1');
  assert.ok(driver instanceof SqlgateError);
  assert.deepStrictEqual([driver.code, driver.errno, driver.sqlState, driver.message, driver.sql, driver.grpcCode, driver.retryTransaction],
    ['ER_LOCK_WAIT_TIMEOUT', 1205, 'HY000', 'Lock wait timeout exceeded; try restarting transaction', 'UPDATE t SET x = 1', grpc.status.ABORTED, true]);
});
