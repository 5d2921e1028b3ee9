// Compiled with `tsc --noEmit` (test/types.test.js, and against the packed
// package in test/pack.test.js): the Drizzle adapter as a TypeScript user sees
// it. drizzle-orm's own .d.ts files need skipLibCheck (see tsconfig.drizzle.json).
import { Client } from 'sqlgate-client';
import { drizzle, drizzleCallback } from 'sqlgate-client/drizzle';
import { mysqlTable, int, varchar } from 'drizzle-orm/mysql-core';
import { eq } from 'drizzle-orm';
import { drizzle as proxyDrizzle } from 'drizzle-orm/mysql-proxy';

const client = new Client('localhost:50051', { token: 't' });
const users = mysqlTable('users', { id: int('id').primaryKey(), name: varchar('name', { length: 64 }).notNull() });

export async function orm(): Promise<string> {
  const db = drizzle(client, { deadlineMs: 1000 });
  const rows: { id: number; name: string }[] = await db.select().from(users).where(eq(users.id, 1));
  const n: number = await db.transaction(async (tx) => {
    await tx.update(users).set({ name: 'x' }).where(eq(users.id, 1));
    if (rows.length === 0) tx.rollback();
    return 1;
  }, { retries: 2, isolationLevel: 'serializable', onRetry: (error) => console.log(error.errno) });
  const direct = proxyDrizzle(drizzleCallback(client, { deadlineMs: 1000 }));
  await direct.insert(users).values({ id: 2, name: 'y' });
  await client.transaction(async (tx) => {
    await drizzle(tx).insert(users).values({ id: n, name: 'z' });
  });
  // @ts-expect-error: a drizzle transaction option that does not exist
  await db.transaction(async () => 1, { isolationLevel: 'chaotic' });
  return rows[0].name;
}
