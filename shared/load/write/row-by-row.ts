import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database } from '../../ledger/schema.ts';
import { onConflict, type WriteCounts } from './statement.ts';
import type { WriteTarget } from './target.ts';

/**
 * Finds the rows of a refused statement in one round trip: a temporary PL/pgSQL function inserts them
 * one by one on the server, each in its own exception block (a subtransaction), and returns the
 * database's own error for each refused row. Bisecting the statement instead cost O(log n) statements
 * per refused row, each a round trip with its savepoint: about 630 rows/s when every row is refused.
 * Rows go in line order, so a key repeated in the batch is refused on its later line, as before.
 */

/** A target with its columns' SQL types (the writing transaction's catalog). */
export interface TypedTarget extends WriteTarget {
  types: string[];
  /** Per column, whether a string goes as a JSON string (`jsonStringColumns`); absent when none does. */
  jsonStrings?: readonly boolean[];
  /** Columns an upsert compares as text (`TableShape`). */
  textCompared: ReadonlySet<string>;
}

/** A row the database refused: its position in the batch, and the fields of the error it raised. */
export interface Refusal {
  index: number;
  message: string;
  /** The error's DETAIL, if it had one. */
  detail?: string;
  /** The column the error names (a NOT NULL violation), if any. */
  column?: string;
}

export interface RowByRowResult extends WriteCounts {
  refused: Refusal[];
}

const FUNCTION = sql`pg_temp.dropload_row_by_row`;

/** A row the function returns: a refused row's position (from 1) and error, or (position 0) the counts. */
interface Outcome {
  ord: number;
  inserted: number | null;
  updated: number | null;
  message: string | null;
  detail: string | null;
  col: string | null;
}

/** Its argument list: one text array per column. */
function parameters(target: TypedTarget): RawBuilder<unknown> {
  return sql.raw(target.columns.map(() => 'text[]').join(', '));
}

/**
 * The function for a target. Its variables are prefixed and `use_column` settles any clash with a
 * column's name the column's way, so a table with a column named like one of them writes as it should.
 * The row is cast exactly as the batch statement casts it, so its error is the one that statement raised.
 */
function definition(trx: Transaction<Database>, target: TypedTarget): RawBuilder<unknown> {
  const table = sql.table(target.table);
  const n = target.columns.length;
  const aliases = target.columns.map((_, i) => `v${i}`);
  const values = sql.join(
    target.types.map((type, i) => sql`dropload_r.${sql.id(`v${i}`)}::${sql.raw(type)}`),
  );
  const insert = sql`insert into ${table} (${sql.join(target.columns.map((c) => sql.id(c)))})
    values (${values}) ${onConflict(table, target.columns, target.key, target.mode, target.textCompared)}
    returning (xmax = 0) into dropload_fresh`.compile(trx);
  const args = Array.from({ length: n }, (_, i) => `$${i + 1}`).join(', ');
  const blame = castBlame(target);
  const body = `#variable_conflict use_column
declare
  dropload_r record;
  dropload_fresh boolean;
  dropload_inserted int := 0;
  dropload_updated int := 0;
begin
  for dropload_r in select * from unnest(${args}) with ordinality as u(${aliases.join(', ')}, dropload_n) loop
    begin
      dropload_fresh := null;
      ${insert.sql};
      if dropload_fresh then dropload_inserted := dropload_inserted + 1;
      elsif not dropload_fresh then dropload_updated := dropload_updated + 1;
      end if;
    exception when data_exception or integrity_constraint_violation then
      ord := dropload_r.dropload_n;
      get stacked diagnostics message = message_text, detail = pg_exception_detail, col = column_name;
      ${blame}
      return next;
    end;
  end loop;
  ord := 0;
  inserted := dropload_inserted;
  updated := dropload_updated;
  message := null;
  detail := null;
  col := null;
  return next;
end`;
  return sql`create or replace function ${FUNCTION}(${parameters(target)})
    returns table (ord bigint, inserted int, updated int, message text, detail text, col text)
    language plpgsql as ${sql.lit(body)}`;
}

/**
 * A value the cast refused (`99999999999` for an integer, a year 0 date) raises an error that names no
 * column: for a refused row whose error names none, each value is cast again on its own, in column order,
 * and the first one refused is the column. Runs for refused rows only.
 */
function castBlame(target: TypedTarget): string {
  const tries = target.types.map(
    (type, i) => `if col = '' then
        begin
          perform dropload_r.v${i}::${type};
        exception when data_exception then
          col := ${quoteLiteral(target.columns[i] as string)};
        end;
      end if;`,
  );
  return `if sqlstate like '22%' then
      ${tries.join('\n      ')}
      end if;`;
}

const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** Creates the function for `target` in the transaction's session; `insertRowByRow` then calls it. */
export async function defineRowByRow(trx: Transaction<Database>, target: TypedTarget): Promise<void> {
  await definition(trx, target).execute(trx);
}

/** Drops the function again, so a pooled session keeps nothing of this write. */
export async function dropRowByRow(trx: Transaction<Database>, target: TypedTarget): Promise<void> {
  await sql`drop function if exists ${FUNCTION}(${parameters(target)})`.execute(trx);
}

/**
 * Inserts the rows (values as text, one array per column of the target `defineRowByRow` was given) one by one: those the database takes
 * are written and counted, and each refused one comes back with its error. An error that is not a row's
 * values' fault (SQLSTATE outside classes 22 and 23) propagates, as the batch statement's would.
 */
export async function insertRowByRow(
  trx: Transaction<Database>,
  columns: (string | null)[][],
): Promise<RowByRowResult> {
  const args = sql.join(columns.map((values) => sql`${values}::text[]`));
  const { rows } = await sql<Outcome>`
    select ord::int as ord, inserted, updated, message, detail, col from ${FUNCTION}(${args})`.execute(trx);
  const result: RowByRowResult = { inserted: 0, updated: 0, refused: [] };
  for (const row of rows) {
    if (row.message === null) {
      // The last row: the counts.
      result.inserted = row.inserted ?? 0;
      result.updated = row.updated ?? 0;
    } else {
      // GET DIAGNOSTICS gives '' for a field the error did not set; the driver gives none.
      result.refused.push({
        index: row.ord - 1,
        message: row.message,
        ...(row.detail ? { detail: row.detail } : {}),
        ...(row.col ? { column: row.col } : {}),
      });
    }
  }
  return result;
}
