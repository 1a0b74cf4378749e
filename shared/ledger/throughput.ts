import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

/** Rows loaded in one second (`second`: Unix seconds): the rate over that second, in rows/s. */
export interface RowsInSecond {
  second: number;
  rows: number;
}

/** A loaded chunk: its rows, and when its loading began and committed (Unix seconds, fractional). */
export interface ChunkTime {
  rows: number;
  start: number;
  end: number;
}

/**
 * Rows per second over the last `seconds`, from the chunks of these files that committed in that time,
 * each chunk's rows spread evenly over the time it took (`spreadRows`). Read from the ledger, not from
 * successive polls, so a page opened mid-load draws the load's history too; a chunk still loading is
 * not there yet, and fills in the seconds it took once it commits. The files are given (the newest
 * ones `status` lists) so the chunk table is probed by its primary key, never scanned.
 */
export async function rowsPerSecond(
  db: Kysely<Database>,
  fileIds: number[],
  seconds: number,
): Promise<RowsInSecond[]> {
  if (fileIds.length === 0) return [];
  const { rows } = await sql<{ rows: number; start: number; end: number; now: number }>`
    select rows_read as rows, extract(epoch from coalesce(started_at, loaded_at))::float8 as "start",
      extract(epoch from loaded_at)::float8 as "end", extract(epoch from now())::float8 as "now"
    from dropload.chunk
    where file_id = any(${fileIds}::bigint[]) and state = 'loaded'
      and loaded_at > now() - make_interval(secs => ${seconds})`.execute(db);
  const now = rows[0]?.now;
  if (now === undefined) return [];
  const chunks = rows.map((r) => ({ rows: Number(r.rows), start: Number(r.start), end: Number(r.end) }));
  return spreadRows(chunks, Math.floor(now - seconds), Math.floor(now));
}

/**
 * The rows of `chunks` per whole second from `from` to `to` (both included), each chunk's rows spread
 * evenly over its time: a 170,000-row chunk that took 17 s adds 10,000 to each of those seconds, not
 * 170,000 to the second it committed in. A chunk with no duration (or one that ends before it starts)
 * counts whole in the second it committed in. Seconds without rows are left out; the rest in order.
 */
export function spreadRows(chunks: readonly ChunkTime[], from: number, to: number): RowsInSecond[] {
  const bySecond = new Map<number, number>();
  const add = (second: number, rows: number) => {
    if (second >= from && second <= to) bySecond.set(second, (bySecond.get(second) ?? 0) + rows);
  };
  for (const { rows, start, end } of chunks) {
    if (!(end > start)) {
      add(Math.floor(end), rows);
      continue;
    }
    const rate = rows / (end - start);
    // Only the seconds inside the window: a chunk that began long before it costs no more than the window.
    const first = Math.max(Math.floor(start), from);
    const last = Math.min(Math.floor(end), to);
    for (let second = first; second <= last; second++) {
      const overlap = Math.min(end, second + 1) - Math.max(start, second);
      if (overlap > 0) add(second, rate * overlap);
    }
  }
  return [...bySecond].sort((a, b) => a[0] - b[0]).map(([second, rows]) => ({ second, rows }));
}
