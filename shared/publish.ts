import { createHash } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Dataset } from './dataset.ts';
import type { Database, FileRow } from './db/schema.ts';
import { finishFile } from './ledger.ts';
import { tableShape } from './writing.ts';

/**
 * Per-file atomic publish: a `publish: "file"` dataset's chunks load into a staging table, and the
 * transaction that commits the file's last chunk checks the file (reject gate, file-level checks),
 * then moves its rows into the target at once — or fails the file and leaves nothing visible.
 */

export const FILE_ID = '__dropload_file_id';
export const LINE = '__dropload_line';

/** Staging tables are named after the target's shape, so a migration that changes it gets a fresh one. */
export async function stageTable(db: Kysely<Database>, dataset: Dataset): Promise<string> {
  const shape = await tableShape(db, dataset.table);
  const signature = [...shape].map(([c, t]) => `${c}:${t}`).join(',');
  const hash = createHash('sha256').update(`${dataset.table}|${signature}`).digest('hex').slice(0, 10);
  return `dropload.stage_${dataset.name.replace(/-/g, '_')}_${hash}`;
}

/** Creates the staging table once; an advisory lock keeps concurrent first chunks from racing on CREATE. */
export async function ensureStage(db: Kysely<Database>, dataset: Dataset): Promise<string> {
  const stage = await stageTable(db, dataset);
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${stage}))`.execute(trx);
    // NOT NULL and CHECK constraints come along, so a row the target would refuse is rejected per row already.
    await sql`create table if not exists ${sql.table(stage)}
      (like ${sql.table(dataset.table)} including defaults including constraints,
       ${sql.id(FILE_ID)} bigint not null, ${sql.id(LINE)} bigint not null)`.execute(trx);
    await sql`create index if not exists ${sql.id(`${stage.split('.')[1]}_file_idx`)}
      on ${sql.table(stage)} (${sql.id(FILE_ID)})`.execute(trx);
  });
  return stage;
}

/** The dataset as the stage sees it: plain inserts into the stage table, with file id and line. */
export function stagedDataset(dataset: Dataset, stage: string): Dataset {
  return {
    ...dataset,
    table: stage,
    mode: 'insert',
    fields: [...dataset.fields, FILE_ID, LINE],
    columnOf: { ...dataset.columnOf, [FILE_ID]: FILE_ID, [LINE]: LINE },
  };
}

function gateFailure(dataset: Dataset, file: FileRow): string | undefined {
  const limit = dataset.maxRejects;
  if (!limit) return undefined;
  const rejected = file.rows_rejected;
  const over = 'count' in limit ? rejected > limit.count : rejected * 100 > limit.percent * file.rows_read;
  if (!over) return undefined;
  const allowed = 'count' in limit ? `${limit.count} rows` : `${limit.percent}% of rows`;
  return `${rejected} of ${file.rows_read} rows rejected, over the dataset's limit of ${allowed} (maxRejects); nothing was published`;
}

async function checkFailure(trx: Transaction<Database>, dataset: Dataset, stage: string, file: FileRow) {
  const valid = file.rows_read - file.rows_rejected;
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

function publishStatement(dataset: Dataset, stage: string, fileId: number, columns: string[]) {
  const cols = sql.join(columns.map((c) => sql.id(c)));
  const from = sql`from ${sql.table(stage)} where ${sql.ref(FILE_ID)} = ${fileId}`;
  if (dataset.mode !== 'upsert') {
    return sql<{ inserted: number; updated: number }>`with w as (
      insert into ${sql.table(dataset.table)} (${cols}) select ${cols} ${from} order by ${sql.ref(LINE)} returning 1)
      select count(*)::int as inserted, 0 as updated from w`;
  }
  const key = dataset.key.map((f) => dataset.columnOf[f] as string);
  const keys = sql.join(key.map((c) => sql.id(c)));
  const rest = columns.filter((c) => !key.includes(c));
  const target = sql.table(dataset.table);
  const conflict =
    rest.length === 0
      ? sql`do nothing`
      : sql`do update set ${sql.join(rest.map((c) => sql`${sql.id(c)} = excluded.${sql.id(c)}`))}
          where (${sql.join(rest.map((c) => sql`${target}.${sql.id(c)}`))}) is distinct from
                (${sql.join(rest.map((c) => sql`excluded.${sql.id(c)}`))})`;
  // The file's last line per key wins, as it does when chunks publish one by one.
  return sql<{ inserted: number; updated: number }>`with w as (
    insert into ${target} (${cols}) select distinct on (${keys}) ${cols} ${from} order by ${keys}, ${sql.ref(LINE)} desc
    on conflict (${keys}) ${conflict} returning (xmax = 0) as fresh)
    select count(*) filter (where fresh)::int as inserted, count(*) filter (where not fresh)::int as updated from w`;
}

export interface PublishOutcome {
  published: boolean;
  inserted: number;
  updated: number;
  replaced: number;
  reason?: string;
}

/** Runs inside the transaction of the file's last chunk: gate, checks, replace, move rows, clear the stage. */
export async function publishFile(
  trx: Transaction<Database>,
  dataset: Dataset,
  stage: string,
  file: FileRow,
): Promise<PublishOutcome> {
  const clear = () =>
    sql`delete from ${sql.table(stage)} where ${sql.ref(FILE_ID)} = ${file.id}`.execute(trx);
  const reason = gateFailure(dataset, file) ?? (await checkFailure(trx, dataset, stage, file));
  if (reason) {
    await clear();
    await finishFile(trx, file.id, 'failed', reason);
    return { published: false, inserted: 0, updated: 0, replaced: 0, reason };
  }
  let replaced = 0;
  if (dataset.onNewVersion === 'replace' && dataset.sourceColumn) {
    const gone = await sql`delete from ${sql.table(dataset.table)} where ${sql.ref(dataset.sourceColumn)} in (
        select id from dropload.file where bucket = ${file.bucket} and key = ${file.key} and id <> ${file.id})`.execute(
      trx,
    );
    replaced = Number(gone.numAffectedRows ?? 0);
  }
  const columns = [...new Set([...dataset.fields.map((f) => dataset.columnOf[f] as string)])];
  const { rows } = await publishStatement(dataset, stage, file.id, columns).execute(trx);
  await clear();
  const counts = { inserted: rows[0]?.inserted ?? 0, updated: rows[0]?.updated ?? 0 };
  await trx
    .updateTable('dropload.file')
    .set({ rows_inserted: counts.inserted, rows_updated: counts.updated })
    .where('id', '=', file.id)
    .execute();
  return { published: true, ...counts, replaced };
}
