import { sql, type Transaction } from 'kysely';
import { classifyError } from '../../core/errors.ts';
import type { Reject } from '../../ledger/ledger.ts';
import type { Database } from '../../ledger/schema.ts';

/** What a write under a savepoint came to: its value, or the database's refusal of a row's values. */
export type Attempt<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Runs `fn` under a savepoint of the caller's transaction. An error `classifyError` calls `data`
 * (SQLSTATE class 22/23: a row's values are at fault) undoes what `fn` wrote and comes back as the
 * refusal, the transaction still usable; any other error propagates as it is (the transaction is
 * doomed then anyway, and the caller's retry decides).
 */
export function withSavepoint<T>(
  trx: Transaction<Database>,
  name: string,
  fn: () => Promise<T>,
): Promise<Attempt<T>> {
  return underSavepoint(trx, name, fn, false);
}

/**
 * Runs `fn` under a savepoint and undoes whatever it wrote, to learn what writing would do: its value,
 * or the database's refusal of a row's values (the transaction still usable), as `withSavepoint`.
 */
export function rehearse<T>(
  trx: Transaction<Database>,
  name: string,
  fn: () => Promise<T>,
): Promise<Attempt<T>> {
  return underSavepoint(trx, name, fn, true);
}

/** `fn` under a savepoint: a refusal of a row's values is always undone, its writes too when `undo`. */
async function underSavepoint<T>(
  trx: Transaction<Database>,
  name: string,
  fn: () => Promise<T>,
  undo: boolean,
): Promise<Attempt<T>> {
  const savepoint = sql.id(name);
  await sql`savepoint ${savepoint}`.execute(trx);
  let tried: Attempt<T>;
  try {
    tried = { ok: true, value: await fn() };
  } catch (err) {
    if (classifyError(err) !== 'data') throw err;
    tried = { ok: false, error: err };
  }
  if (undo || !tried.ok) await sql`rollback to savepoint ${savepoint}`.execute(trx);
  await sql`release savepoint ${savepoint}`.execute(trx);
  return tried;
}

/**
 * Runs `fn` under a savepoint and keeps what it wrote only if `keep` accepts its value; otherwise
 * undoes it. An error propagates with the savepoint still open: the caller's own savepoint (or
 * transaction) undoes it, as rolling back to an enclosing savepoint ends the ones inside it.
 */
export async function keepIf<T>(
  trx: Transaction<Database>,
  name: string,
  fn: () => Promise<T>,
  keep: (value: T) => boolean,
): Promise<{ kept: boolean; value: T }> {
  const savepoint = sql.id(name);
  await sql`savepoint ${savepoint}`.execute(trx);
  const value = await fn();
  const kept = keep(value);
  if (!kept) await sql`rollback to savepoint ${savepoint}`.execute(trx);
  await sql`release savepoint ${savepoint}`.execute(trx);
  return { kept, value };
}

/**
 * Writes `items` with `attempt`, isolating the ones the database refuses: a batch whose attempt is
 * refused for a row's values is rolled back to its savepoint and halved, so one bad item costs
 * O(log n) attempts and reaches `onRefused` while its neighbours are written. Returns what each
 * accepted attempt returned, in order.
 */
export async function bisect<T, R>(
  trx: Transaction<Database>,
  savepoint: string,
  items: T[],
  attempt: (batch: T[]) => Promise<R>,
  onRefused: (item: T, error: unknown) => void,
): Promise<R[]> {
  const accepted: R[] = [];
  const write = async (batch: T[]): Promise<void> => {
    if (batch.length === 0) return;
    const tried = await withSavepoint(trx, savepoint, () => attempt(batch));
    if (tried.ok) {
      accepted.push(tried.value);
    } else if (batch.length === 1) {
      onRefused(batch[0] as T, tried.error);
    } else {
      const half = batch.length >> 1;
      await write(batch.slice(0, half));
      await write(batch.slice(half));
    }
  };
  await write(items);
  return accepted;
}

/** The reject for a row (or record) the database refused on its own: the server's message and detail, and its column. */
export function dbReject(row: { line: number; raw: string }, err: unknown): Reject {
  const column = (err as { column?: string }).column ?? null;
  const detail = (err as { detail?: string }).detail;
  const reason = `database refused the row: ${(err as Error).message}${detail ? ` (${detail})` : ''}`;
  return { line: row.line, column, kind: 'refused', reason, raw: row.raw };
}
