import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { ChunkPlan } from './chunking.ts';
import type { ChunkRow, Database, FileRow, FileState } from './db/schema.ts';
import { clearStaged } from './stage.ts';
import type { Reject } from './validation.ts';

type Db = Kysely<Database> | Transaction<Database>;

export interface FileIdentity {
  bucket: string;
  key: string;
  versionId: string;
  etag: string;
}

export interface NewFileFields extends FileIdentity {
  size: number;
  dataset: string | null;
  state: FileState;
  error?: string | null;
  /** Where S3 puts this version among its key's versions (see `versionOrder`). */
  lastModified?: Date;
  sequencer?: string;
}

/** Registers an object version once; a second registration returns the existing row and `created: false`. */
export async function registerFile(
  db: Db,
  file: NewFileFields,
): Promise<{ file: FileRow; created: boolean }> {
  const inserted = await db
    .insertInto('dropload.file')
    .values({
      bucket: file.bucket,
      key: file.key,
      version_id: file.versionId,
      etag: file.etag,
      size: file.size,
      dataset: file.dataset,
      state: file.state,
      error: file.error ?? null,
      columns: null,
      chunk_count: null,
      rows_expected: null,
      updated_at: sql<Date>`now()`,
      finished_at: file.state === 'failed' || file.state === 'skipped' ? sql<Date>`now()` : null,
      last_modified: file.lastModified ?? null,
      sequencer: file.sequencer ?? null,
    })
    .onConflict((oc) => oc.constraint('file_version_unique').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { file: inserted, created: true };
  const existing = await db
    .selectFrom('dropload.file')
    .selectAll()
    .where('bucket', '=', file.bucket)
    .where('key', '=', file.key)
    .where('version_id', '=', file.versionId)
    .where('etag', '=', file.etag)
    .executeTakeFirstOrThrow();
  return { file: existing, created: false };
}

/** A failed file none of whose chunks loaded: announcing it again may load it (nothing of it is in the tables). */
export function retriable(file: FileRow): boolean {
  return file.state === 'failed' && file.chunks_done === 0;
}

/** Resets a retriable failed file for a new split; its chunk plan is made again. */
export async function retryFile(db: Kysely<Database>, id: number): Promise<FileRow> {
  return db.transaction().execute(async (trx) => {
    await trx.deleteFrom('dropload.chunk').where('file_id', '=', id).execute();
    await trx.deleteFrom('dropload.reject').where('file_id', '=', id).execute();
    return (
      trx
        .updateTable('dropload.file')
        .set({
          state: 'splitting',
          error: null,
          chunk_count: null,
          rows_read: 0,
          rows_inserted: 0,
          rows_updated: 0,
          rows_rejected: 0,
          finished_at: null,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', id)
        .where('state', '=', 'failed')
        .returningAll()
        .executeTakeFirst()
        // Another delivery reset it first: go on with the row as that one left it.
        .then(
          async (row) =>
            row ??
            (await trx
              .selectFrom('dropload.file')
              .selectAll()
              .where('id', '=', id)
              .executeTakeFirstOrThrow()),
        )
    );
  });
}

/**
 * The sort keys that order one key's versions as S3 does (never by which split or chunk ran first), for
 * `replace` and "the newest version of a key". Compared in turn:
 * 1. the version's Last-Modified (the split's HEAD of exactly that version): S3's own time for the write
 *    (for a multipart upload, when it was started);
 * 2. within one second (Last-Modified has whole seconds), the `sequencer` of the event S3 sent for it:
 *    S3 orders one key's events by it, a greater value being later, values of unequal length compared
 *    after right-padding the shorter with zeros (the S3 event notification docs);
 * 3. the ledger id, where S3 told neither (files registered before these were kept).
 */
export function versionOrder(table?: string): RawBuilder<unknown>[] {
  const col = (c: string) => sql.ref(table ? `${table}.${c}` : c);
  return [
    sql`coalesce(${col('last_modified')}, '-infinity'::timestamptz)`,
    sql`upper(rpad(coalesce(${col('sequencer')}, ''), 64, '0')) collate "C"`,
    col('id'),
  ];
}

/** The newest version of the file's key that S3 orders after the file, among those in one of `states`. */
export async function newerVersion(db: Db, fileId: number, states: readonly FileState[]) {
  const [f, me] = [versionOrder('f'), versionOrder('me')];
  const { rows } = await sql<Pick<FileRow, 'id' | 'version_id' | 'etag' | 'state'>>`
    select f.id, f.version_id, f.etag, f.state from dropload.file f
    join dropload.file me on me.id = ${fileId} and f.bucket = me.bucket and f.key = me.key
    where f.id <> me.id and f.state in (${sql.join(states)}) and (${sql.join(f)}) > (${sql.join(me)})
    order by ${sql.join(f.map((e) => sql`${e} desc`))} limit 1`.execute(db);
  return rows[0];
}

export async function getFile(db: Db, id: number): Promise<FileRow | undefined> {
  return db.selectFrom('dropload.file').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Fails a file that has not finished; what it staged (`publish: 'file'`) goes with it, in one transaction. */
export async function failFile(db: Db, id: number, error: string): Promise<void> {
  const fail = async (trx: Transaction<Database>) => {
    const file = await trx
      .updateTable('dropload.file')
      .set({ state: 'failed', error, updated_at: sql<Date>`now()`, finished_at: sql<Date>`now()` })
      .where('id', '=', id)
      .where('state', 'not in', ['loaded', 'failed'])
      .returning('dataset')
      .executeTakeFirst();
    if (file?.dataset) await clearStaged(trx, file.dataset, id);
  };
  await (db.isTransaction ? fail(db as Transaction<Database>) : db.transaction().execute(fail));
}

/** Sets a file's final state inside the caller's transaction (used when publishing decides the outcome). */
export async function finishFile(
  trx: Transaction<Database>,
  id: number,
  state: 'loaded' | 'failed' | 'skipped',
  error: string | null,
) {
  await trx
    .updateTable('dropload.file')
    .set({ state, error, updated_at: sql<Date>`now()`, finished_at: sql<Date>`now()` })
    .where('id', '=', id)
    .execute();
}

/** Stores the split's chunk plan and moves the file to `loading` (or straight to `loaded` when it has no rows). */
export async function recordPlan(
  trx: Transaction<Database>,
  id: number,
  chunks: ChunkPlan[],
  columns: string[] | null,
  records: number,
  note: string | null = null,
) {
  if (chunks.length > 0) {
    await trx
      .insertInto('dropload.chunk')
      .values(
        chunks.map((c) => ({
          file_id: id,
          idx: c.index,
          start_byte: c.start,
          end_byte: c.end,
          first_line: c.firstLine,
          state: 'pending' as const,
          oversized: c.oversized,
          unterminated: c.unterminated,
          error: null,
          loaded_at: null,
        })),
      )
      .onConflict((oc) => oc.columns(['file_id', 'idx']).doNothing())
      .execute();
  }
  const empty = chunks.length === 0;
  await trx
    .updateTable('dropload.file')
    .set({
      state: empty ? 'loaded' : 'loading',
      columns,
      chunk_count: chunks.length,
      rows_expected: records,
      error: note,
      updated_at: sql<Date>`now()`,
      finished_at: empty ? sql<Date>`now()` : null,
    })
    .where('id', '=', id)
    .where('state', 'in', ['queued', 'splitting'])
    .execute();
}

export async function pendingChunks(db: Db, fileId: number): Promise<ChunkRow[]> {
  return db
    .selectFrom('dropload.chunk')
    .selectAll()
    .where('file_id', '=', fileId)
    .where('state', '=', 'pending')
    .orderBy('idx')
    .execute();
}

export async function isChunkLoaded(db: Db, fileId: number, idx: number): Promise<boolean> {
  const row = await db
    .selectFrom('dropload.chunk')
    .select('state')
    .where('file_id', '=', fileId)
    .where('idx', '=', idx)
    .executeTakeFirst();
  return row?.state === 'loaded';
}

/**
 * Claims a chunk inside the transaction that writes its rows. A concurrent or later delivery of the
 * same chunk waits on the row lock, then finds it loaded and claims nothing: exactly once. The byte
 * range must match too: a message left from an earlier plan of a re-split file claims nothing.
 */
export async function claimChunk(
  trx: Transaction<Database>,
  chunk: { fileId: number; index: number; start: number; end: number },
): Promise<boolean> {
  const claimed = await trx
    .updateTable('dropload.chunk')
    .set({ state: 'loaded', loaded_at: sql<Date>`now()`, error: null })
    .where('file_id', '=', chunk.fileId)
    .where('idx', '=', chunk.index)
    .where('start_byte', '=', chunk.start)
    .where('end_byte', '=', chunk.end)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  return Number(claimed.numUpdatedRows) === 1;
}

export interface ChunkCounts {
  read: number;
  inserted: number;
  updated: number;
  rejected: number;
}

/** Adds a claimed chunk's counts to its file; returns the file, `loaded` when this was its last chunk. */
export async function completeChunk(
  trx: Transaction<Database>,
  fileId: number,
  idx: number,
  counts: ChunkCounts,
): Promise<FileRow> {
  await trx
    .updateTable('dropload.chunk')
    .set({
      rows_read: counts.read,
      rows_inserted: counts.inserted,
      rows_updated: counts.updated,
      rows_rejected: counts.rejected,
    })
    .where('file_id', '=', fileId)
    .where('idx', '=', idx)
    .execute();
  return trx
    .updateTable('dropload.file')
    .set((eb) => ({
      chunks_done: eb('chunks_done', '+', 1),
      rows_read: eb('rows_read', '+', counts.read),
      rows_inserted: eb('rows_inserted', '+', counts.inserted),
      rows_updated: eb('rows_updated', '+', counts.updated),
      rows_rejected: eb('rows_rejected', '+', counts.rejected),
      state: sql<FileState>`case when chunks_done + 1 >= chunk_count and state = 'loading' then 'loaded' else state end`,
      finished_at: sql<Date | null>`case when chunks_done + 1 >= chunk_count then now() else finished_at end`,
      updated_at: sql<Date>`now()`,
    }))
    .where('id', '=', fileId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Notes a failed attempt on the chunk and its file, where an operator looks (status, report). */
export async function recordChunkError(db: Db, fileId: number, idx: number, error: string): Promise<void> {
  await db
    .updateTable('dropload.chunk')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), error }))
    .where('file_id', '=', fileId)
    .where('idx', '=', idx)
    .execute();
  await db
    .updateTable('dropload.file')
    .set({ error: `chunk ${idx}: ${error}`, updated_at: sql<Date>`now()` })
    .where('id', '=', fileId)
    .execute();
}

// Postgres text cannot hold NUL; a reject must still be stored, so NUL shows as U+FFFD.
export const withoutNul = (text: string): string => text.replaceAll('\u0000', '\uFFFD');

export async function insertRejects(
  trx: Transaction<Database>,
  fileId: number,
  idx: number,
  rejects: Reject[],
) {
  const BATCH = 1000;
  for (let i = 0; i < rejects.length; i += BATCH) {
    await trx
      .insertInto('dropload.reject')
      .values(
        rejects.slice(i, i + BATCH).map((r) => ({
          file_id: fileId,
          chunk_idx: idx,
          line: r.line,
          column: r.column,
          reason: withoutNul(r.reason),
          raw: withoutNul(r.raw),
        })),
      )
      .execute();
  }
}

export async function listFiles(db: Db, limit = 100): Promise<FileRow[]> {
  return db.selectFrom('dropload.file').selectAll().orderBy('id', 'desc').limit(limit).execute();
}

export async function filesByKey(db: Db, bucket: string, keys: string[]): Promise<FileRow[]> {
  if (keys.length === 0) return [];
  return db
    .selectFrom('dropload.file')
    .selectAll()
    .where('bucket', '=', bucket)
    .where('key', 'in', keys)
    .orderBy('id')
    .execute();
}

export async function rejectsOf(db: Db, fileId: number, limit?: number) {
  let q = db.selectFrom('dropload.reject').selectAll().where('file_id', '=', fileId).orderBy('line');
  if (limit !== undefined) q = q.limit(limit);
  return q.execute();
}
