import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Reference, Target } from '../../config/dataset.ts';
import type { Database } from '../../ledger/schema.ts';
import { lookedUpFirst, lookUpFirst } from './known-parents.ts';
import { noOpCheck, skippable } from './no-op-steps.ts';
import {
  plpgsql,
  type RecordRefusal,
  recordHandler,
  refusalsOf,
  searchFunction,
  WAITS,
} from './record-by-record.ts';
import { type Own, selfMatchOf } from './self-row.ts';
import { onConflict } from './statement.ts';

/**
 * The search of `record-by-record.ts` for records that give each target at most one row (no `each`
 * array of several elements, no parent in the same batch): the usual shape, and the one a chunk of
 * refused records has when a file is dropped again. Each record is one row of a stage, and each of its
 * rows one plain `insert … values`, its parents looked up by key beforehand, in place of the batch's
 * set-based statement over a staged relation: about a third less of the server's time per record
 * (issue 14). What the row does is what that statement did with it: the same casts, in the same
 * order (references' keys, then columns), a row whose parent is missing written by no one and, unless
 * a value of the record is refused, the whole record waiting.
 */

type Text = string | null;

/** A target's rows, at most one per record, with its columns' and its references' key columns' SQL types. */
export interface RowStep {
  target: Target;
  types: string[];
  /** Per reference, per key column: the parent column's type. */
  refTypes: string[][];
  /** Columns an upsert compares as text (`TableShape`). */
  textCompared: ReadonlySet<string>;
  /** Per record (by its position in the batch), its row of this target, if any. */
  rows: ({ values: Text[]; refs: Text[][] } | undefined)[];
}

const STAGE = sql`pg_temp.dropload_record_rows`;
const FUNCTION = sql`pg_temp.dropload_row_search`;

/**
 * Whether the stage needs step `s`'s column saying if a record has a row: not when every record has one
 * (the usual shape), as long as the step has another column (the stage must have one).
 */
function needsHas(s: RowStep): boolean {
  const columns = s.target.columns.length + s.target.references.length;
  return columns === 0 || s.rows.some((row) => row === undefined);
}

/**
 * The stage's columns of step `k`: whether the record has a row (undefined when every record has one),
 * its values, its references' keys.
 */
function stageColumns(k: number, s: RowStep): { has?: string; values: string[]; refs: string[][] } {
  return {
    ...(needsHas(s) ? { has: `h${k}` } : {}),
    values: s.target.columns.map((_, i) => `s${k}_c${i}`),
    refs: s.target.references.map((r, i) => r.keyColumns.map((_, j) => `s${k}_r${i}_${j}`)),
  };
}

/**
 * The stage: a row per record, with every step's row in its own columns (text), and last the record's
 * position from 1 (`with ordinality`). Each array sent costs the driver's escaping of every element, the
 * larger part of the search's time in the process: none is sent that the server can tell itself.
 */
async function stage(trx: Transaction<Database>, steps: RowStep[]): Promise<void> {
  const names: RawBuilder<unknown>[] = [];
  const arrays: RawBuilder<unknown>[] = [];
  steps.forEach((s, k) => {
    const c = stageColumns(k, s);
    if (c.has !== undefined) {
      names.push(sql`${sql.id(c.has)} boolean`);
      arrays.push(sql`${s.rows.map((row) => row !== undefined)}::boolean[]`);
    }
    c.values.forEach((name, i) => {
      names.push(sql`${sql.id(name)} text`);
      arrays.push(sql`${s.rows.map((row) => row?.values[i] ?? null)}::text[]`);
    });
    c.refs.forEach((keys, i) => {
      keys.forEach((name, j) => {
        names.push(sql`${sql.id(name)} text`);
        arrays.push(sql`${s.rows.map((row) => row?.refs[i]?.[j] ?? null)}::text[]`);
      });
    });
  });
  names.push(sql`unit bigint`);
  // Last, so the insert below leaves them empty: filled before the records (`known-parents.ts`).
  const targets = steps.map((s) => s.target);
  steps.forEach((s, k) => {
    s.target.references.forEach((_, i) => {
      if (lookedUpFirst(targets, k, i)) names.push(sql`${sql.id(knownColumn(k, i))} text`);
    });
  });
  await sql`create temp table ${STAGE} (${sql.join(names)}) on commit drop`.execute(trx);
  await sql`insert into ${STAGE} select * from unnest(${sql.join(arrays)}) with ordinality`.execute(trx);
}

