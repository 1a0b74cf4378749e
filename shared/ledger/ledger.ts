import { type ExpressionBuilder, type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { FileRejectedError } from '../core/errors.ts';
import { capped, withoutNul } from '../core/text.ts';

// Defined with the other text helpers (formats' file checks use it too); every ledger write goes through it.
export { withoutNul };

import type { ChunkPlan } from '../formats/chunking.ts';
import type { ChunkRow, Database, FileRow, FileState, FinalState, RejectKind } from './schema.ts';
import { clearStaged } from './stage.ts';

/**
 * The time now, for every ledger timestamp that measures work. `now()` is the transaction's start, so a
 * chunk whose COPY took a minute would finish the moment it began; the column defaults (`created_at`)
 * stay `now()`, which is the same instant for the one-statement inserts that set them.
 */
export const clock = sql<Date>`clock_timestamp()`;

/**
 * A message as the ledger stores it (a file's note or error, a chunk's error, a reject's reason): NUL
 * replaced and at most LEDGER_TEXT_MAX characters, so one 20,000-column header cannot make every
 * `status` and receipt hundreds of KB. The whole text is where it came from: the file's header in
 * `dropload.file.columns`, a reject's original line in `raw` (never capped: `rejects --csv` prints it).
 */
export const messageText = (text: string): string => capped(withoutNul(text));

const messageOrNull = (text: string | null | undefined): string | null =>
  text === null || text === undefined ? null : messageText(text);

const storableOrNull = (text: string | null | undefined): string | null =>
  text === null || text === undefined ? null : withoutNul(text);

/** A data line that did not load, as the ledger stores it: where, its kind and why, and the line as read. */
export interface Reject {
  line: number;
  column: string | null;
  kind: RejectKind;
  reason: string;
  raw: string;
  /** The record's key as `row_key` stores it, for a keyed dataset when the record could be read (`load/row-keys.ts`). */
  rowKey?: string;
}

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
  /** A failed file's: what to do about it. */
  action?: string | null;
  /** Where S3 puts this version among its key's versions (see `versionOrder`). */
  lastModified?: Date;
  sequencer?: string;
}

/** The database's clock: what the ledger's timestamps are compared with, whatever this machine's clock says. */
export async function ledgerNow(db: Kysely<Database>): Promise<Date> {
  const { rows } = await sql<{ now: Date }>`select ${clock} as now`.execute(db);
  return new Date((rows[0] as { now: Date }).now);
}

