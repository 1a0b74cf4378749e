import {
  type Expression,
  type ExpressionBuilder,
  type Kysely,
  type SqlBool,
  sql,
  type Transaction,
} from 'kysely';
import { clock, getFile, withoutNul } from './ledger.ts';
import { type Database, type FileRow, type OrphanRow, type ParentRow, WAITING_STATES } from './schema.ts';

/**
 * `dropload.orphan`: records of a multi-table dataset that wait for a parent, one row each (holding all
 * the record's rows; one target row, for rows parked before records were). A chunk parks them in its
 * own transaction, with the parent table they wait on; its file is `waiting` once its chunks are done
 * and rows still wait. A retry claims them `for update skip locked` and deletes the ones it writes (or
 * turns into rejects) in one transaction. The file is `loaded` once its chunks are done and no row
 * waits. What the rows mean and how they are written is the load stage's (`load/orphans.ts`); the
 * retry chain's bookkeeping on `dropload.file` is at the end of this module.
 */

/** What a row waits for: as a reject names it, and the parent table (schema-qualified) and its key columns. */
export interface Wait {
  missing: string;
  parentTable: string;
  parentKey: string;
  /** The parent row itself, by natural key: what finds it when it waits too (see `missingRoot`). */
  parentRow?: ParentRow;
}

/** A row to park: where it came from, its target table, the row as the writer stores it, what it waits for. */
export interface ParkedRow extends Wait {
  chunkIdx: number;
  line: number;
  target: string;
  row: unknown;
  raw: string;
}

/** A claimed waiting row, with whether its wait is over and how many seconds of it are left. */
export type ClaimedRow = Pick<
  OrphanRow,
  'id' | 'chunk_idx' | 'line' | 'target' | 'row' | 'missing' | 'parent_table' | 'raw'
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
          parent_table: r.parentTable,
          parent_key: r.parentKey,
          parent_row: r.parentRow ? JSON.stringify(r.parentRow) : null,
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

/** After the last chunk: a file with waiting rows is `waiting` (same transaction, so `loaded` is never seen). */
export async function holdWhileWaiting(trx: Transaction<Database>, file: FileRow): Promise<FileRow> {
  if (file.state !== 'loaded') return file;
  const held = await trx
    .updateTable('dropload.file')
    .set({ state: 'waiting', finished_at: null, updated_at: clock })
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
      // A failed retry of its waiting rows was noted here; with every row settled, nothing is wrong.
      error: null,
      finished_at: clock,
      updated_at: clock,
    })
    .where('id', '=', fileId)
    .where('state', 'in', WAITING_STATES)
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
    .select(['id', 'chunk_idx', 'line', 'target', 'row', 'missing', 'parent_table', 'raw'])
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

/** Parents followed at most, from a record to the root its chain of waiting parents lacks. */
const CHAIN_DEPTH = 16;

/**
 * When the parent a record waits for is itself a waiting record (a manager who waits for a manager),
 * what the last record of that chain waits for: the missing root, as a reject names it. Undefined when
 * the parent is simply missing. Followed in one statement, by the parent's key in each waiting
 * record's stored rows (`{rows: {<table>: [{values: {<key column>: <text>}}]}}`, see `encodeUnit`).
 */
export async function missingRoot(
  trx: Transaction<Database>,
  parent: ParentRow | undefined,
): Promise<string | undefined> {
  if (!parent) return undefined;
  const { rows } = await sql<{ missing: string | null; depth: number }>`
    with recursive chain(seed, depth, missing, parent, ids) as (
      select 0::bigint, 0, null::text, ${JSON.stringify(parent)}::jsonb, array[]::bigint[]
      union all ${chainStep}
    )
    select missing, depth from chain order by depth desc limit 1`.execute(trx);
  const last = rows[0];
  return last && last.depth > 0 && last.missing !== null ? last.missing : undefined;
}

/**
 * The recursive step of a `chain(seed, depth, missing, parent, ids)`: from a chain's parent to the
 * (oldest) waiting record holding that parent's row, whose own wait the chain follows next; `ids`
 * keeps a cycle of records waiting on each other from going round.
 */
