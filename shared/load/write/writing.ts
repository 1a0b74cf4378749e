import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { TableDataset } from '../../config/dataset.ts';
import { classifyError, errorMessage, TableShapeError } from '../../core/errors.ts';
import type { Reject } from '../../ledger/ledger.ts';
import type { Database } from '../../ledger/schema.ts';
import type { ValidRow } from '../validation.ts';
import { copyField, copyIn, copySupported } from './copy.ts';

export interface WriteCounts {
  inserted: number;
  updated: number;
}

export interface WriteResult extends WriteCounts {
  rejects: Reject[];
}

/** One pass over rows that are read (parsed, validated) as they are written: see `chunk-rows.ts`. */
export interface RowPass {
  /** The next valid row's values, in the written dataset's field order; undefined after the last. */
  next(): unknown[] | undefined;
  /** Rows `next` has returned so far. */
  readonly rows: number;
  /** Line of the row `next` returned last. */
  readonly line: number;
  /** Original text of the row `next` returned last. */
  raw(): string;
  /** Records refused before the database saw them (unreadable, invalid), in line order. */
  readonly rejects: Reject[];
}

/** Starts a fresh pass over the same rows: every pass reads them from the start. */
export type RowStream = () => RowPass;

export interface StreamWriteResult extends WriteResult {
  /** Valid rows read. */
  rows: number;
  /** Records refused before the database saw them; `rejects` has those the database refused. */
  invalid: Reject[];
}

/** Rows per statement: big enough to amortize the round trip, small enough to bisect cheaply. */
const STATEMENT_ROWS = 5000;

/** Column name → SQL type of a table, read from the catalog so the database decides every cast. */
type TableShape = Map<string, string>;

/**
 * Column name → SQL type, read in the transaction that writes rather than cached: one catalog query
 * per chunk is cheap, and a migration that changes a table is seen by the very next chunk.
 */
