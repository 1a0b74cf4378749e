import type { Kysely } from 'kysely';
import Papa from 'papaparse';
import type { Format } from '../config/dataset.ts';
import { ConfigError } from '../core/errors.ts';
import { versionOrder, withoutNul } from '../ledger/ledger.ts';
import { fileRejects, type RejectSummary, rejectSummary, resolveRejects } from '../ledger/rejects.ts';
import type { Database, FileRow, RejectRow } from '../ledger/schema.ts';

export type { RejectRow };

/** The latest version of the key the ledger knows (in S3's order), if any: `dropload wait` waits for one to appear. */
export async function findNewestFileByKey(db: Kysely<Database>, key: string): Promise<FileRow | undefined> {
  let query = db.selectFrom('dropload.file').selectAll().where('key', '=', withoutNul(key));
  for (const order of versionOrder()) query = query.orderBy(order, 'desc');
  return query.limit(1).executeTakeFirst();
}

/** The latest version of the key the ledger knows (in S3's order): the one an operator means by a key. */
export async function newestFileByKey(db: Kysely<Database>, key: string): Promise<FileRow> {
  const file = await findNewestFileByKey(db, key);
  if (!file)
    throw new ConfigError(`no file with key "${key}" in the ledger (\`dropload status\` lists them)`);
  return file;
}

/**
 * The newest file of the key with its open rejects (with `all`, the resolved ones too; with `limit`, the
 * first that many in line order) and their counts.
 */
export async function listRejects(
  db: Kysely<Database>,
  key: string,
  options: { all?: boolean; limit?: number } = {},
): Promise<{ file: FileRow; rejects: RejectRow[]; summary: RejectSummary }> {
  const file = await newestFileByKey(db, key);
  const rejects = await fileRejects(db, file.id, options);
  return { file, rejects, summary: await rejectSummary(db, file.id) };
}

export interface OperatorResolution {
  fileId: number;
  key: string;
  /** Lines whose open rejects were resolved. */
  resolved: number[];
  /** Lines asked for that had no open reject (never rejected, or resolved already). */
  notOpen: number[];
}

/**
 * Resolves the open rejects of the newest file of the key, those on `lines` (all of them without),
 * as the operator's doing, with their reason. The file's counts stay: the rows did not load from it.
 */
export async function resolveByOperator(
  db: Kysely<Database>,
  key: string,
  request: { lines?: number[]; reason: string },
): Promise<OperatorResolution> {
  return db.transaction().execute(async (trx) => {
    const file = await newestFileByKey(trx, key);
    const open = await trx
      .selectFrom('dropload.reject')
      .select(['id', 'line'])
      .where('file_id', '=', file.id)
      .where('resolved_at', 'is', null)
      .$if(request.lines !== undefined, (q) =>
        q.where((eb) => eb('line', '=', eb.fn.any(eb.val(request.lines ?? [])))),
      )
      .orderBy('line')
      .forUpdate()
      .execute();
    await resolveRejects(
      trx,
      open.map((r) => r.id),
      { by: 'operator', resolution: request.reason },
    );
    const resolved = [...new Set(open.map((r) => Number(r.line)))];
    const notOpen = (request.lines ?? []).filter((l) => !resolved.includes(l));
    return { fileId: file.id, key: file.key, resolved, notOpen };
  });
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
