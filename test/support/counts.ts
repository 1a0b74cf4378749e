import { type Kysely, sql } from 'kysely';
import { expect } from 'vitest';
import type { Database } from '../../shared/ledger/schema.ts';

/**
 * Every file and chunk in the ledger whose counters break read = inserted + updated + unchanged + waiting
 * + rejected, has a negative counter, or whose `rows_waiting` is not its records with a row in
 * dropload.orphan (and no reject): each as `file <key>` or `chunk <key>#<idx>` with its counters.
 */
export async function countViolations(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ what: string; counts: string }>`
    with f as (
      select 'file ' || key as what, id as file_id, null::int as idx, rows_read, rows_inserted, rows_updated,
        rows_unchanged, rows_waiting, rows_rejected from dropload.file
      union all
      select 'chunk ' || f.key || '#' || c.idx, c.file_id, c.idx, c.rows_read, c.rows_inserted, c.rows_updated,
        c.rows_unchanged, c.rows_waiting, c.rows_rejected
      from dropload.chunk c join dropload.file f on f.id = c.file_id
    ), w as (
      select f.*, (select count(distinct (o.chunk_idx, o.line)) from dropload.orphan o
        where o.file_id = f.file_id and (f.idx is null or o.chunk_idx = f.idx)
          and not exists (select 1 from dropload.reject r where r.file_id = o.file_id and r.line = o.line)
      ) as parked from f
    )
    select what, concat_ws(' ', 'read', rows_read, 'inserted', rows_inserted, 'updated', rows_updated,
      'unchanged', rows_unchanged, 'waiting', rows_waiting, 'rejected', rows_rejected, 'parked', parked) as counts
    from w
    where rows_read <> rows_inserted + rows_updated + rows_unchanged + rows_waiting + rows_rejected
      or least(rows_read, rows_inserted, rows_updated, rows_unchanged, rows_waiting, rows_rejected) < 0
      or rows_waiting <> parked
    order by what`.execute(db);
  return [...rows.map((r) => `${r.what}: ${r.counts}`), ...(await tableViolations(db))];
}

/**
 * A multi-table dataset's file whose per-table counts break what records and rows owe each other: no
 * counter below zero, and no more records inserted (updated) than rows inserted (updated) in its
 * tables, since a record counts as inserted only by a row of its own that was (each row one record's).
 */
async function tableViolations(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ what: string; counts: string }>`
    with t as (
      select file_id, sum(rows_inserted) as inserted, sum(rows_updated) as updated,
        min(least(rows_inserted, rows_updated, rows_unchanged)) as least,
        string_agg(concat_ws(' ', table_name, rows_inserted, rows_updated, rows_unchanged), '; '
          order by table_name) as tables
      from dropload.table_count group by file_id
    )
    select 'tables of file ' || f.key as what, concat_ws(' ', 'records inserted', f.rows_inserted,
      'updated', f.rows_updated, 'tables:', t.tables) as counts
    from t join dropload.file f on f.id = t.file_id
    where t.least < 0 or f.rows_inserted > t.inserted or f.rows_updated > t.updated
    order by what`.execute(db);
  return rows.map((r) => `${r.what}: ${r.counts}`);
}

/** Asserts the counters' identity on every file and chunk of the ledger (see `countViolations`). */
export async function expectHonestCounts(db: Kysely<Database>): Promise<void> {
  expect(await countViolations(db)).toEqual([]);
}