const chainStep = sql`
  select c.seed, c.depth + 1, o.missing, o.parent_row, c.ids || o.id
  from chain c cross join lateral (
    select w.id, w.missing, w.parent_row from dropload.orphan w
    where w.row -> 'rows' -> (c.parent ->> 'table')
        @> jsonb_build_array(jsonb_build_object('values', c.parent -> 'key'))
      and w.id <> all(c.ids)
    order by w.id limit 1
  ) o
  where c.depth < ${CHAIN_DEPTH} and c.parent is not null`;

/** A claimed row still waits, now perhaps for another parent. */
export async function noteMissing(trx: Transaction<Database>, id: number, wait: Wait): Promise<void> {
  await trx
    .updateTable('dropload.orphan')
    .set({
      missing: withoutNul(wait.missing),
      parent_table: wait.parentTable,
      parent_key: wait.parentKey,
      parent_row: wait.parentRow ? JSON.stringify(wait.parentRow) : null,
    })
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

/** What the rows of a file wait for, per parent table: `53 rows wait for nw.regions (region_id)`. */
export interface WaitSummary {
  fileId: number;
  /** Waiting rows, and the records (lines) they belong to. */
  rows: number;
  lines: number;
  on: { table: string; key: string; rows: number }[];
  /**
   * When rows wait on parents that wait in turn (a chain), the missing roots those chains lack, as a
   * reject names them (see `missingRoot`): at most `ROOTS_NAMED`, most waiting rows first; absent
   * when no chain. `moreRoots`: other roots were found too.
   */
  roots?: string[];
  moreRoots?: boolean;
}

/** What of a file waits, as a report or receipt holds it: its summary less the file's id. */
export type Waiting = Omit<WaitSummary, 'fileId'>;

export function waitingPart({ fileId: _, ...waiting }: WaitSummary): Waiting {
  return waiting;
}

/** Roots a summary names: a few a person can act on, not one per row. */
export const ROOTS_NAMED = 3;

/**
 * Distinct parents per file whose chains `waitRoots` follows, those most rows wait on first: bounds a
 * `status` of a file with thousands of waiting rows to one statement of a few chains each.
 */
const PARENTS_FOLLOWED = 20;

/** The waiting rows of these files, summed per parent table, most rows first; files with none are left out. */
export async function waitSummaries(db: Kysely<Database>, fileIds: number[]): Promise<WaitSummary[]> {
  if (fileIds.length === 0) return [];
  const groups = await db
    .selectFrom('dropload.orphan')
    .select(['file_id', 'parent_table', 'parent_key'])
    .select((eb) => [eb.fn.countAll<number>().as('rows'), sql<number>`count(distinct line)`.as('lines')])
    .where('file_id', 'in', fileIds)
    .groupBy(['file_id', 'parent_table', 'parent_key'])
    .orderBy('file_id')
    .orderBy('rows', 'desc')
    .orderBy('parent_table')
    .execute();
  const byFile = new Map<number, WaitSummary>();
  for (const g of groups) {
    const fileId = Number(g.file_id);
    const summary = byFile.get(fileId) ?? { fileId, rows: 0, lines: 0, on: [] };
    byFile.set(fileId, summary);
    summary.rows += Number(g.rows);
    summary.on.push({ table: g.parent_table, key: g.parent_key, rows: Number(g.rows) });
  }
  // A record can wait on two tables: its lines are counted once per file.
  const lines = await db
    .selectFrom('dropload.orphan')
    .select(['file_id', sql<number>`count(distinct line)`.as('lines')])
    .where('file_id', 'in', fileIds)
    .groupBy('file_id')
    .execute();
  for (const l of lines) {
    const summary = byFile.get(Number(l.file_id));
    if (summary) summary.lines = Number(l.lines);
  }
  for (const [fileId, roots] of await waitRoots(db, [...byFile.keys()])) {
    const summary = byFile.get(fileId);
    if (!summary || roots.length === 0) continue;
    summary.roots = roots.slice(0, ROOTS_NAMED);
    if (roots.length > ROOTS_NAMED) summary.moreRoots = true;
  }
  return [...byFile.values()];
}

/**
 * Per file, the missing roots of the chains its rows wait on, most waiting rows first: one statement
 * following, as `missingRoot` does, the `PARENTS_FOLLOWED` parents most of the file's rows wait for.
 * A parent that does not wait itself is simply missing (the summary's parent table says so): no root.
 * Only parents of a table some waiting record holds rows of are followed: rows waiting on another
 * table (territories on regions) cost one look for that table, not one per parent.
 */
async function waitRoots(db: Kysely<Database>, fileIds: number[]): Promise<Map<number, string[]>> {
  if (fileIds.length === 0) return new Map();
  const { rows } = await sql<{ file_id: number; rows: number; missing: string }>`
    with recursive waits as (
      select file_id, parent_row, count(*) as rows from dropload.orphan
      where file_id = any(${fileIds}) and parent_row is not null
      group by file_id, parent_row
    ), held as (
      select t.tbl from (select distinct parent_row ->> 'table' as tbl from waits) t
      where exists (select from dropload.orphan w where w.row -> 'rows' ? t.tbl order by w.id limit 1)
    ), parents as (
      select file_id, parent_row, rows, row_number() over () as seed,
        row_number() over (partition by file_id order by rows desc, parent_row::text) as rank
      from waits where parent_row ->> 'table' in (select tbl from held)
    ), chain(seed, depth, missing, parent, ids) as (
      select seed, 0, null::text, parent_row, array[]::bigint[]
      from parents where rank <= ${PARENTS_FOLLOWED}
      union all ${chainStep}
    ), ends as (
      select distinct on (seed) seed, depth, missing from chain order by seed, depth desc
    )
    select p.file_id, sum(p.rows)::int as rows, e.missing
    from ends e join parents p using (seed)
    where e.depth > 0 and e.missing is not null
    group by p.file_id, e.missing
    order by p.file_id, rows desc, e.missing`.execute(db);
  const roots = new Map<number, string[]>();
  for (const r of rows) {
    const fileId = Number(r.file_id);
    roots.set(fileId, [...(roots.get(fileId) ?? []), r.missing]);
  }
  return roots;
}

/*
 * The retry chain. Each file has at most one live chain of retry messages: `retry_token` names it,
 * `retry_due` says when its pending message is due, `retry_started_at` that its handler is running.
 * Every change is one compare-and-swap UPDATE, so concurrent wakes, sweeps and handlers agree on one
 * chain: a message whose token is no longer current still retries (retries are idempotent) but does
 * not schedule a follow-up, so chains never multiply. The queries return what to send; the sending
 * is the load stage's (load/retry-chain.ts).
 */

/** A retry message to send: the file, the token of its (new) chain, and its delay. */
export interface RetryStep {
  fileId: number;
  token: number;
  delaySeconds: number;
}

/** When the ledger takes a chain for broken (see WAIT_RETRY in core/topology.ts). */
export interface ChainTimes {
  lostAfterSeconds: number;
  runningForSeconds: number;
}

type FileWhere = ExpressionBuilder<Database, 'dropload.file'>;

/*
 * The chain's times are the wall clock, not `now()` (the transaction's start): an update in a
 * transaction that began earlier, or that waited for a concurrent one's row lock, compares against the
 * time it actually runs, so two wakes racing for one file send one message, not two.
 */
const secondsAgo = (s: number) => sql<Date>`clock_timestamp() - make_interval(secs => ${s})`;
const secondsAhead = (s: number) => sql<Date>`clock_timestamp() + make_interval(secs => ${s})`;

const hasWaitingRows = (eb: FileWhere) =>
  eb.exists(
    eb
      .selectFrom('dropload.orphan')
      .select('dropload.orphan.id')
      .whereRef('dropload.orphan.file_id', '=', 'dropload.file.id'),
  );

/** A new chain for the matched files, its message due in `delaySeconds`. */
async function newChains(
  db: Kysely<Database>,
  where: (eb: FileWhere) => Expression<SqlBool>,
  delaySeconds: number,
): Promise<RetryStep[]> {
  const rows = await db
    .updateTable('dropload.file')
    .set((eb) => ({
      retry_token: eb('retry_token', '+', 1),
      retry_due: secondsAhead(delaySeconds),
      retry_started_at: null,
    }))
    .where('state', 'in', WAITING_STATES)
    .where(hasWaitingRows)
    .where(where)
    .returning(['id', 'retry_token'])
    .execute();
  return rows.map((r) => ({ fileId: Number(r.id), token: r.retry_token, delaySeconds }));
}

/**
 * A retry within `delaySeconds` for the matched files, unless their chain already has one pending by
 * then: at most one message is ever due at once, however many commits ask. A pending one long past due
 * was lost and does not count; a running handler does not either (it may have read before the commit
 * that asks).
 */
export async function retrySoon(
  db: Kysely<Database>,
  files: { ids: number[] } | { waitingOn: string[]; except?: number },
  delaySeconds: number,
  times: ChainTimes,
): Promise<RetryStep[]> {
  const chosen = (eb: FileWhere) => {
    if ('ids' in files) return eb('id', 'in', files.ids.length > 0 ? files.ids : [-1]);
    const waiting = eb
      .selectFrom('dropload.orphan')
      .select('file_id')
      .where('parent_table', 'in', files.waitingOn.length > 0 ? files.waitingOn : ['']);
    return eb.and([eb('id', 'in', waiting), eb('id', '<>', files.except ?? -1)]);
  };
  return newChains(
    db,
    (eb) =>
      eb.and([
        chosen(eb),
        eb.or([
          eb('retry_due', 'is', null),
          eb('retry_due', '>', secondsAhead(delaySeconds)),
          eb('retry_due', '<', secondsAgo(times.lostAfterSeconds)),
        ]),
      ]),
    delaySeconds,
  );
}

/** Files whose rows wait with no live chain (its message lost, its handler dead): a new chain, due now. */
export async function restartLostChains(db: Kysely<Database>, times: ChainTimes): Promise<RetryStep[]> {
  return newChains(
    db,
    (eb) =>
      eb.and([
        eb.or([eb('retry_due', 'is', null), eb('retry_due', '<', secondsAgo(times.lostAfterSeconds))]),
        eb.or([
          eb('retry_started_at', 'is', null),
          eb('retry_started_at', '<', secondsAgo(times.runningForSeconds)),
        ]),
      ]),
    0,
  );
}

/** A new chain, due now, for these files (all with waiting rows, when undefined), whatever their chain. */
export async function restartChains(db: Kysely<Database>, fileIds?: number[]): Promise<RetryStep[]> {
  return newChains(
    db,
    (eb) => (fileIds ? eb('id', 'in', fileIds.length > 0 ? fileIds : [-1]) : sql`true`),
    0,
  );
}

/** A handler takes its message: true when its token is the file's current one (it then runs the chain). */
export async function takeRetry(db: Kysely<Database>, fileId: number, token: number): Promise<boolean> {
  const taken = await db
    .updateTable('dropload.file')
    .set({ retry_due: null, retry_started_at: clock })
    .where('id', '=', fileId)
    .where('retry_token', '=', token)
    .executeTakeFirst();
  return Number(taken.numUpdatedRows) === 1;
}

/**
 * The current chain's handler is done: the next step, due in `delaySeconds`, if rows of the file still
 * wait (read now, after the retry committed: rows a chunk parked meanwhile are seen), else none.
 * Undefined when the chain is no longer current (a wake or the sweep started another).
 */
export async function nextStep(
  db: Kysely<Database>,
  fileId: number,
  token: number,
  delaySeconds: number,
): Promise<RetryStep | undefined> {
  const row = await db
    .updateTable('dropload.file')
    .set((eb) => ({
      retry_token: eb('retry_token', '+', 1),
      retry_started_at: null,
      retry_due: eb
        .case()
        .when(eb.and([eb('state', 'in', WAITING_STATES), hasWaitingRows(eb)]))
        .then(secondsAhead(delaySeconds))
        .else(null)
        .end(),
    }))
    .where('id', '=', fileId)
    .where('retry_token', '=', token)
    .returning(['retry_token', 'retry_due'])
    .executeTakeFirst();
  return row?.retry_due ? { fileId, token: row.retry_token, delaySeconds } : undefined;
}

/** Of these files, those with a retry due within `soonSeconds` or running now: their state may change any moment. */
export async function retriesInFlight(
  db: Kysely<Database>,
  fileIds: number[],
  soonSeconds: number,
  times: ChainTimes,
): Promise<Set<number>> {
  if (fileIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('dropload.file')
    .select('id')
    .where('id', 'in', fileIds)
    .where('state', 'in', WAITING_STATES)
    .where((eb) =>
      eb.or([
        eb.and([
          eb('retry_due', '<=', secondsAhead(soonSeconds)),
          eb('retry_due', '>=', secondsAgo(times.lostAfterSeconds)),
        ]),
        eb('retry_started_at', '>=', secondsAgo(times.runningForSeconds)),
      ]),
    )
    .execute();
  return new Set(rows.map((r) => Number(r.id)));
}

/** Files whose rows wait now (`waiting`, or still `loading` with rows parked). */
export async function filesWithWaitingRows(db: Kysely<Database>): Promise<FileRow[]> {
  return db
    .selectFrom('dropload.file')
    .selectAll()
    .where('state', 'in', WAITING_STATES)
    .where(hasWaitingRows)
    .orderBy('id')
    .execute();
}

/**
 * Per chunk of the file among `chunks`: the records it counts as waiting (`rows_waiting`) and those that
 * wait now (lines with a parked row and no reject: a record one of whose rows was rejected is rejected).
 */
export async function waitingLines(
  trx: Transaction<Database>,
  fileId: number,
  chunks: number[],
): Promise<{ idx: number; counted: number; now: number }[]> {
  if (chunks.length === 0) return [];
  const rows = await trx
    .selectFrom('dropload.chunk as c')
    .select(['c.idx', 'c.rows_waiting'])
    .select((eb) =>
      eb
        .selectFrom('dropload.orphan as o')
        .select(sql<number>`count(distinct o.line)::int`.as('n'))
        .whereRef('o.file_id', '=', 'c.file_id')
        .whereRef('o.chunk_idx', '=', 'c.idx')
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('dropload.reject as r')
                .select('r.line')
                .whereRef('r.file_id', '=', 'o.file_id')
                .whereRef('r.line', '=', 'o.line'),
            ),
          ),
        )
        .as('now'),
    )
    .where('c.file_id', '=', fileId)
    .where((eb) => eb('c.idx', '=', eb.fn.any(eb.val(chunks))))
    .orderBy('c.idx')
    .execute();
  return rows.map((r) => ({ idx: r.idx, counted: Number(r.rows_waiting), now: Number(r.now ?? 0) }));
}

/** Waiting rows of every file, per parent table they wait for (the console's view of the whole ledger). */
export interface ParentWait {
  table: string;
  key: string;
  rows: number;
  files: number;
}

export async function waitingByParent(db: Kysely<Database>): Promise<ParentWait[]> {
  const groups = await db
    .selectFrom('dropload.orphan')
    .select(['parent_table', 'parent_key'])
    .select((eb) => [eb.fn.countAll<number>().as('rows'), sql<number>`count(distinct file_id)`.as('files')])
    .groupBy(['parent_table', 'parent_key'])
    .orderBy('rows', 'desc')
    .orderBy('parent_table')
    .execute();
  return groups.map((g) => ({
    table: g.parent_table,
    key: g.parent_key,
    rows: Number(g.rows),
    files: Number(g.files),
  }));
}
