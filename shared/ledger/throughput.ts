import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

/** Rows read by the chunks that committed in one second (`second`: Unix seconds). */
export interface RowsInSecond {
  second: number;
  rows: number;
}

/**
 * Rows per second over the last `seconds`, from the chunks of these files as they committed (a
 * chunk's rows count in the second its `loaded_at` falls in). Read from the ledger, not from
 * successive polls, so a page opened mid-load draws the load's history too. The files are given (the
 * newest ones `status` lists) so the chunk table is probed by its primary key, never scanned.
 */
export async function rowsPerSecond(
  db: Kysely<Database>,
  fileIds: number[],
  seconds: number,
): Promise<RowsInSecond[]> {
  if (fileIds.length === 0) return [];
  const { rows } = await sql<{ second: number; rows: number }>`
    select floor(extract(epoch from loaded_at))::bigint as second, sum(rows_read)::bigint as rows
    from dropload.chunk
    where file_id = any(${fileIds}::bigint[]) and state = 'loaded'
      and loaded_at > now() - make_interval(secs => ${seconds})
    group by 1 order by 1`.execute(db);
  return rows.map((r) => ({ second: Number(r.second), rows: Number(r.rows) }));
}
