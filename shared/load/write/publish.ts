import { createHash } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { TableDataset } from '../../config/dataset.ts';
import { DROP_AGAIN } from '../../core/errors.ts';
import { finishFile, getFile, moveCounts, newerVersion } from '../../ledger/ledger.ts';
import type { Database, FileRow } from '../../ledger/schema.ts';
import { clearStaged, FILE_ID, stagePrefix, stageTablesOf } from '../../ledger/stage.ts';
import { counted, onConflict } from './statement.ts';
import { type WriteTarget, withAdded, writeTarget } from './target.ts';
import { tableShape } from './writing.ts';

/**
 * Per-file atomic publish: a `publish: "file"` dataset's chunks load into a staging table, and the
 * transaction that commits the file's last chunk checks the file (reject gate, file-level checks),
 * then moves its rows into the target at once — or fails the file and leaves nothing visible.
 */

/** The staging table's column of a row's line in its file: the file's last line per key wins. */
export const LINE = '__dropload_line';

/** Staging tables are named after the target's shape, so a migration that changes it gets a fresh one. */
export async function stageTable(db: Kysely<Database>, dataset: TableDataset): Promise<string> {
  const shape = await tableShape(db, dataset.table);
  const signature = [...shape].map(([c, t]) => `${c}:${t}`).join(',');
  const hash = createHash('sha256').update(`${dataset.table}|${signature}`).digest('hex').slice(0, 10);
  return `dropload.${stagePrefix(dataset.name)}${hash}`;
}

/** Staging tables known to exist, per database handle (one per process, as a Lambda instance keeps it). */
const knownStages = new WeakMap<Kysely<Database>, Set<string>>();

/**
 * Reads pg_class with the statement's own snapshot, which takes no lock and, unlike `to_regclass` (the
 * session's catalog cache), sees a table another session created and committed a moment ago.
 */
async function stageExists(db: Kysely<Database>, stage: string): Promise<boolean> {
  const [schema, name] = stage.split('.');
  const { rows } = await sql<{ found: boolean }>`select exists (select 1 from pg_class c
    join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${schema} and c.relname = ${name}) as found`.execute(
    db,
  );
  return rows[0]?.found === true;
}

/**
 * Creates the staging table once. A file's chunks load into it concurrently, so the common path takes no
 * lock: the process remembers the tables it has seen and looks for others in the catalog. (DDL per chunk
 * serialized them: `CREATE INDEX IF NOT EXISTS` takes a SHARE lock on the table even when the index
 * exists, and that waits for every open transaction that has inserted into it.)
 */
export async function ensureStage(db: Kysely<Database>, dataset: TableDataset): Promise<string> {
  const stage = await stageTable(db, dataset);
  let known = knownStages.get(db);
  if (!known) {
    known = new Set();
    knownStages.set(db, known);
  }
  if (known.has(stage)) return stage;
  if (!(await stageExists(db, stage))) await createStage(db, dataset, stage);
  known.add(stage);
  return stage;
}

async function createStage(db: Kysely<Database>, dataset: TableDataset, stage: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // Concurrent first chunks (of any process): one creates the table, the others wait here, then find it
    // and leave without DDL (which would wait for the creator's chunks to commit).
    await sql`select pg_advisory_xact_lock(hashtext(${stage}))`.execute(trx);
    if (await stageExists(trx, stage)) return;
    // NOT NULL and CHECK constraints come along, so a row the target would refuse is rejected per row already.
    await sql`create table if not exists ${sql.table(stage)}
      (like ${sql.table(dataset.table)} including defaults including constraints,
       ${sql.id(FILE_ID)} bigint not null, ${sql.id(LINE)} bigint not null)`.execute(trx);
    await sql`create index if not exists ${sql.id(`${stage.split('.')[1]}_file_idx`)}
      on ${sql.table(stage)} (${sql.id(FILE_ID)})`.execute(trx);
  });
}

/** Rows of the file staged for an earlier shape of the target (a migration ran while it loaded). */
async function stagedElsewhere(
  trx: Transaction<Database>,
  datasetName: string,
  stage: string,
  fileId: number,
) {
  let rows = 0;
  for (const other of await stageTablesOf(trx, datasetName)) {
    if (other === stage) continue;
    const { rows: found } = await sql<{ n: number }>`select count(*)::int as n from ${sql.table(other)}
      where ${sql.ref(FILE_ID)} = ${fileId}`.execute(trx);
    rows += found[0]?.n ?? 0;
  }
  return rows;
}