/** `dropload_r.<column>::<type>`: a staged value cast as the batch's statement casts it. */
function cast(column: string, type: string): RawBuilder<unknown> {
  return sql`dropload_r.${sql.id(column)}::${sql.raw(type)}`;
}

/** The stage's column of reference `i` of step `k`'s parent id when the table had it before the records. */
const knownColumn = (k: number, i: number) => `s${k}_k${i}`;

/** The variable a reference's parent id is looked up into. */
const parentVariable = (k: number, i: number) => `dropload_p${k}_${i}`;

/** Step `k`'s variables: one per reference, of its parent's id column's type. */
function declarations(trx: Transaction<Database>, k: number, s: RowStep): string[] {
  return s.target.references.map((r, i) => {
    const type = plpgsql(trx, sql`${sql.table(r.table)}.${sql.id(r.surrogate)}%type`);
    return `${parentVariable(k, i)} ${type};`;
  });
}

/** Reference `i`'s key column `j` as step `k`'s staged row names it, cast to the parent column's type. */
function refKey(k: number, s: RowStep, i: number, j: number): RawBuilder<unknown> {
  return cast(stageColumns(k, s).refs[i]?.[j] as string, s.refTypes[i]?.[j] as string);
}

/** The row's own value of a column, cast (see `self-row.ts`). */
function ownValue(k: number, s: RowStep, own: Own): RawBuilder<unknown> {
  const c = stageColumns(k, s);
  return 'column' in own
    ? cast(c.values[own.column] as string, s.types[own.column] as string)
    : cast(c.refs[own.reference]?.[0] as string, s.refTypes[own.reference]?.[0] as string);
}

/** After reference `i`'s lookup found no parent: the row's own id when it names itself (`self-row.ts`). */
function selfParent(k: number, s: RowStep, i: number): RawBuilder<unknown> {
  const match = selfMatchOf(s.target, s.target.references[i] as Reference);
  if (!match) return sql``;
  const c = stageColumns(k, s);
  const same = match.keys.map(
    (own, j) => sql`${ownValue(k, s, own)} = ${cast(c.refs[i]?.[j] as string, s.refTypes[i]?.[j] as string)}`,
  );
  const variable = sql.raw(parentVariable(k, i));
  return sql`
      if ${variable} is null and ${sql.join(same, sql` and `)} then
        ${variable} := ${ownValue(k, s, match.surrogate)};
      end if;`;
}

/**
 * Step `k` of a record: its row's parents looked up by key, then the row inserted, or, when a parent
 * is missing, its values cast (an invalid one refuses the record, as in the batch) and the record
 * marked waiting.
 */
function block(trx: Transaction<Database>, k: number, s: RowStep, targets: Target[]): string {
  const t = s.target;
  const c = stageColumns(k, s);
  const lookups = t.references.map((r, i) => {
    const on = r.keyColumns.map((key, j) => sql`p.${sql.id(key)} = ${refKey(k, s, i, j)}`);
    const variable = sql.raw(parentVariable(k, i));
    const lookup = sql`select p.${sql.id(r.surrogate)} into ${variable}
      from ${sql.table(r.table)} as p where ${sql.join(on, sql` and `)};`;
    if (!lookedUpFirst(targets, k, i)) return sql`${lookup}${selfParent(k, s, i)}`;
    const known = sql`dropload_r.${sql.id(knownColumn(k, i))}`;
    return sql`if ${known} is not null then
        ${variable} := ${known};
      else
        ${lookup}
      end if;${selfParent(k, s, i)}`;
  });
  const missing = t.references.map((_, i) => {
    const named = (c.refs[i] ?? []).map((name) => sql`dropload_r.${sql.id(name)} is not null`);
    return sql`(${sql.join(named, sql` and `)} and ${sql.raw(parentVariable(k, i))} is null)`;
  });
  const values = c.values.map((name, i) => cast(name, s.types[i] as string));
  const keyCasts = c.refs.flatMap((keys, i) =>
    keys.map((name, j) => cast(name, s.refTypes[i]?.[j] as string)),
  );
  const columns = [...t.columns, ...t.references.map((r) => r.column)];
  const insert = sql`insert into ${sql.table(t.table)} as t (${sql.join(columns.map((col) => sql.id(col)))})
      values (${sql.join([...values, ...t.references.map((_, i) => sql.raw(parentVariable(k, i)))])})
      ${onConflict(sql`t`, columns, t.key, t.mode, s.textCompared)};`;
  const write =
    missing.length === 0
      ? insert
      : sql`if ${sql.join(missing, sql` or `)} then
        perform ${sql.join([...keyCasts, ...values])};
        dropload_waiting := true;
      else
        ${insert}
      end if;`;
  const row = sql`${lookups.length === 0 ? sql`` : sql.join(lookups, sql`\n      `)}
      ${write}`;
  if (c.has === undefined) return plpgsql(trx, row);
  return plpgsql(
    trx,
    sql`if dropload_r.${sql.id(c.has)} then
      ${row}
    end if;`,
  );
}

