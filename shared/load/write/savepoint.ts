import { sql, type Transaction } from 'kysely';
import { classifyError } from '../../core/errors.ts';
import type { Database } from '../../ledger/schema.ts';

/** What a write under a savepoint came to: its value, or the database's refusal of a row's values. */
export type Attempt<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `fn` under a savepoint of the caller's transaction. An error `classifyError` calls `data`
 * (SQLSTATE class 22/23: a row's values are at fault) undoes what `fn` wrote and comes back as the
 * refusal, the transaction still usable; any other error propagates as it is (the transaction is
 * doomed then anyway, and the caller's retry decides).
 */
export async function withSavepoint<T>(
  trx: Transaction<Database>,
  name: string,
  fn: () => Promise<T>,
): Promise<Attempt<T>> {
  const savepoint = sql.id(name);
  await sql`savepoint ${savepoint}`.execute(trx);
  try {
    const value = await fn();
    await sql`release savepoint ${savepoint}`.execute(trx);
    return { ok: true, value };
  } catch (err) {
    if (classifyError(err) !== 'data') throw err;
    await sql`rollback to savepoint ${savepoint}`.execute(trx);
    await sql`release savepoint ${savepoint}`.execute(trx);
    return { ok: false, error: err };
  }
}
