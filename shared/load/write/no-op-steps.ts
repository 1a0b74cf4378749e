import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Target } from '../../config/dataset.ts';
import type { Database } from '../../ledger/schema.ts';
import { plpgsql } from './record-by-record.ts';
import { comparedRow } from './statement.ts';

/**
 * A step of the one-row search (`record-rows.ts`) whose every row is already in its table, as it is:
 * the parents of a file dropped again, or every score of the bench's refused records. Each such insert
 * conflicts and writes nothing, and cannot fail once its values cast (no CHECK, no trigger, no column
 * left NULL that must not be), yet it costs the server a fifth to a third of a refused record's time. The
 * search skips the step when a set-based check over the stage, at the function's start, finds it so for
 * every record; should that check fail (a value that does not cast), the step runs as before.
 */

/**
 * Whether step `k` may be skipped, as far as the dataset tells: an insert that takes a conflict (not
 * `insert`, whose duplicate is the refusal), with no references (a missing parent makes a record wait),
 * into a table no other step writes (whose rows another record could change in between).
 */
export function skippable(targets: readonly Target[], k: number): boolean {
  const t = targets[k] as Target;
  return (
    t.mode !== 'insert' &&
    t.key.length > 0 &&
    t.references.length === 0 &&
    targets.filter((other) => other.table === t.table).length === 1
  );
}

/**
 * The table has nothing that could refuse or change a row that conflicts: a plain table (no partition's
 * own constraints), no row security, no trigger of its own, no CHECK (a NOT VALID one still applies to
 * new rows), no generated column, and every NOT NULL column the step does not write has a default.
 */
function plainTable(table: string, written: readonly string[]): RawBuilder<unknown> {
  const names = sql`array[${sql.join(written.map((c) => sql.lit(c)))}]::name[]`;
  return sql`coalesce((select c.relkind = 'r' and not c.relrowsecurity
      and not exists (select 1 from pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal)
      and not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'c')
      and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
        and not a.attisdropped and (a.attgenerated <> ''
          or (a.attnotnull and not a.atthasdef and a.attidentity = '' and a.attname <> all (${names}))))
    from pg_class c where c.oid = to_regclass(${sql.lit(table)})), false)`;
}

/** A staged row of the step, as the columns the search names it by, with their casts. */
export interface StagedRow {
  /** The stage's column saying whether the record has a row of the step, when some record has none. */
  has?: string;
  /** Per column of the target, the staged value cast as the step casts it. */
  values: RawBuilder<unknown>[];
}

/**
 * The PL/pgSQL block, run once before the records, that sets `variable` to whether every staged row of
 * the step has its key in the table with every written column equal (`is not distinct from` of
 * `comparedRow`, the upsert's own test of a change: a column without equality as its text): so each insert would take the conflict and change nothing.
 */
export function noOpCheck(
  trx: Transaction<Database>,
  target: Target,
  textCompared: ReadonlySet<string>,
  stage: RawBuilder<unknown>,
  row: StagedRow,
  variable: string,
): string {
  const column = (c: string) => row.values[target.columns.indexOf(c)] as RawBuilder<unknown>;
  const keys = target.key.map((k) => sql`t.${sql.id(k)} = ${column(k)}`);
  const existing = comparedRow(target.columns, textCompared, (c) => sql`t.${sql.id(c)}`);
  const staged = comparedRow(target.columns, textCompared, column);
  const has = row.has === undefined ? sql`` : sql`dropload_r.${sql.id(row.has)} and `;
  const check = sql`select ${plainTable(target.table, target.columns)} and not exists (
      select 1 from ${stage} as dropload_r where ${has}not exists (
        select 1 from ${sql.table(target.table)} as t
        where ${sql.join(keys, sql` and `)} and (${existing}) is not distinct from (${staged})))`;
  return `begin
    ${plpgsql(trx, check)} into ${variable};
  exception when others then
    -- A value that does not cast, or a column without equality an upsert's textCompared does not
    -- name (an insert-ignore's json: the catalog is asked for upserts only): the step runs, as it did.
    ${variable} := false;
  end;`;
}