/** The variable saying step `k` is skipped: every row of it already in its table (`no-op-steps.ts`). */
const skipVariable = (k: number) => `dropload_skip${k}`;

/** Step `k` of a record, unless the check before the loop found it changes nothing for any record. */
function stepOf(trx: Transaction<Database>, k: number, s: RowStep, targets: Target[]): string {
  if (!skippable(targets, k)) return block(trx, k, s, targets);
  return `if not ${skipVariable(k)} then
      ${block(trx, k, s, targets)}
    end if;`;
}

/** The parents looked up before the loop, set-based (`known-parents.ts`). */
function knownParents(trx: Transaction<Database>, steps: RowStep[], targets: Target[]): string[] {
  return steps.flatMap((s, k) =>
    s.target.references.flatMap((r, i) => {
      if (!lookedUpFirst(targets, k, i)) return [];
      const keys = r.keyColumns.map((_, j) => refKey(k, s, i, j));
      return [lookUpFirst(trx, r, STAGE, knownColumn(k, i), keys)];
    }),
  );
}

/** The checks, before the loop, of the steps that may be skipped. */
function noOpChecks(trx: Transaction<Database>, steps: RowStep[], targets: Target[]): string[] {
  return steps.flatMap((s, k) => {
    if (!skippable(targets, k)) return [];
    const c = stageColumns(k, s);
    const values = c.values.map((name, i) => cast(name, s.types[i] as string));
    return [
      noOpCheck(
        trx,
        s.target,
        s.textCompared,
        STAGE,
        { ...(c.has ? { has: c.has } : {}), values },
        skipVariable(k),
      ),
    ];
  });
}

/** The function: each record in turn, every step, in an exception block that undoes a record refused or waiting. */
function definition(trx: Transaction<Database>, steps: RowStep[]): RawBuilder<unknown> {
  const targets = steps.map((s) => s.target);
  const skips = steps.flatMap((_, k) => (skippable(targets, k) ? [`${skipVariable(k)} boolean;`] : []));
  const body = `#variable_conflict use_column
declare
  dropload_r record;
  dropload_waiting boolean;
  ${[...steps.flatMap((s, k) => declarations(trx, k, s)), ...skips].join('\n  ')}
begin
  ${[...noOpChecks(trx, steps, targets), ...knownParents(trx, steps, targets)].join('\n  ')}
  for dropload_r in select * from ${plpgsql(trx, STAGE)} order by unit loop
    begin
      dropload_waiting := false;
      ${steps.map((s, k) => stepOf(trx, k, s, targets)).join('\n      ')}
      if dropload_waiting then
        raise sqlstate '${WAITS}';
      end if;
    ${recordHandler('dropload_r.unit - 1')}
    end;
  end loop;
end`;
  return searchFunction(FUNCTION, body);
}

/**
 * The records of the batch (`units` of them) the database refuses, by position, with their errors,
 * as `refusedRecords` finds them. It writes them: run it rehearsed (see `rehearse`).
 */
export async function refusedRecordRows(
  trx: Transaction<Database>,
  steps: RowStep[],
  units: number,
): Promise<Map<number, RecordRefusal>> {
  if (steps.length === 0 || units === 0) return new Map();
  await stage(trx, steps);
  await definition(trx, steps).execute(trx);
  return refusalsOf(trx, FUNCTION);
}