export async function tableShape(db: Kysely<Database>, table: string): Promise<TableShape> {
  const result = await sql<{ name: string; type: string }>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
    from pg_attribute a
    where a.attrelid = to_regclass(${table}) and a.attnum > 0 and not a.attisdropped`.execute(db);
  if (result.rows.length === 0)
    throw new TableShapeError(`table ${table} does not exist (has its migration run?)`);
  return new Map(result.rows.map((r) => [r.name, r.type]));
}

/** A value as the text Postgres casts from (dates in ISO 8601, objects as JSON); null for no value. */
export function toText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return JSON.stringify(value);
}

/** Why a value cannot be written as text: an object JSON cannot hold (a BigInt inside, a cycle), an invalid Date. */
export function unwritableReason(err: unknown): string {
  return `value cannot be written: ${errorMessage(err)}`;
}

/**
 * Rows whose values can all be written, in order; each other row becomes a reject naming the field.
 * Only objects can fail (`toText` of a string, number or boolean cannot), so only they are tried.
 */
function writable(plan: Plan, rows: ValidRow[], rejects: Reject[]): ValidRow[] {
  const out: ValidRow[] = [];
  for (const row of rows) {
    const bad = plan.fields.find((f) => {
      const v = row.values[f];
      if (v === null || typeof v !== 'object') return false;
      try {
        toText(v);
        return false;
      } catch (err) {
        const reason = unwritableReason(err);
        rejects.push({ line: row.line, column: f, kind: 'unwritable', reason, raw: row.raw });
        return true;
      }
    });
    if (bad === undefined) out.push(row);
  }
  return out;
}

interface Plan {
  table: string;
  fields: string[];
  columns: string[];
  types: string[];
  key: string[];
  upsert: boolean;
}

async function planFor(trx: Transaction<Database>, dataset: TableDataset): Promise<Plan> {
  const shape = await tableShape(trx, dataset.table);
  const columns = dataset.fields.map((f) => dataset.columnOf[f] as string);
  const missing = columns.filter((c) => !shape.has(c));
  if (missing.length > 0) {
    throw new TableShapeError(
      `table ${dataset.table} has no column ${missing.join(', ')} (dataset ${dataset.name})`,
    );
  }
  return {
    table: dataset.table,
    fields: dataset.fields,
    columns,
    types: columns.map((c) => shape.get(c) as string),
    key: dataset.key.map((f) => dataset.columnOf[f] as string),
    upsert: dataset.mode === 'upsert',
  };
}

/** `insert … select <select> from <source>`, with the dataset's conflict handling and a count of what it did. */
function insertStatement(
  plan: Plan,
  select: RawBuilder<unknown>,
  source: RawBuilder<unknown>,
): RawBuilder<WriteCounts> {
  const insert = sql`insert into ${sql.table(plan.table)} (${sql.join(plan.columns.map((c) => sql.id(c)))})
    select ${select} from ${source}`;
  if (!plan.upsert) {
    return sql<WriteCounts>`with w as (${insert} returning 1) select count(*)::int as inserted, 0 as updated from w`;
  }
  const rest = plan.columns.filter((c) => !plan.key.includes(c));
  const target = sql.join(plan.key.map((c) => sql.id(c)));
  const onConflict =
    rest.length === 0
      ? sql`on conflict (${target}) do nothing`
      : sql`on conflict (${target}) do update set ${sql.join(rest.map((c) => sql`${sql.id(c)} = excluded.${sql.id(c)}`))}
        where (${sql.join(rest.map((c) => sql`${sql.table(plan.table)}.${sql.id(c)}`))})
          is distinct from (${sql.join(rest.map((c) => sql`excluded.${sql.id(c)}`))})`;
  return sql<WriteCounts>`with w as (${insert} ${onConflict} returning (xmax = 0) as fresh)
    select count(*) filter (where fresh)::int as inserted, count(*) filter (where not fresh)::int as updated from w`;
}

function statement(plan: Plan, rows: ValidRow[]): RawBuilder<WriteCounts> {
  const arrays = plan.fields.map((f) => rows.map((r) => toText(r.values[f])));
  const aliases = plan.columns.map((_, i) => sql.id(`v${i}`));
  const casts = plan.columns.map((_, i) => sql`u.${sql.id(`v${i}`)}::${sql.raw(plan.types[i] as string)}`);
  const unnest = sql.join(arrays.map((a) => sql`${a}::text[]`));
  return insertStatement(plan, sql.join(casts), sql`unnest(${unnest}) as u(${sql.join(aliases)})`);
}

/** In upsert mode a key may appear once per statement: the file's later line wins. */
function lastPerKey(plan: Plan, rows: ValidRow[]): ValidRow[] {
  if (!plan.upsert) return rows;
  const keyFields = plan.key.map((c) => plan.fields[plan.columns.indexOf(c)] as string);
  const byKey = new Map<string, ValidRow>();
  for (const row of rows) byKey.set(JSON.stringify(keyFields.map((f) => toText(row.values[f]))), row);
  return byKey.size === rows.length ? rows : [...byKey.values()];
}

function dbReject(row: ValidRow, err: unknown): Reject {
  const column = (err as { column?: string }).column ?? null;
  const detail = (err as { detail?: string }).detail;
  const reason = `database refused the row: ${(err as Error).message}${detail ? ` (${detail})` : ''}`;
  return { line: row.line, column, kind: 'refused', reason, raw: row.raw };
}

/**
 * Writes rows with one COPY where the database takes it; else, or when the COPY is refused for a row's
 * values, in statements of STATEMENT_ROWS. A statement the database refuses for a row's values
 * (SQLSTATE class 22/23) is bisected under savepoints, so one bad row costs O(log n) statements and
 * becomes a reject while its neighbours load.
 */
export async function writeRows(
  trx: Transaction<Database>,
  dataset: TableDataset,
  rows: ValidRow[],
): Promise<WriteResult> {
  const plan = await planFor(trx, dataset);
  const result: WriteResult = { inserted: 0, updated: 0, rejects: [] };
  const unique = lastPerKey(plan, writable(plan, rows, result.rejects));
  if (unique.length === 0) return result;
  if ((await copySupported(trx)) && (await writeByCopy(trx, plan, unique, result))) return result;
  await writeStatements(trx, plan, unique, result);
  return result;
}

/**
 * Writes the rows of `stream` as they are read. Inserts stream into one COPY while the rows are parsed
 * and validated, so the database works on a piece while the next one is being made; nothing but the
 * piece in flight is held. Upserts (one row per key, the later line wins), databases without COPY,
 * and a COPY refused for a row's values (rolled back to its savepoint) take a second pass that holds
 * the valid rows, then go the way of `writeRows`: the statement path finds the refused rows.
 */
export async function writeRowStream(
  trx: Transaction<Database>,
  dataset: TableDataset,
  stream: RowStream,
): Promise<StreamWriteResult> {
  const plan = await planFor(trx, dataset);
  const copy = await copySupported(trx);
  if (copy && !plan.upsert) {
    const pass = stream();
    const unwritable: Reject[] = [];
    const inserted = await copyPass(trx, plan, pass, unwritable);
    if (inserted !== undefined) {
      const invalid = mergeByLine(pass.rejects, unwritable);
      return { inserted, updated: 0, rejects: [], rows: pass.rows - unwritable.length, invalid };
    }
  }
  const pass = stream();
  const rows: ValidRow[] = [];
  for (let values = pass.next(); values !== undefined; values = pass.next()) {
    const named: Record<string, unknown> = {};
    for (let f = 0; f < plan.fields.length; f++) named[plan.fields[f] as string] = values[f];
    rows.push({ line: pass.line, raw: pass.raw(), values: named });
  }
  const unwritable: Reject[] = [];
  const result: WriteResult = { inserted: 0, updated: 0, rejects: [] };
  const valid = writable(plan, rows, unwritable);
  const unique = lastPerKey(plan, valid);
  // An insert here had its COPY refused already: straight to the statements that isolate the row.
  if (unique.length > 0 && !(copy && plan.upsert && (await writeByCopy(trx, plan, unique, result)))) {
    await writeStatements(trx, plan, unique, result);
  }
  return { ...result, rows: valid.length, invalid: mergeByLine(pass.rejects, unwritable) };
}

/** Two lists of rejects, each in line order, as one in line order. */
function mergeByLine(a: Reject[], b: Reject[]): Reject[] {
  return b.length === 0 ? a : [...a, ...b].sort((x, y) => x.line - y.line);
}

async function writeStatements(trx: Transaction<Database>, plan: Plan, rows: ValidRow[], into: WriteResult) {
  for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
    await writeIsolating(trx, plan, rows.slice(i, i + STATEMENT_ROWS), into);
  }
}

/** One pass into `copy … from stdin` under a savepoint: the rows copied, or undefined (nothing written) when the database refused a row's values. */
async function copyPass(
  trx: Transaction<Database>,
  plan: Plan,
  pass: RowPass,
  unwritable: Reject[],
): Promise<number | undefined> {
  const columns = sql.join(plan.columns.map((c) => sql.id(c)));
  await sql`savepoint dropload_copy`.execute(trx);
  try {
    const copy = sql`copy ${sql.table(plan.table)} (${columns}) from stdin`.compile(trx).sql;
    const copied = await copyIn(trx, copy, copyLines(plan.fields, pass, unwritable));
    await sql`release savepoint dropload_copy`.execute(trx);
    return copied;
  } catch (err) {
    if (classifyError(err) !== 'data') throw err;
    await sql`rollback to savepoint dropload_copy`.execute(trx);
    await sql`release savepoint dropload_copy`.execute(trx);
    return undefined;
  }
}

/** Rows per piece of COPY data: the text of one piece is in memory at a time, not the whole chunk's. */
const COPY_PIECE_ROWS = 1000;

/**
 * COPY text-format lines of the rows a pass reads (values in the order of `fields`), in pieces. A row
 * with a value that cannot be written is left out and added to `unwritable`: it is that row's fault,
 * and its chunk's other rows load.
 */
export function* copyLines(
  fields: readonly string[],
  pass: RowPass,
  unwritable: Reject[],
): Generator<string> {
  const width = fields.length;
  let piece = '';
  let n = 0;
  for (let values = pass.next(); values !== undefined; values = pass.next()) {
    let line: string;
    try {
      line = copyLine(values, width);
    } catch (err) {
      // Rare: which field it was is found again, off the hot path.
      const f = values.findIndex((v) => {
        try {
          copyField(v);
          return false;
        } catch {
          return true;
        }
      });
      const reason = unwritableReason(err);
      unwritable.push({
        line: pass.line,
        column: fields[f] ?? null,
        kind: 'unwritable',
        reason,
        raw: pass.raw(),
      });
      continue;
    }
    piece += `${line}\n`;
    if (++n === COPY_PIECE_ROWS) {
      yield piece;
      piece = '';
      n = 0;
    }
  }
  if (piece !== '') yield piece;
}

/** One row's values as a COPY text-format line, without its newline. */
function copyLine(values: unknown[], width: number): string {
  let line = copyField(values[0]);
  for (let f = 1; f < width; f++) line += `\t${copyField(values[f])}`;
  return line;
}

/** COPY text-format lines for `rows`, in the plan's column order. */
function* copyData(plan: Plan, rows: ValidRow[]): Generator<string> {
  const fields = plan.fields;
  let piece = '';
  for (let i = 0; i < rows.length; i++) {
    const values = (rows[i] as ValidRow).values;
    let line = copyField(values[fields[0] as string]);
    for (let f = 1; f < fields.length; f++) line += `\t${copyField(values[fields[f] as string])}`;
    piece += `${line}\n`;
    if ((i + 1) % COPY_PIECE_ROWS === 0) {
      yield piece;
      piece = '';
    }
  }
  if (piece !== '') yield piece;
}

const STAGE = 'dropload_stage';

/**
 * The fast path: inserts COPY straight into the table; upserts COPY into a temp table of the target's
 * column types, then `insert … select … on conflict` from it. Returns false, with nothing written,
 * when the database refuses a row's values: the statement path then finds which row.
 */
async function writeByCopy(trx: Transaction<Database>, plan: Plan, rows: ValidRow[], into: WriteResult) {
  const columns = sql.join(plan.columns.map((c) => sql.id(c)));
  await sql`savepoint dropload_copy`.execute(trx);
  try {
    let counts: WriteCounts;
    if (plan.upsert) {
      await sql`create temp table ${sql.id(STAGE)} on commit drop as
        select ${columns} from ${sql.table(plan.table)} with no data`.execute(trx);
      await copyIn(
        trx,
        sql`copy ${sql.id(STAGE)} (${columns}) from stdin`.compile(trx).sql,
        copyData(plan, rows),
      );
      const source = sql`${sql.id(STAGE)}`;
      const { rows: out } = await insertStatement(plan, columns, source).execute(trx);
      await sql`drop table ${sql.id(STAGE)}`.execute(trx);
      counts = { inserted: out[0]?.inserted ?? 0, updated: out[0]?.updated ?? 0 };
    } else {
      const copy = sql`copy ${sql.table(plan.table)} (${columns}) from stdin`.compile(trx).sql;
      counts = { inserted: await copyIn(trx, copy, copyData(plan, rows)), updated: 0 };
    }
    await sql`release savepoint dropload_copy`.execute(trx);
    into.inserted += counts.inserted;
    into.updated += counts.updated;
    return true;
  } catch (err) {
    if (classifyError(err) !== 'data') throw err;
    await sql`rollback to savepoint dropload_copy`.execute(trx);
    await sql`release savepoint dropload_copy`.execute(trx);
    return false;
  }
}

async function writeIsolating(trx: Transaction<Database>, plan: Plan, rows: ValidRow[], into: WriteResult) {
  if (rows.length === 0) return;
  await sql`savepoint dropload_write`.execute(trx);
  try {
    const { rows: out } = await statement(plan, rows).execute(trx);
    await sql`release savepoint dropload_write`.execute(trx);
    into.inserted += out[0]?.inserted ?? 0;
    into.updated += out[0]?.updated ?? 0;
  } catch (err) {
    if (classifyError(err) !== 'data') throw err;
    await sql`rollback to savepoint dropload_write`.execute(trx);
    await sql`release savepoint dropload_write`.execute(trx);
    if (rows.length === 1) {
      into.rejects.push(dbReject(rows[0] as ValidRow, err));
      return;
    }
    const half = rows.length >> 1;
    await writeIsolating(trx, plan, rows.slice(0, half), into);
    await writeIsolating(trx, plan, rows.slice(half), into);
  }
}
