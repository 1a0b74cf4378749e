import { type Kysely, sql, type Transaction } from 'kysely';
import { clock, getFile, withoutNul } from './ledger.ts';
import type { Database, FileRow, OrphanRow } from './schema.ts';

/**
 * `dropload.orphan`: rows of a multi-table dataset that wait for their parent. A chunk parks them in its
 * own transaction and keeps its file `loading`; a retry claims them `for update skip locked` and deletes
 * the ones it writes (or turns into rejects) in one transaction. The file is `loaded` once its chunks are
 * done and no row waits. What the rows mean and how they are written is the load stage's (`load/orphans.ts`).
 */

/** A row to park: where it came from, its target table, the row as the writer stores it, what it waits for. */
export interface ParkedRow {
  chunkIdx: number;
  line: number;
  target: string;
  row: unknown;
  missing: string;
  raw: string;
}

/** A claimed waiting row, with whether its wait is over and how many seconds of it are left. */
export type ClaimedRow = Pick<
  OrphanRow,
  'id' | 'chunk_idx' | 'line' | 'target' | 'row' | 'missing' | 'raw'
> & {
  expired: boolean;
  seconds_left: number;
};

const BATCH = 1000;

export async function parkRows(
  trx: Transaction<Database>,
  fileId: number,
  rows: ParkedRow[],
  waitSeconds: number,
): Promise<void> {
  // One instant for the batch, as the database's `now()` (the transaction's start) sees it.
  const expiresAt = sql<Date>`now() + make_interval(secs => ${waitSeconds})`;
  for (let i = 0; i < rows.length; i += BATCH) {
    await trx
      .insertInto('dropload.orphan')
      .values(
        rows.slice(i, i + BATCH).map((r) => ({
          file_id: fileId,
          chunk_idx: r.chunkIdx,
          line: r.line,
          target: r.target,
          row: JSON.stringify(r.row),
          missing: withoutNul(r.missing),
          raw: withoutNul(r.raw),
          expires_at: expiresAt,
        })),
      )
      .execute();
  }
}

export async function waitingCount(db: Kysely<Database>, fileId: number): Promise<number> {
  const row = await db
    .selectFrom('dropload.orphan')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('file_id', '=', fileId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

const waitingOf = (db: Kysely<Database>, fileId: number) =>
  db.selectFrom('dropload.orphan').select('id').where('file_id', '=', fileId);

/** After the last chunk: a file with waiting rows stays `loading` (same transaction, so `loaded` is never seen). */
export async function holdWhileWaiting(trx: Transaction<Database>, file: FileRow): Promise<FileRow> {
  if (file.state !== 'loaded') return file;
  const held = await trx
    .updateTable('dropload.file')
    .set({ state: 'loading', finished_at: null, updated_at: clock })
    .where('id', '=', file.id)
    .where((eb) => eb.exists(waitingOf(trx, file.id)))
    .returningAll()
    .executeTakeFirst();
  return held ?? file;
}

/** Finishes a file whose chunks are done and whose rows no longer wait. */
export async function finishIfDone(trx: Transaction<Database>, fileId: number): Promise<FileRow | undefined> {
  const done = await trx
    .updateTable('dropload.file')
    .set({
      state: 'loaded',
      finished_at: clock,
      updated_at: clock,
    })
    .where('id', '=', fileId)
    .where('state', '=', 'loading')
    .where((eb) => eb('chunks_done', '>=', eb.ref('chunk_count')))
    .where((eb) => eb.not(eb.exists(waitingOf(trx, fileId))))
    .returning('id')
    .executeTakeFirst();
  return done ? getFile(trx, fileId) : undefined;
}

/** Claims the file's waiting rows no other retry holds, oldest first, until this transaction ends. */
export async function claimWaiting(trx: Transaction<Database>, fileId: number): Promise<ClaimedRow[]> {
  return trx
    .selectFrom('dropload.orphan')
    .select(['id', 'chunk_idx', 'line', 'target', 'row', 'missing', 'raw'])
    .select([
      sql<boolean>`expires_at <= now()`.as('expired'),
      sql<number>`extract(epoch from expires_at - now())::float8`.as('seconds_left'),
    ])
    .where('file_id', '=', fileId)
    .orderBy('id')
    .forUpdate()
    .skipLocked()
    .execute();
}

/** A claimed row still waits, now perhaps for another parent. */
export async function noteMissing(trx: Transaction<Database>, id: number, missing: string): Promise<void> {
  await trx
    .updateTable('dropload.orphan')
    .set({ missing: withoutNul(missing) })
    .where('id', '=', id)
    .execute();
}

/** Claimed rows written, rejected or gone: they wait no more. */
export async function dropWaiting(trx: Transaction<Database>, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .deleteFrom('dropload.orphan')
    .where((eb) => eb('id', '=', eb.fn.any(eb.val(ids))))
    .execute();
}

/** Claimed rows that wait on: one more attempt each. */
export async function countAttempt(trx: Transaction<Database>, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .updateTable('dropload.orphan')
    .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
    .where((eb) => eb('id', '=', eb.fn.any(eb.val(ids))))
    .execute();
}
