// An ES module in TypeScript (.mts, module node16): `sqlgate-client` and
// `sqlgate-client/drizzle` resolve through package.json "exports" (no
// `paths` here), as they do for an application that installed the package.
// Compiled by test/types.test.js (tsconfig.drizzle.json).
import { Client, Decimal, SqlgateError, SqlgateDriverError, status } from 'sqlgate-client';
import sqlgate from 'sqlgate-client';
import { drizzle, drizzleCallback } from 'sqlgate-client/drizzle';
import { mysqlTable, int, json } from 'drizzle-orm/mysql-core';

const docs = mysqlTable('docs', { id: int('id').primaryKey(), body: json('body').$type<{ a: number }>() });

export async function esm(target: string): Promise<number> {
  const client: Client = new sqlgate.Client(target);
  const db = drizzle(client);
  const rows: { id: number; body: { a: number } | null }[] = await db.select().from(docs);
  const callback = drizzleCallback(client);
  try {
    await client.execute('SELECT ?', [new Decimal('1.5')]);
  } catch (error) {
    if (error instanceof SqlgateDriverError && error.code === 'ER_DUP_ENTRY') return -1;
    if (error instanceof SqlgateError && error.grpcCode === status.ABORTED) return -2;
  }
  client.close();
  return rows.length + (typeof callback === 'function' ? 1 : 0);
}
