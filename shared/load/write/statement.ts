import { type RawBuilder, sql } from 'kysely';
import type { TargetMode } from '../../config/dataset.ts';

/** What the write statements share: their size, their conflict handling, how they count what they did. */

/**
 * Rows per statement: big enough to amortize the round trip, small enough that a refused one costs
 * little to redo row by row (one table) or record by record (records of several tables).
 */
export const STATEMENT_ROWS = 5000;

export interface WriteCounts {
  inserted: number;
  updated: number;
}

/**
 * The `on conflict` clause of an insert into a table by `mode`: none for `insert` (a duplicate key is
 * the database's refusal), `do nothing` for `insert-ignore` or a key that is every column, else an
 * update of the other columns where one of them changes (an unchanged row is not rewritten).
 * `table` is how the statement names the target: its table, or its alias. The columns of
 * `textCompared` (`TableShape`) are compared as their text: their type has no equality.
 */
export function onConflict(
  table: RawBuilder<unknown>,
  columns: readonly string[],
  key: readonly string[],
  mode: TargetMode,
  textCompared: ReadonlySet<string>,
): RawBuilder<unknown> {
  if (mode === 'insert') return sql``;
  const keys = sql.join(key.map((c) => sql.id(c)));
  const rest = columns.filter((c) => !key.includes(c));
  if (mode === 'insert-ignore' || rest.length === 0) return sql`on conflict (${keys}) do nothing`;
  const compared = (row: RawBuilder<unknown>) =>
    comparedRow(rest, textCompared, (c) => sql`${row}.${sql.id(c)}`);
  return sql`on conflict (${keys}) do update set ${sql.join(rest.map((c) => sql`${sql.id(c)} = excluded.${sql.id(c)}`))}
    where (${compared(table)})
      is distinct from (${compared(sql`excluded`)})`;
}

/**
 * Columns as an "unchanged" test compares them (`is distinct from`), joined for a row: each `column(c)`
 * itself, or its text where `textCompared` (`TableShape`) has it, its type having no equality (json's
 * text is exactly what it stores; box's `=` compares areas). The upsert's test and the search's no-op
 * check (`no-op-steps.ts`) both compare so.
 */
export function comparedRow(
  columns: readonly string[],
  textCompared: ReadonlySet<string>,
  column: (c: string) => RawBuilder<unknown>,
): RawBuilder<unknown> {
  return sql.join(columns.map((c) => (textCompared.has(c) ? sql`${column(c)}::text` : column(c))));
}

/**
 * `insert` (ending in its `on conflict` clause, if any) with the rows it inserted and updated counted:
 * a row that takes the conflict's update has an `xmax`, a fresh one does not.
 */
export function counted(insert: RawBuilder<unknown>, mode: TargetMode): RawBuilder<WriteCounts> {
  if (mode === 'insert') {
    return sql<WriteCounts>`with w as (${insert} returning 1) select count(*)::int as inserted, 0 as updated from w`;
  }
  return sql<WriteCounts>`with w as (${insert} returning (xmax = 0) as fresh)
    select count(*) filter (where fresh)::int as inserted, count(*) filter (where not fresh)::int as updated from w`;
}