/**
 * The end of a staged chunk's transaction, after `completeChunk` (whose update of the file row waited for
 * any concurrent change of the file to commit, so `file.state` is current). A chunk whose file ended while
 * it was loading (failed by another chunk, whose clearing could not see these uncommitted rows) takes its
 * rows back out; the file's last chunk publishes it.
 */
export async function afterStagedChunk(
  trx: Transaction<Database>,
  dataset: TableDataset,
  stage: string,
  file: FileRow,
): Promise<FileRow> {
  if (file.state === 'failed' || file.state === 'skipped') {
    await clearStaged(trx, dataset.name, file.id);
    return file;
  }
  if (file.chunks_done !== file.chunk_count) return file;
  await publishFile(trx, dataset, stage, file);
  return (await getFile(trx, file.id)) ?? file;
}

/** The target as the stage sees it: plain inserts into the stage table, with file id and line. */
export function stagedTarget(target: WriteTarget, stage: string): WriteTarget {
  return { ...withAdded(withAdded(target, FILE_ID, 'file'), LINE, 'line'), table: stage, mode: 'insert' };
}

function gateFailure(dataset: TableDataset, file: FileRow): string | undefined {
  const limit = dataset.maxRejects;
  if (!limit) return undefined;
  const rejected = file.rows_rejected;
  const over = 'count' in limit ? rejected > limit.count : rejected * 100 > limit.percent * file.rows_read;
  if (!over) return undefined;
  const allowed = 'count' in limit ? `${limit.count} rows` : `${limit.percent}% of rows`;
  return `${rejected} of ${file.rows_read} rows rejected, over the dataset's limit of ${allowed} (maxRejects); nothing was published`;
}

async function checkFailure(trx: Transaction<Database>, dataset: TableDataset, stage: string, file: FileRow) {
  // Staged rows count as unchanged until publishing: the valid rows, as the chunks counted them.
  const valid = file.rows_inserted + file.rows_updated + file.rows_unchanged;
  if (valid < dataset.checks.minRows) {
    return `file has ${valid} valid rows, fewer than checks.minRows (${dataset.checks.minRows}); nothing was published`;
  }
  for (const field of dataset.checks.unique) {
    const column = dataset.columnOf[field] as string;
    const dupes = await sql<{ value: string | null; n: number }>`
      select ${sql.ref(column)}::text as value, count(*)::int as n from ${sql.table(stage)}
      where ${sql.ref(FILE_ID)} = ${file.id} group by 1 having count(*) > 1 order by 2 desc, 1 limit 3`.execute(
      trx,
    );
    if (dupes.rows.length > 0) {
      const list = dupes.rows.map((d) => `${JSON.stringify(d.value)} ×${d.n}`).join(', ');
      return `column "${field}" is not unique within the file (${list}); nothing was published`;
    }
  }
  return undefined;
}

/** The statement that moves a file's staged rows into the target; `textCompared` as `TableShape` has it. */
function publishStatement(
  target: WriteTarget,
  stage: string,
  fileId: number,
  textCompared: ReadonlySet<string>,
) {
  const columns = [...new Set(target.columns)];
  const cols = sql.join(columns.map((c) => sql.id(c)));
  const from = sql`from ${sql.table(stage)} where ${sql.ref(FILE_ID)} = ${fileId}`;
  const table = sql.table(target.table);
  if (target.mode !== 'upsert') {
    return counted(
      sql`insert into ${table} (${cols}) select ${cols} ${from} order by ${sql.ref(LINE)}`,
      target.mode,
    );
  }
  const keys = sql.join(target.key.map((c) => sql.id(c)));
  // The file's last line per key wins, as it does when chunks publish one by one.
  return counted(
    sql`insert into ${table} (${cols}) select distinct on (${keys}) ${cols} ${from} order by ${keys}, ${sql.ref(LINE)} desc
      ${onConflict(table, columns, target.key, target.mode, textCompared)}`,
    target.mode,
  );
}

export interface PublishOutcome {
  published: boolean;
  inserted: number;
  updated: number;
  replaced: number;
  reason?: string;
}

/**
 * `replace`: what writes one key's rows (a publish, a retry of rejects) does so one at a time, until its
 * transaction ends, each seeing the last one's outcome: a version finishing after a newer one published
 * must not bring its older rows back, and two must not both keep theirs.
 */
