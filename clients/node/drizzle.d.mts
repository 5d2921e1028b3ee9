// Types of the Drizzle adapter's ES module entry (drizzle.mjs): the same declarations as drizzle.d.ts,
// kept apart so that drizzle-orm's types resolve as ES modules here (test/types.test.js checks they match).
import type { MySqlRemoteDatabase, RemoteCallback } from 'drizzle-orm/mysql-proxy';
import type { DrizzleConfig } from 'drizzle-orm/utils';
import type { Client, Transaction, TransactionHelperOptions } from './index.js';

export interface DrizzleAdapterConfig {
  /** Deadline of every query in milliseconds (default: the client's deadlineMs). */
  deadlineMs?: number;
}

/** The callback for drizzle-orm/mysql-proxy's drizzle(callback), over a Client (autocommit) or a transaction's tx. */
export declare function drizzleCallback(executor: Client | Transaction, config?: DrizzleAdapterConfig): RemoteCallback;

/** Drizzle's transaction config, plus Client.transaction()'s options (retries, onRetry, ...). */
export interface DrizzleTransactionOptions extends TransactionHelperOptions {
  isolationLevel?: 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';
  accessMode?: 'read only' | 'read write';
}

/** The database handed to db.transaction(fn): queries run in the gateway transaction. */
export type SqlgateDrizzleTransaction<TSchema extends Record<string, unknown> = Record<string, never>> =
  Omit<MySqlRemoteDatabase<TSchema>, 'transaction'> & {
    /** Rolls back: throws drizzle's TransactionRollbackError, which db.transaction rethrows. */
    rollback(): never;
  };

/** A Drizzle database whose transaction() runs on Client.transaction(): commit, rollback, reruns on ABORTED. */
export type SqlgateDrizzleDatabase<TSchema extends Record<string, unknown> = Record<string, never>> =
  Omit<MySqlRemoteDatabase<TSchema>, 'transaction'> & {
    transaction<T>(fn: (tx: SqlgateDrizzleTransaction<TSchema>) => Promise<T>, options?: DrizzleTransactionOptions): Promise<T>;
  };

export declare function drizzle<TSchema extends Record<string, unknown> = Record<string, never>>(
  client: Client,
  config?: DrizzleConfig<TSchema> & DrizzleAdapterConfig,
): SqlgateDrizzleDatabase<TSchema>;
export declare function drizzle<TSchema extends Record<string, unknown> = Record<string, never>>(
  tx: Transaction,
  config?: DrizzleConfig<TSchema> & DrizzleAdapterConfig,
): Omit<MySqlRemoteDatabase<TSchema>, 'transaction'>;
