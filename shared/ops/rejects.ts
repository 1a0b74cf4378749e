import type { Kysely } from 'kysely';
import Papa from 'papaparse';
import type { Format } from '../config/dataset.ts';
import { ConfigError } from '../core/errors.ts';
import { rejectsOf, versionOrder, withoutNul } from '../ledger/ledger.ts';
import type { Database, FileRow } from '../ledger/schema.ts';

export type RejectRow = Awaited<ReturnType<typeof rejectsOf>>[number];

/** The latest version of the key the ledger knows (in S3's order): the one an operator means by a key. */
export async function newestFileByKey(db: Kysely<Database>, key: string): Promise<FileRow> {
  let query = db.selectFrom('dropload.file').selectAll().where('key', '=', withoutNul(key));
  for (const order of versionOrder()) query = query.orderBy(order, 'desc');
  const file = await query.limit(1).executeTakeFirst();
  if (!file)
    throw new ConfigError(`no file with key "${key}" in the ledger (\`dropload status\` lists them)`);
  return file;
}

export async function listRejects(
  db: Kysely<Database>,
  key: string,
): Promise<{ file: FileRow; rejects: RejectRow[] }> {
  const file = await newestFileByKey(db, key);
  return { file, rejects: await rejectsOf(db, file.id) };
}

export interface FileFormat {
  format: Format;
  delimiter: string;
}

/**
 * The rejected lines as a file of the dataset's own format, to fix and drop again: for CSV the
 * header (quoted as needed) then each original line unchanged; for NDJSON the original lines; for
 * Parquet the rows as NDJSON (a reject keeps a Parquet row as JSON).
 */
export function rejectsAsFile(file: FileRow, rejects: RejectRow[], format: FileFormat): string {
  const lines = rejects.map((r) => r.raw);
  if (format.format === 'csv') {
    if (!file.columns) throw new ConfigError(`file "${file.key}" has no recorded CSV header`);
    lines.unshift(Papa.unparse([file.columns], { delimiter: format.delimiter }));
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
