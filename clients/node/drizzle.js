'use strict';
// An adapter for Drizzle ORM's `drizzle-orm/mysql-proxy` driver.
//
// The proxy driver calls `callback(sql, params, method)`:
// - method 'all' (selects): it wants `{ rows }`, each row an array of values in
//   column order, which it maps onto the query's fields;
// - method 'execute' (insert, update, delete, db.execute): it reads
//   `rows[0].insertId` and `rows[0].affectedRows`, as mysql2 returns them in
//   its ResultSetHeader.
// Values follow mysql2 with `supportBigNumbers`: integers are numbers when
// they fit exactly (|n| < 2^53) and decimal strings otherwise, so drizzle's
// int(), boolean() and serial() columns work and bigint({ mode: 'bigint' })
// and decimal() stay exact. DECIMAL, DATE, DATETIME, TIMESTAMP and TIME come
// back as their text (drizzle's columns parse it). A Date parameter is sent as
// UTC 'YYYY-MM-DD hh:mm:ss.fff', as drizzle's datetime columns write it.
//
// The proxy driver refuses db.transaction() ("Transactions are not supported
// by the MySql Proxy driver"): drizzle(client) below replaces it with one that
// runs on Client.transaction(), so it commits, rolls back on any error
// (tx.rollback() included) and reruns the function on ABORTED.

const { SqlgateError, SqlgateDriverError } = require('./errors');

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function driverValue(v) {
  if (typeof v === 'bigint') return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v.toString();
  return v;
}

function sqlParam(v) {
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace('Z', '');
  return v;
}

/** Numbers when both fit exactly, else BigInts (so insertId + affectedRows works). */
function counts(insertId, affectedRows) {
  if (insertId <= MAX_SAFE && affectedRows <= MAX_SAFE) return [Number(insertId), Number(affectedRows)];
  return [insertId, affectedRows];
}

/**
 * The callback for drizzle-orm/mysql-proxy's drizzle(callback): runs each
 * query through `executor` — a Client (autocommit calls) or the `tx` of
 * Client.transaction() (calls inside that transaction).
 */
function drizzleCallback(executor, { deadlineMs } = {}) {
  if (!executor || typeof executor.execute !== 'function') throw new TypeError('drizzleCallback needs a sqlgate Client or transaction');
  return async (sql, params = [], method = 'execute') => {
    const options = deadlineMs === undefined ? {} : { deadlineMs };
    let result;
    try {
      result = await executor.execute(sql, params.map(sqlParam), options);
    } catch (error) {
      // mysql2's shape (code 'ER_DUP_ENTRY', errno, sqlState, sqlMessage, sql):
      // drizzle wraps it in DrizzleQueryError as its cause.
      throw error instanceof SqlgateError ? new SqlgateDriverError(error, sql) : error;
    }
    const rows = result.rows.map((row) => row.map(driverValue));
    if (method === 'all') return { rows };
    if (result.columns.length > 0) {
      // A statement with a result set through db.execute(): [rows as objects, fields], as mysql2 returns it.
      const objects = rows.map((row) => Object.fromEntries(result.columns.map((c, i) => [c.name, row[i]])));
      return { rows: [objects, result.columns] };
    }
    const [insertId, affectedRows] = counts(result.lastInsertId, result.rowsAffected);
    const header = { fieldCount: 0, affectedRows, insertId, info: '', serverStatus: 0, warningStatus: result.warningCount || 0, changedRows: 0 };
    return { rows: [header], insertId, affectedRows };
  };
}

const ACCESS_MODES = { 'read only': true, 'read write': false };

/**
 * drizzle-orm/mysql-proxy's drizzle(callback, config), whose selects parse
 * the text of drizzle json() columns, as drizzle-orm/mysql2 gets them parsed
 * by mysql2. MariaDB stores JSON as LONGTEXT (mysql2 learns from MariaDB's
 * extended column metadata that it is JSON; the gateway does not pass that
 * on), so the adapter goes by the query's own fields instead.
 */
function proxyDatabase(callback, config) {
  const { drizzle: proxyDrizzle } = require('drizzle-orm/mysql-proxy');
  const { is, Column } = require('drizzle-orm');
  const { MySqlJson } = require('drizzle-orm/mysql-core');
  const db = proxyDrizzle(callback, config);
  const { session } = db;
  const prepareQuery = session.prepareQuery.bind(session);
  session.prepareQuery = (query, fields, ...rest) => {
    const prepared = prepareQuery(query, fields, ...rest);
    const json = (fields || []).flatMap(({ field }, i) => (is(field, Column) && is(field, MySqlJson) ? [i] : []));
    if (json.length > 0) {
      const run = prepared.client;
      prepared.client = async (sql, params, method) => {
        const answer = await run(sql, params, method);
        if (method === 'all') {
          for (const row of answer.rows) {
            for (const i of json) if (typeof row[i] === 'string') row[i] = JSON.parse(row[i]);
          }
        }
        return answer;
      };
    }
    return prepared;
  };
  return db;
}

/**
 * A Drizzle database (drizzle-orm/mysql-proxy) over a sqlgate Client, whose
 * transaction(fn, config) runs on Client.transaction(). `config` is drizzle's
 * (schema, logger, casing) plus `deadlineMs` for every query.
 */
function drizzle(executor, config = {}) {
  const { TransactionRollbackError } = require('drizzle-orm/errors');
  const { deadlineMs, ...drizzleConfig } = config;
  const db = proxyDatabase(drizzleCallback(executor, { deadlineMs }), drizzleConfig);
  if (typeof executor.transaction === 'function') {
    // fn(tx): tx is a Drizzle database bound to the transaction, with rollback().
    // options: Client.transaction()'s (retries, onRetry, isolation, readOnly,
    // idleTimeoutMs) and drizzle's isolationLevel / accessMode.
    db.transaction = (fn, options = {}) => {
      const { isolationLevel, accessMode, withConsistentSnapshot, ...ours } = options;
      if (withConsistentSnapshot) throw new Error('sqlgate: withConsistentSnapshot is not supported (the gateway starts transactions itself)');
      if (isolationLevel && ours.isolation === undefined) ours.isolation = isolationLevel;
      if (accessMode && ours.readOnly === undefined) ours.readOnly = ACCESS_MODES[accessMode];
      return executor.transaction((tx) => {
        const txdb = proxyDatabase(drizzleCallback(tx, { deadlineMs }), drizzleConfig);
        txdb.rollback = () => { throw new TransactionRollbackError(); };
        txdb.transaction = () => { throw new Error('sqlgate: nested transactions (savepoints) are not supported'); };
        return fn(txdb);
      }, ours);
    };
  }
  return db;
}

module.exports = { drizzleCallback, drizzle };
