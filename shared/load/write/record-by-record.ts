import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database } from '../../ledger/schema.ts';
import type { Refusal } from './row-by-row.ts';

/**
 * Finds the records of a refused multi-table write in a few round trips: their rows are staged in a
 * temporary table, and a temporary PL/pgSQL function writes them record by record on the server, each
 * in its own exception block (a subtransaction), running the very statements the batch ran, and
 * returns the database's own error for each refused record. Halving the batch under savepoints instead
 * cost O(log n) attempts per refused record, each several round trips: about 630 records/s when every
 * one is refused. Records go in line order, each seeing the records before it written (but for those
 * refused or waiting), as the halving did. The caller rehearses it: the function, the stage and
 * everything written are undone, and the records not refused are then written as a batch.
 */

type Text = string | null;

/** One statement of a record's write: a target's rows (of one level), read from a relation `u`. */
export interface SearchStep {
  /** The columns of `u`, all text. */
  columns: string[];
  /** Per record (by its position in the batch), its rows for this statement: text per column. */
  rows: Text[][][];
  /** The statement writing the rows of `source`; its one result row has `waiting`: how many rows wait for a parent. */
  statement: (source: RawBuilder<unknown>) => RawBuilder<unknown>;
}

/** A record the database refused: the error's fields, with the table it names. */
export interface RecordRefusal extends Omit<Refusal, 'index'> {
  table?: string;
  schema?: string;
}

const STAGE = sql`pg_temp.dropload_record_stage`;
const FUNCTION = sql`pg_temp.dropload_record_by_record`;
/** Raised (and caught) when a record has a row whose parent is missing: it waits, nothing of it written. */
export const WAITS = 'DLW01';

/** The stage: a row per step, record and row, with the widest step's columns as text. */
async function stage(trx: Transaction<Database>, steps: SearchStep[]): Promise<void> {
  const width = Math.max(...steps.map((s) => s.columns.length));
  const step: number[] = [];
  const unit: number[] = [];
  const values: Text[][] = Array.from({ length: width }, () => []);
  steps.forEach((s, k) => {
    s.rows.forEach((rows, u) => {
      for (const row of rows) {
        step.push(k);
        unit.push(u);
        for (const [i, column] of values.entries()) column.push(row[i] ?? null);
      }
    });
  });
  const columns = values.map((_, i) => sql`${sql.id(`v${i}`)} text`);
  await sql`create temp table ${STAGE} (step int, unit int, ${sql.join(columns)}) on commit drop`.execute(
    trx,
  );
  const arrays = values.map((column) => sql`${column}::text[]`);
  await sql`insert into ${STAGE} select * from unnest(${step}::int[], ${unit}::int[], ${sql.join(arrays)})`.execute(
    trx,
  );
  // Each record's rows are read by step and record, once per record: an index keeps that O(1).
  await sql`create index on ${STAGE} (step, unit)`.execute(trx);
  await sql`analyze ${STAGE}`.execute(trx);
}

/** Step `k`'s rows of the record the function is at, as the relation `u` its statement reads. */
function source(k: number, s: SearchStep): RawBuilder<unknown> {
  const named = s.columns.map((c, i) => sql`${sql.id(`v${i}`)} as ${sql.id(c)}`);
  return sql`(select ${sql.join(named)} from ${STAGE} where step = ${sql.lit(k)} and unit = dropload_u) as u`;
}

/** The function: every step for each record in turn, in an exception block that undoes a record refused or waiting. */
function definition(trx: Transaction<Database>, steps: SearchStep[], units: number): RawBuilder<unknown> {
  const statements = steps.map((s, k) => {
    return `${plpgsql(trx, s.statement(source(k, s)))} into dropload_s;
      dropload_waiting := dropload_waiting + dropload_s.waiting;`;
  });
  const body = `#variable_conflict use_column
declare
  dropload_u int;
  dropload_s record;
  dropload_waiting int;
begin
  for dropload_u in 0..${units - 1} loop
    begin
      dropload_waiting := 0;
      ${statements.join('\n      ')}
      if dropload_waiting > 0 then
        raise sqlstate '${WAITS}';
      end if;
    ${recordHandler('dropload_u')}
    end;
  end loop;
end`;
  return searchFunction(FUNCTION, body);
}

/**
 * The text of SQL for a function's body: compiled, not sent, so no plugin takes it for a statement (the
 * tests' statement counter would). It has no parameters: every value in it is a literal or an identifier.
 */
export function plpgsql(trx: Transaction<Database>, fragment: RawBuilder<unknown>): string {
  return fragment.compile(trx.withoutPlugins()).sql;
}

/** A search function: `body` returns a row per refused record (`recordHandler`). */
export function searchFunction(name: RawBuilder<unknown>, body: string): RawBuilder<unknown> {
  return sql`create function ${name}() returns table (dl_unit int, dl_message text, dl_detail text,
    dl_column text, dl_table text, dl_schema text) language plpgsql as ${sql.lit(body)}`;
}

/**
 * The exception clause of a record's block in a search function: a record that waits (`WAITS`) is
 * passed over, one refused for its values returns its error, with `unit` (a PL/pgSQL expression) its
 * position in the batch.
 */
export function recordHandler(unit: string): string {
  return `exception
      when sqlstate '${WAITS}' then
        null;
      when data_exception or integrity_constraint_violation then
        dl_unit := ${unit};
        get stacked diagnostics dl_message = message_text, dl_detail = pg_exception_detail,
          dl_column = column_name, dl_table = table_name, dl_schema = schema_name;
        return next;`;
}

interface Outcome {
  dl_unit: number;
  dl_message: string;
  dl_detail: string | null;
  dl_column: string | null;
  dl_table: string | null;
  dl_schema: string | null;
}

/**
 * The records of the batch (`units` of them) the database refuses, by position, with their errors.
 * It writes them: run it rehearsed (see `rehearse`). A value the server cannot take as text (a NUL
 * byte) fails it whole, with that error.
 */
export async function refusedRecords(
  trx: Transaction<Database>,
  steps: SearchStep[],
  units: number,
): Promise<Map<number, RecordRefusal>> {
  if (steps.length === 0 || units === 0) return new Map();
  await stage(trx, steps);
  await definition(trx, steps, units).execute(trx);
  return refusalsOf(trx, FUNCTION);
}

/** Runs a search function: the records it found refused, by position, with their errors. */
export async function refusalsOf(
  trx: Transaction<Database>,
  name: RawBuilder<unknown>,
): Promise<Map<number, RecordRefusal>> {
  const refused = new Map<number, RecordRefusal>();
  const { rows } = await sql<Outcome>`select * from ${name}()`.execute(trx);
  for (const row of rows) {
    // GET DIAGNOSTICS gives '' for a field the error did not set; the driver gives none.
    refused.set(row.dl_unit, {
      message: row.dl_message,
      ...(row.dl_detail ? { detail: row.dl_detail } : {}),
      ...(row.dl_column ? { column: row.dl_column } : {}),
      ...(row.dl_table ? { table: row.dl_table } : {}),
      ...(row.dl_schema ? { schema: row.dl_schema } : {}),
    });
  }
  return refused;
}