export async function lockKey(trx: Transaction<Database>, file: Pick<FileRow, 'bucket' | 'key'>) {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`dropload.publish ${file.bucket}/${file.key}`}, 0))`.execute(
    trx,
  );
}

/** Names the newer version of the file's key, for the reasons that refuse an older one. */
export function newerVersionName(file: FileRow, newer: Pick<FileRow, 'id' | 'version_id' | 'etag'>): string {
  const version = newer.version_id ? `version ${newer.version_id}` : `ETag ${newer.etag}`;
  return `a newer version of s3://${file.bucket}/${file.key} (${version}, file ${newer.id})`;
}

/** Why the file must not publish, if it must not: a newer version published first, a migration, the gate, a check. */
async function refusal(
  trx: Transaction<Database>,
  dataset: TableDataset,
  stage: string,
  file: FileRow,
): Promise<{ state: 'failed' | 'skipped'; reason: string } | undefined> {
  if (dataset.onNewVersion === 'replace') {
    await lockKey(trx, file);
    // Only a published version counts: one that failed its checks leaves the older one's rows standing.
    const newer = await newerVersion(trx, file.id, ['loaded']);
    if (newer) {
      const reason = `superseded: ${newerVersionName(file, newer)} was published first; nothing of this version was published`;
      return { state: 'skipped', reason };
    }
  }
  const earlier = await stagedElsewhere(trx, dataset.name, stage, file.id);
  if (earlier > 0) {
    // All or nothing: those rows cannot be published into the table as it is now, so none are.
    const reason = `table ${dataset.table} changed shape while the file loaded (a migration ran): ${earlier} of its rows were staged for the earlier shape; nothing was published; drop the file again`;
    return { state: 'failed', reason };
  }
  const reason = gateFailure(dataset, file) ?? (await checkFailure(trx, dataset, stage, file));
  return reason ? { state: 'failed', reason } : undefined;
}

/** `replace`: removes the rows of the key's other versions (all older by now, and only a published one has rows). */
async function deleteOtherVersions(
  trx: Transaction<Database>,
  table: string,
  sourceColumn: string,
  file: FileRow,
) {
  const others = trx
    .selectFrom('dropload.file')
    .select('id')
    .where('bucket', '=', file.bucket)
    .where('key', '=', file.key)
    .where('id', '<>', file.id);
  // Raw SQL for the user's table only: it is named by the config, not in the ledger's `Database` type.
  const gone = await sql`delete from ${sql.table(table)} where ${sql.ref(sourceColumn)} in ${others}`.execute(
    trx,
  );
  return Number(gone.numAffectedRows ?? 0);
}

/** Runs inside the transaction of the file's last chunk: order, gate, checks, replace, move rows, clear the stage. */
export async function publishFile(
  trx: Transaction<Database>,
  dataset: TableDataset,
  stage: string,
  file: FileRow,
): Promise<PublishOutcome> {
  const refused = await refusal(trx, dataset, stage, file);
  if (refused) {
    await clearStaged(trx, dataset.name, file.id);
    await finishFile(
      trx,
      file.id,
      refused.state,
      refused.reason,
      refused.state === 'failed' ? DROP_AGAIN : null,
    );
    return { published: false, inserted: 0, updated: 0, replaced: 0, reason: refused.reason };
  }
  const replaced =
    dataset.onNewVersion === 'replace' && dataset.sourceColumn
      ? await deleteOtherVersions(trx, dataset.table, dataset.sourceColumn, file)
      : 0;
  const { textCompared } = await tableShape(trx, dataset.table, dataset.mode);
  const { rows } = await publishStatement(writeTarget(dataset), stage, file.id, textCompared).execute(trx);
  await clearStaged(trx, dataset.name, file.id);
  const counts = { inserted: rows[0]?.inserted ?? 0, updated: rows[0]?.updated ?? 0 };
  // The file's counts become what publishing wrote: `file` is the row `completeChunk` just returned
  // (and locked), so they move by the difference from what its chunks counted. Its staged rows counted
  // as unchanged; those publishing inserted or updated leave it, the rest (the table had them) stay.
  const inserted = counts.inserted - file.rows_inserted;
  const updated = counts.updated - file.rows_updated;
  await moveCounts(trx, { fileId: file.id }, { inserted, updated, unchanged: -inserted - updated });
  return { published: true, ...counts, replaced };
}
