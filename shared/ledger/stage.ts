import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Where `publish: 'file'` datasets stage their rows: `dropload.stage_<dataset>_<hash of the target's
 * shape>` (shared/load/write/publish.ts makes them), each row tagged with its file. What a file staged ends with
 * the file: published, or removed when it fails or is superseded.
 */

/** The staged row's file id. */
export const FILE_ID = '__dropload_file_id';

export const stagePrefix = (datasetName: string): string => `stage_${datasetName.replace(/-/g, '_')}_`;

/** Every staging table of the dataset (one per shape its target has had), from the catalog. */
export async function stageTablesOf(db: Kysely<Database>, datasetName: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'dropload' and c.relkind = 'r' and c.relname ~ ${`^${stagePrefix(datasetName)}[0-9a-f]{10}$`}`.execute(
    db,
  );
  return rows.map((r) => `dropload.${r.name}`);
}

/** Removes what a file staged, wherever it is: nothing staged outlives its file. */
export async function clearStaged(db: Kysely<Database>, datasetName: string, fileId: number): Promise<void> {
  for (const stage of await stageTablesOf(db, datasetName)) {
    await sql`delete from ${sql.table(stage)} where ${sql.ref(FILE_ID)} = ${fileId}`.execute(db);
  }
}