/** Registers an object version once; a second registration returns the existing row and `created: false`. */
export async function registerFile(
  db: Kysely<Database>,
  file: NewFileFields,
): Promise<{ file: FileRow; created: boolean }> {
  const id = {
    bucket: withoutNul(file.bucket),
    key: withoutNul(file.key),
    version_id: withoutNul(file.versionId),
    etag: withoutNul(file.etag),
  };
  const inserted = await db
    .insertInto('dropload.file')
    .values({
      ...id,
      size: file.size,
      dataset: file.dataset,
      state: file.state,
      error: messageOrNull(file.error),
      action: file.action ?? null,
      columns: null,
      chunk_count: null,
      rows_expected: null,
      updated_at: clock,
      finished_at: file.state === 'failed' || file.state === 'skipped' ? clock : null,
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
    .where('bucket', '=', id.bucket)
    .where('key', '=', id.key)
    .where('version_id', '=', id.version_id)
    .where('etag', '=', id.etag)
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
          action: null,
          note: null,
          chunk_count: null,
          rows_read: 0,
          rows_inserted: 0,
          rows_updated: 0,
          rows_unchanged: 0,
          rows_waiting: 0,
          rows_rejected: 0,
          finished_at: null,
          updated_at: clock,
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

/**
 * The newest version of the file's key that S3 orders after the file, among those in one of `states`.
 * Raw SQL: the order is a row comparison of expressions (`(a, b, c) > (d, e, f)`, one with a collation),
 * which Kysely's builders do not express (their tuples compare columns or values).
 */
export async function newerVersion(db: Kysely<Database>, fileId: number, states: readonly FileState[]) {
  const [f, me] = [versionOrder('f'), versionOrder('me')];
  const { rows } = await sql<Pick<FileRow, 'id' | 'version_id' | 'etag' | 'state'>>`
    select f.id, f.version_id, f.etag, f.state from dropload.file f
    join dropload.file me on me.id = ${fileId} and f.bucket = me.bucket and f.key = me.key
    where f.id <> me.id and f.state in (${sql.join(states)}) and (${sql.join(f)}) > (${sql.join(me)})
    order by ${sql.join(f.map((e) => sql`${e} desc`))} limit 1`.execute(db);
  return rows[0];
}

export async function getFile(db: Kysely<Database>, id: number): Promise<FileRow | undefined> {
  return db.selectFrom('dropload.file').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Locks the file's row until the transaction ends: what changes it concurrently waits, or is seen. */
export async function lockFile(trx: Transaction<Database>, id: number): Promise<void> {
  await trx.selectFrom('dropload.file').select('id').where('id', '=', id).forUpdate().execute();
}

/** How a failure is told of a file some of whose rows were committed already (see pipeline/partial-failure.ts). */
export type PartlyLoaded = (
  file: FileRow,
  chunks: { idx: number; first_line: number; state: string }[],
) => { error: string; action: string };

/**
 * Fails a file that has not finished; what it staged (`publish: 'file'`) goes with it, in one
 * transaction. A file with rows in its table already is told by `partly`, from its row as it fails.
 */
export async function failFile(
  db: Kysely<Database>,
  id: number,
  error: string,
  action: string,
  partly?: PartlyLoaded,
): Promise<void> {
  const fail = async (trx: Transaction<Database>) => {
    if (partly) ({ error, action } = await partlyTold(trx, id, { error, action }, partly));
    const file = await trx
      .updateTable('dropload.file')
      .set({ state: 'failed', error: messageText(error), action, updated_at: clock, finished_at: clock })
      .where('id', '=', id)
      .where('state', 'not in', ['loaded', 'failed'])
      .returning('dataset')
      .executeTakeFirst();
    if (file?.dataset) await clearStaged(trx, file.dataset, id);
  };
  await (db.isTransaction ? fail(db as Transaction<Database>) : db.transaction().execute(fail));
}

async function partlyTold(
  trx: Transaction<Database>,
  id: number,
  told: { error: string; action: string },
  partly: PartlyLoaded,
): Promise<{ error: string; action: string }> {
  // Locked: a chunk committing meanwhile would make the counts told here stale.
  const file = await trx
    .selectFrom('dropload.file')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!file || file.rows_inserted + file.rows_updated === 0) return told;
  const chunks = await trx
    .selectFrom('dropload.chunk')
    .select(['idx', 'first_line', 'state'])
    .where('file_id', '=', id)
    .orderBy('idx')
    .execute();
  return partly(file, chunks);
}

/** Sets a file's final state inside the caller's transaction (used when publishing decides the outcome). */
export async function finishFile(
  trx: Transaction<Database>,
  id: number,
  state: FinalState,
  error: string | null,
  action: string | null = null,
) {
  await trx
    .updateTable('dropload.file')
    .set({ state, error: messageOrNull(error), action, updated_at: clock, finished_at: clock })
    .where('id', '=', id)
    .execute();
}

/**
 * Stores the split's chunk plan and moves the file to `loading` (or straight to `loaded` when it has no
 * rows). `expandedBytes`: a gzip file's expanded size, which its chunks' byte ranges are in.
 */
export async function recordPlan(
  trx: Transaction<Database>,
  id: number,
  chunks: ChunkPlan[],
  columns: string[] | null,
  records: number,
  note: string | null = null,
  expandedBytes: number | null = null,
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
      columns: columns === null ? null : columns.map(withoutNul),
      chunk_count: chunks.length,
      rows_expected: records,
      expanded_bytes: expandedBytes,
      error: null,
      note: messageOrNull(note),
      updated_at: clock,
      finished_at: empty ? clock : null,
    })
    .where('id', '=', id)
    // A file whose split stalled is split again when replayed.
    .where('state', 'in', ['queued', 'splitting', 'stalled'])
    .execute();
}

/** Where the file's last planned chunk ends: the bytes its chunks need. */
export async function plannedEnd(db: Kysely<Database>, fileId: number): Promise<number> {
  const row = await db
    .selectFrom('dropload.chunk')
    .select((eb) => eb.fn.max('end_byte').as('end'))
    .where('file_id', '=', fileId)
    .executeTakeFirst();
  return Number(row?.end ?? 0);
}

/** A gzip file split before the expanded size was recorded: record it once it is known. */
export async function recordExpandedBytes(
  db: Kysely<Database>,
  fileId: number,
  bytes: number,
): Promise<void> {
  await db
    .updateTable('dropload.file')
    .set({ expanded_bytes: bytes })
    .where('id', '=', fileId)
    .where('expanded_bytes', 'is', null)
    .execute();
}

export async function pendingChunks(db: Kysely<Database>, fileId: number): Promise<ChunkRow[]> {
  return db
    .selectFrom('dropload.chunk')
    .selectAll()
    .where('file_id', '=', fileId)
    .where('state', 'in', ['pending', 'dead'])
    .orderBy('idx')
    .execute();
}

/** A chunk's state and its failed deliveries so far (undefined: no such chunk). */
export async function chunkStatus(
  db: Kysely<Database>,
  fileId: number,
  idx: number,
): Promise<Pick<ChunkRow, 'state' | 'attempts'> | undefined> {
  return db
    .selectFrom('dropload.chunk')
    .select(['state', 'attempts'])
    .where('file_id', '=', fileId)
    .where('idx', '=', idx)
    .executeTakeFirst();
}

export async function isChunkLoaded(db: Kysely<Database>, fileId: number, idx: number): Promise<boolean> {
  return (await chunkStatus(db, fileId, idx))?.state === 'loaded';
}

/**
 * Claims a chunk inside the transaction that writes its rows. A concurrent or later delivery of the
 * same chunk waits on the row lock, then finds it loaded and claims nothing: exactly once. The byte
 * range must match too: a message left from an earlier plan of a re-split file claims nothing.
 * `began`: when the worker took the chunk (its clock; never later than the claim, whatever the skew).
 */
export async function claimChunk(
  trx: Transaction<Database>,
  chunk: { fileId: number; index: number; start: number; end: number },
  began: Date,
): Promise<boolean> {
  const claimed = await trx
    .updateTable('dropload.chunk')
    .set({
      state: 'loaded',
      started_at: sql<Date>`least(${began}::timestamptz, ${clock})`,
      loaded_at: clock,
      error: null,
    })
    .where('file_id', '=', chunk.fileId)
    .where('idx', '=', chunk.index)
    .where('start_byte', '=', chunk.start)
    .where('end_byte', '=', chunk.end)
    // A dead chunk's message came back from the dead-letter queue (a replay): it loads like a pending one.
    .where('state', 'in', ['pending', 'dead'])
    .executeTakeFirst();
  return Number(claimed.numUpdatedRows) === 1;
}

/** Records of a file whose rows of one table repeat a key with different values (see noteDuplicateKeys). */
export interface DuplicateKeys {
  records: number;
  /** The first such record of the chunk: its line, the table and the repeated key. */
  line: number;
  table: string;
  key: string;
}

const DUPLICATES_NOTE =
  / ?(\d+) records? had duplicate keys, each written as its last element (\(first: .*\))$/;

/**
 * Adds a chunk's records with duplicate keys to its file's note, in the chunk's transaction: one clause
 * at the end of the note, its count summed over the chunks, the first example kept. The file row is
 * locked first so that chunks committing at once each add to the other's count.
 */
export async function noteDuplicateKeys(trx: Transaction<Database>, fileId: number, d: DuplicateKeys) {
  const { note } = await trx
    .selectFrom('dropload.file')
    .select('note')
    .where('id', '=', fileId)
    .forUpdate()
    .executeTakeFirstOrThrow();
  const before = note?.match(DUPLICATES_NOTE);
  const records = d.records + Number(before?.[1] ?? 0);
  const first = before?.[2] ?? `(first: line ${d.line}, table ${d.table}, key ${d.key})`;
  const clause = `${records} ${records === 1 ? 'record' : 'records'} had duplicate keys, each written as its last element ${first}`;
  const rest = (before ? (note ?? '').slice(0, before.index) : (note ?? '')).replace(/;$/, '');
  await trx
    .updateTable('dropload.file')
    .set({ note: storableOrNull(rest === '' ? clause : `${rest}; ${clause}`) })
    .where('id', '=', fileId)
    .execute();
}

/** read = inserted + updated + unchanged + waiting + rejected: each counted where it happens. */
export interface ChunkCounts {
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  waiting: number;
  rejected: number;
}

/**
 * Amounts the counters move by; a move keeps read = inserted + updated + unchanged + waiting + rejected
 * (negative amounts: rows leaving `waiting` or `rejected` for where they went).
 */
export type CountMove = Partial<ChunkCounts>;

/** The six counters, each moved by its amount: the same columns on `dropload.chunk` and `dropload.file`. */
function counterMoves(by: ChunkCounts) {
  const move = (
    column:
      | 'rows_read'
      | 'rows_inserted'
      | 'rows_updated'
      | 'rows_rejected'
      | 'rows_unchanged'
      | 'rows_waiting',
    n: number,
  ) => sql<number>`${sql.ref(column)} + ${n}`;
  return {
    rows_read: move('rows_read', by.read),
    rows_inserted: move('rows_inserted', by.inserted),
    rows_updated: move('rows_updated', by.updated),
    rows_rejected: move('rows_rejected', by.rejected),
    rows_unchanged: move('rows_unchanged', by.unchanged),
    rows_waiting: move('rows_waiting', by.waiting),
  };
}

/**
 * The one place the row counters move, so `read = inserted + updated + unchanged + waiting + rejected` holds
 * for a file and its chunks after every transaction that changes what of it loaded. With `chunkIdx`, that chunk's counters move
 * by the same amounts; `chunkDone` ends the (claimed) chunk: it counts as done, and its file becomes
 * `loaded` when it was the last one (`stalled` while a chunk of it is dead). Returns the file as moved.
 */
export async function moveCounts(
  trx: Transaction<Database>,
  at: { fileId: number; chunkIdx?: number; chunkDone?: boolean },
  move: CountMove,
): Promise<FileRow> {
  const { fileId, chunkIdx, chunkDone = false } = at;
  const by = { read: 0, inserted: 0, updated: 0, unchanged: 0, waiting: 0, rejected: 0, ...move };
  if (chunkIdx !== undefined) {
    await trx
      .updateTable('dropload.chunk')
      .set(() => ({
        ...counterMoves(by),
        // The claim set it when the work began; the chunk is loaded when its work is done.
        ...(chunkDone ? { loaded_at: clock } : {}),
      }))
      .where('file_id', '=', fileId)
      .where('idx', '=', chunkIdx)
      .execute();
  }
  return trx
    .updateTable('dropload.file')
    .set((eb) => ({
      ...counterMoves(by),
      ...(chunkDone ? chunkDoneSet(eb, fileId) : {}),
      updated_at: clock,
    }))
    .where('id', '=', fileId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Rows one table got: inserted, updated, and sent but changing nothing. */
export interface TableCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * Moves a file's per-table row counts, in the transaction that wrote the rows and after `moveCounts`
 * (whose update of the file row serializes the file's writers; a redelivered chunk claims nothing and
 * gets here not at all). Tables in name order, so concurrent transactions lock them alike.
 */
export async function moveTableCounts(
  trx: Transaction<Database>,
  fileId: number,
  tables: Record<string, TableCounts>,
): Promise<void> {
  const rows = Object.entries(tables)
    .filter(([, c]) => c.inserted !== 0 || c.updated !== 0 || c.unchanged !== 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([table_name, c]) => ({
      file_id: fileId,
      table_name,
      rows_inserted: c.inserted,
      rows_updated: c.updated,
      rows_unchanged: c.unchanged,
    }));
  if (rows.length === 0) return;
  await trx
    .insertInto('dropload.table_count')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['file_id', 'table_name']).doUpdateSet({
        rows_inserted: sql`dropload.table_count.rows_inserted + excluded.rows_inserted`,
        rows_updated: sql`dropload.table_count.rows_updated + excluded.rows_updated`,
        rows_unchanged: sql`dropload.table_count.rows_unchanged + excluded.rows_unchanged`,
      }),
    )
    .execute();
}

/** The files' per-table row counts, by file id, each file's tables in name order. */
export async function tableCountsOf(
  db: Kysely<Database>,
  fileIds: number[],
): Promise<Map<number, ({ table: string } & TableCounts)[]>> {
  const out = new Map<number, ({ table: string } & TableCounts)[]>();
  if (fileIds.length === 0) return out;
  const rows = await db
    .selectFrom('dropload.table_count')
    .selectAll()
    .where('file_id', 'in', fileIds)
    .orderBy('file_id')
    .orderBy('table_name')
    .execute();
  for (const r of rows) {
    const list = out.get(Number(r.file_id)) ?? [];
    list.push({
      table: r.table_name,
      inserted: Number(r.rows_inserted),
      updated: Number(r.rows_updated),
      unchanged: Number(r.rows_unchanged),
    });
    out.set(Number(r.file_id), list);
  }
  return out;
}

type FileUpdateBuilder = ExpressionBuilder<Database, 'dropload.file'>;

/** A chunk done: one more of the file's chunks, and the file's state and error as its chunks now say. */
const chunkDoneSet = (eb: FileUpdateBuilder, fileId: number) => {
  const last = eb(eb('chunks_done', '+', 1), '>=', eb.ref('chunk_count'));
  return {
    chunks_done: eb('chunks_done', '+', 1),
    // A replayed chunk of a stalled file: the file loads on once no chunk of it is dead any more.
    state: eb
      .case()
      .when('state', 'not in', ['loading', 'stalled'])
      .then(eb.ref('state'))
      .when(last)
      .then(sql.lit<FileState>('loaded'))
      .when(eb.exists(deadChunks(eb, fileId)))
      .then(sql.lit<FileState>('stalled'))
      .else(sql.lit<FileState>('loading'))
      .end(),
    error: eb
      .case()
      .when('state', 'in', ['loading', 'stalled'])
      .then(chunkTrouble(eb, fileId))
      .else(eb.ref('error'))
      .end(),
    finished_at: eb.case().when(last).then(clock).else(eb.ref('finished_at')).end(),
  };
};

/** Adds a claimed chunk's counts to it and its file; returns the file, `loaded` when this was its last chunk. */
export async function completeChunk(
  trx: Transaction<Database>,
  fileId: number,
  idx: number,
  counts: ChunkCounts,
): Promise<FileRow> {
  const file = await moveCounts(trx, { fileId, chunkIdx: idx, chunkDone: true }, counts);
  // The file failed while this chunk was written (its object deleted under a chunk that had read its
  // bytes): its failure told which chunks loaded and how many rows, so this one loads nothing, and the
  // update above waited for that failure's lock. Throwing undoes the chunk's whole transaction.
  if (file.state === 'failed')
    throw new FileRejectedError(file.error ?? 'the file failed', { action: file.action ?? undefined });
  return file;
}

const deadChunks = (eb: FileUpdateBuilder, fileId: number) =>
  eb.selectFrom('dropload.chunk').select('idx').where('file_id', '=', fileId).where('state', '=', 'dead');

/** What the file's chunks say is wrong now: the first chunk in trouble (a dead one first), or null. */
const chunkTrouble = (eb: FileUpdateBuilder, fileId: number) =>
  eb
    .selectFrom('dropload.chunk')
    .select(sql<string | null>`'chunk ' || idx || ': ' || error`.as('trouble'))
    .where('file_id', '=', fileId)
    .where('state', '<>', 'loaded')
    .where('error', 'is not', null)
    .orderBy((c) => c('state', '=', 'dead'), 'desc')
    .orderBy('idx')
    .limit(1);

/**
 * Notes a failed delivery of a chunk where an operator looks (status, receipt): retried, or, when its
 * retry budget is spent (`parked`), the chunk is dead and its file stalled until a replay loads it.
 */
export async function recordChunkAttempt(
  db: Kysely<Database>,
  chunk: { fileId: number; index: number },
  failure: { deliveries: number; text: string; parked: boolean },
): Promise<void> {
  await db
    .updateTable('dropload.chunk')
    .set({
      attempts: failure.deliveries,
      error: messageText(failure.text),
      ...(failure.parked ? { state: 'dead' as const } : {}),
    })
    .where('file_id', '=', chunk.fileId)
    .where('idx', '=', chunk.index)
    .where('state', '<>', 'loaded')
    .execute();
  await db
    .updateTable('dropload.file')
    .set((eb) => ({
      error: chunkTrouble(eb, chunk.fileId),
      // A dead chunk's replay is its own queue's (receipts.ts fileAction), whatever stalled the file before.
      ...(failure.parked ? { action: null } : {}),
      state: eb
        .case()
        .when(eb.and([eb('state', '=', 'loading'), eb.exists(deadChunks(eb, chunk.fileId))]))
        .then(sql.lit<FileState>('stalled'))
        .else(eb.ref('state'))
        .end(),
      updated_at: clock,
    }))
    .where('id', '=', chunk.fileId)
    .where('state', 'in', ['loading', 'stalled'])
    .execute();
}

/**
 * The same for a file whose split failed (or whose waiting rows could not be retried): on the file itself.
 * Parked, the file is stalled, and `replay` is the command that puts its parked message back. Returns
 * the file as noted (none when it has no row, or is final already).
 */
export async function recordFileAttempt(
  db: Kysely<Database>,
  file: { bucket: string; key: string; etag: string; versionId?: string } | { id: number },
  failure: { text: string; parked: boolean; replay?: string },
): Promise<FileRow | undefined> {
  let update = db
    .updateTable('dropload.file')
    .set({
      error: messageText(failure.text),
      ...(failure.parked ? { state: 'stalled' as const, action: failure.replay ?? null } : {}),
      updated_at: clock,
    })
    .where('state', 'in', ['queued', 'splitting', 'loading', 'waiting', 'stalled']);
  if ('id' in file) update = update.where('id', '=', file.id);
  else
    update = update
      .where('bucket', '=', withoutNul(file.bucket))
      .where('key', '=', withoutNul(file.key))
      .where('etag', '=', withoutNul(file.etag))
      .$if(file.versionId !== undefined, (q) => q.where('version_id', '=', withoutNul(file.versionId ?? '')));
  return update.returningAll().executeTakeFirst();
}

/**
 * Stores a chunk's rejects; those with a `rowKey` are stored with `dataset`, whose newer rows may resolve
 * them. A statement per 1,000, their fields as one array each: built as an insert of values, a chunk of
 * refused rows spent most of this in building and binding its nine parameters per reject.
 */
export async function insertRejects(
  trx: Transaction<Database>,
  fileId: number,
  idx: number,
  rejects: Reject[],
  dataset: string | null = null,
) {
  const BATCH = 1000;
  for (let i = 0; i < rejects.length; i += BATCH) {
    const batch = rejects.slice(i, i + BATCH);
    const keys = batch.map((r) => (r.rowKey !== undefined && dataset !== null ? withoutNul(r.rowKey) : null));
    await sql`insert into dropload.reject (file_id, chunk_idx, line, "column", kind, reason, raw, dataset, row_key)
      select ${fileId}::bigint, ${idx}::integer, u.line, u.col, u.kind, u.reason, u.raw,
        case when u.row_key is not null then ${dataset}::text end, u.row_key
      from unnest(${batch.map((r) => r.line)}::bigint[], ${batch.map((r) => storableOrNull(r.column))}::text[],
        ${batch.map((r) => r.kind)}::text[], ${batch.map((r) => messageText(r.reason))}::text[],
        ${batch.map((r) => withoutNul(r.raw))}::text[], ${keys}::text[]) as u(line, col, kind, reason, raw, row_key)`.execute(
      trx,
    );
  }
}

export async function listFiles(db: Kysely<Database>, limit = 100): Promise<FileRow[]> {
  return db.selectFrom('dropload.file').selectAll().orderBy('id', 'desc').limit(limit).execute();
}

export async function filesByKey(db: Kysely<Database>, bucket: string, keys: string[]): Promise<FileRow[]> {
  if (keys.length === 0) return [];
  return db
    .selectFrom('dropload.file')
    .selectAll()
    .where('bucket', '=', bucket)
    .where('key', 'in', keys.map(withoutNul))
    .orderBy('id')
    .execute();
}

export async function filesById(db: Kysely<Database>, ids: number[]): Promise<FileRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('dropload.file').selectAll().where('id', 'in', ids).orderBy('id').execute();
}

export async function rejectsOf(db: Kysely<Database>, fileId: number, limit?: number) {
  let q = db.selectFrom('dropload.reject').selectAll().where('file_id', '=', fileId).orderBy('line');
  if (limit !== undefined) q = q.limit(limit);
  return q.execute();
}
