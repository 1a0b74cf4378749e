import { type Kysely, sql, type Transaction } from 'kysely';
import { clock, withoutNul } from './ledger.ts';
import { type Database, REJECT_RESOLUTIONS, type RejectResolution, type RejectRow } from './schema.ts';

/**
 * A reject's life: open from the load that stored it until it is resolved (RejectResolution says how),
 * kept afterwards as history. The statements here read and resolve them; what resolves them is the
 * load stage's and the operator commands'.
 */

/** A file's rejects in line order: the open ones, or with `all` the resolved ones too. */
export async function fileRejects(
  db: Kysely<Database>,
  fileId: number,
  options: { all?: boolean; limit?: number } = {},
): Promise<RejectRow[]> {
  return db
    .selectFrom('dropload.reject')
    .selectAll()
    .where('file_id', '=', fileId)
    .$if(!options.all, (q) => q.where('resolved_at', 'is', null))
    .orderBy('line')
    .$if(options.limit !== undefined, (q) => q.limit(options.limit ?? 0))
    .execute();
}

/** How many of a file's rejects are open, and how many each way resolved. */
export interface RejectSummary {
  open: number;
  resolved: Record<RejectResolution, number>;
}

export async function rejectSummary(db: Kysely<Database>, fileId: number): Promise<RejectSummary> {
  const rows = await db
    .selectFrom('dropload.reject')
    .select(['resolved_by', (eb) => eb.fn.countAll<number>().as('n')])
    .where('file_id', '=', fileId)
    .groupBy('resolved_by')
    .execute();
  const summary: RejectSummary = {
    open: 0,
    resolved: Object.fromEntries(REJECT_RESOLUTIONS.map((r) => [r, 0])) as Record<RejectResolution, number>,
  };
  for (const { resolved_by, n } of rows) {
    if (resolved_by === null) summary.open = Number(n);
    else summary.resolved[resolved_by] = Number(n);
  }
  return summary;
}

/** Open rejects per file, for the files given (a file without any is left out). */
export async function openCounts(db: Kysely<Database>, fileIds: number[]): Promise<Map<number, number>> {
  if (fileIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('dropload.reject')
    .select(['file_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('file_id', 'in', fileIds)
    .where('resolved_at', 'is', null)
    .groupBy('file_id')
    .execute();
  return new Map(rows.map((r) => [Number(r.file_id), Number(r.n)]));
}

/** How many rejects of other files the rows of this one resolved. */
export async function resolvedByFile(db: Kysely<Database>, fileId: number): Promise<number> {
  const row = await db
    .selectFrom('dropload.reject')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('resolved_file_id', '=', fileId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Resolves the rejects with these ids that are still open (a concurrent resolution keeps its own),
 * in the caller's transaction. Returns the ids it resolved.
 */
export async function resolveRejects(
  trx: Transaction<Database>,
  ids: number[],
  how: { by: RejectResolution; resolution: string | null },
): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await trx
    .updateTable('dropload.reject')
    .set({
      resolved_at: clock,
      resolved_by: how.by,
      resolution: how.resolution === null ? null : withoutNul(how.resolution),
    })
    .where('id', 'in', ids)
    .where('resolved_at', 'is', null)
    .returning('id')
    .execute();
  return rows.map((r) => Number(r.id));
}

/**
 * Whether the dataset has any open reject a newer row could resolve: one probe of
 * `reject_open_row_key_idx`, so a chunk of a keyed dataset collects its keys only when there is one.
 */
export async function hasOpenKeyedRejects(db: Kysely<Database>, dataset: string): Promise<boolean> {
  const row = await db
    .selectFrom('dropload.reject')
    .select('id')
    .where('dataset', '=', dataset)
    .where('resolved_at', 'is', null)
    .where('row_key', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** A key a chunk loaded a row for (as `row_key` stores it), and that row's line. */
export interface LoadedKey {
  rowKey: string;
  line: number;
}

/** Of the rejects of another file that a chunk's rows resolved: whose, and how many. */
export interface ResolvedRejects {
  fileId: number;
  resolved: number;
}

/**
 * Resolves, in the loading chunk's transaction and in one statement, the open rejects of the dataset's
 * other files whose key a row of this chunk loaded: `newer-row`, naming the file and line.
 */
export async function resolveByNewerRows(
  trx: Transaction<Database>,
  loading: { dataset: string; fileId: number; key: string },
  keys: LoadedKey[],
): Promise<ResolvedRejects[]> {
  if (keys.length === 0) return [];
  // One row per key (the last line, as an upsert keeps it): an update joins each reject to one row.
  const byKey = new Map(keys.map((k) => [withoutNul(k.rowKey), k.line]));
  const source = withoutNul(loading.key);
  const { rows } = await sql<{ file_id: number; resolved: number }>`
    with done as (
      update dropload.reject r
      set resolved_at = ${clock}, resolved_by = 'newer-row', resolved_file_id = ${loading.fileId},
        resolution = ${source} || ' line ' || k.line
      from unnest(${[...byKey.keys()]}::text[], ${[...byKey.values()]}::bigint[]) as k(row_key, line)
      where r.dataset = ${loading.dataset} and r.row_key = k.row_key
        and r.resolved_at is null and r.row_key is not null and r.file_id <> ${loading.fileId}
      returning r.file_id)
    select file_id, count(*)::int as resolved from done group by file_id order by file_id`.execute(trx);
  return rows.map((r) => ({ fileId: Number(r.file_id), resolved: r.resolved }));
}
