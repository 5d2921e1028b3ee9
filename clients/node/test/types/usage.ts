// Compiled with `tsc --noEmit` and skipLibCheck off (test/types.test.js, and
// against the packed package in test/pack.test.js): the public API as a
// TypeScript user sees it, without drizzle-orm.
import { Client, Decimal, SqlgateError, status, drizzleCallback } from 'sqlgate-client';
import type { ExecuteResult, SqlValue, Transaction, ClientOptions } from 'sqlgate-client';

const options: ClientOptions = { token: 'secret', tls: { ca: '-----BEGIN CERTIFICATE-----', serverName: 'db' }, deadlineMs: 5000 };
const client = new Client('localhost:50051', options);
new Client('localhost:50051', { tls: true });

async function plain(): Promise<bigint> {
  const result: ExecuteResult = await client.execute('SELECT ?, ?', [1n, new Decimal('1.50')], { deadlineMs: 100, maxRows: 10 });
  const cell: SqlValue = result.rows[0][0];
  for await (const row of client.stream('SELECT 1')) { const first: SqlValue = row[0]; void first; }
  void cell;
  const id: string = await client.begin({ isolation: 'READ COMMITTED', readOnly: true });
  const rolledBack: boolean = await client.rollback(id);
  void rolledBack;
  const [batch] = await client.executeBatch([['INSERT INTO t VALUES (?)', [1]], { sql: 'SELECT 1' }]);
  return batch.rowsAffected + result.lastInsertId;
}

async function helper(): Promise<number> {
  return client.transaction(async (tx: Transaction) => {
    await tx.execute('UPDATE t SET n = n + 1 WHERE id = ?', [1]);
    return tx.attempt;
  }, { retries: 3, onRetry: (error: SqlgateError, attempt: number) => console.log(error.reason, error.errno, error.sqlstate, attempt) });
}

function errors(error: unknown): string | null {
  if (error instanceof SqlgateError && error.code === status.ABORTED) return error.reason;
  return null;
}

async function callback(): Promise<number> {
  const cb = drizzleCallback(client, { deadlineMs: 1000 });
  const { rows } = await cb('SELECT 1', [], 'all');
  return rows.length;
}

async function streamed(): Promise<string> {
  const tx = client.transactionStream({ isolation: 'READ COMMITTED' });
  const { transactionId } = await tx.begun;
  const result = await tx.execute('SELECT ?', [1], { maxRows: 10 });
  const fresh = await client.execute('SELECT 1', [], { readConsistency: { minCommitToken: result.commitToken } });
  void fresh;
  const token: string = await tx.commit();
  return transactionId + token;
}

// Misuse the definitions must reject:
// @ts-expect-error: a read consistency is strong, maxStalenessMs or minCommitToken
client.execute('SELECT 1', [], { readConsistency: { staleness: 5 } });
// @ts-expect-error: params are SQL values, not objects
client.execute('SELECT ?', [{ a: 1 }]);
// @ts-expect-error: tls is a boolean or TlsOptions
new Client('x', { tls: 'yes' });
async function wrong(): Promise<void> {
  // @ts-expect-error: rollback answers a boolean
  const answer: string = await client.rollback('id');
  void answer;
}

export { plain, helper, errors, callback, wrong, streamed };
