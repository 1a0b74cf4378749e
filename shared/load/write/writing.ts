import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Format, TargetMode } from '../../config/dataset.ts';
import { errorMessage, TableShapeError } from '../../core/errors.ts';
import type { Reject, TableCounts } from '../../ledger/ledger.ts';
import type { Database } from '../../ledger/schema.ts';
import type { ValidRow } from '../validation.ts';
import { copyField, copyIn, copySupported } from './copy.ts';
import { hasEquality } from './equality.ts';
import { asJsonString, jsonBased, jsonStringColumns } from './json-strings.ts';
import { defineRowByRow, dropRowByRow, insertRowByRow, type TypedTarget } from './row-by-row.ts';
import { dbReject, withSavepoint } from './savepoint.ts';
import { counted, onConflict, STATEMENT_ROWS, type WriteCounts } from './statement.ts';
import type { WriteTarget } from './target.ts';
import { useTimeZone } from './time-zone.ts';

export interface WriteResult extends WriteCounts {
  /**
   * Rows sent to the table that neither inserted nor updated a row: an upsert's unchanged row (its
   * `is distinct from` skip), an `insert-ignore` conflict, a key a later line of the same chunk superseded.
   */
  unchanged: number;
  rejects: Reject[];
  /** A multi-table dataset's rows per table (its counts above are in records). */
  tables?: Record<string, TableCounts>;
}

/** What the writer sent, less what the database inserted, updated or refused: counted where it is written. */
function unchangedOf(sent: number, result: WriteResult): number {
  return sent - result.rejects.length - result.inserted - result.updated;
}

/** One pass over rows that are read (parsed, validated) as they are written: see `chunk-rows.ts`. */
export interface RowPass {
  /** The next valid row's values, in the write target's column order; undefined after the last. */
  next(): unknown[] | undefined;
  /** Rows `next` has returned so far. */
  readonly rows: number;
  /** Line of the row `next` returned last. */
  readonly line: number;
  /** Original text of the row `next` returned last. */
  raw(): string;
  /** Records refused before the database saw them (unreadable, invalid), in line order. */
  readonly rejects: Reject[];
  /**
   * The row `next` returned last has no string with a character COPY escapes (a backslash, tab, line
   * break or carriage return): its strings are written as they are, without a look at each.
   */
  readonly plain?: boolean;
}

/** Starts a fresh pass over the same rows: every pass reads them from the start. */
export type RowStream = () => RowPass;

export interface StreamWriteResult extends WriteResult {
  /** Valid rows read. */
  rows: number;
  /** Records refused before the database saw them; `rejects` has those the database refused. */
  invalid: Reject[];
}

/** Column name → SQL type of a table, read from the catalog so the database decides every cast. */
export interface TableShape extends ReadonlyMap<string, string> {
  /**
   * The columns an upsert compares as text, their type having no equality (`equality.ts`). Read for an
   * upsert only (the one statement that compares): empty for any other mode.
   */
  readonly textCompared: ReadonlySet<string>;
  /**
   * The columns whose type is json or jsonb, directly or as a domain over one (`json-strings.ts`). Read
   * for an NDJSON dataset only (the one format whose strings go as JSON strings): empty for any other.
   */
  readonly jsonTyped: ReadonlySet<string>;
}

/**
 * Column name → SQL type, read in the transaction that writes rather than cached: one catalog query
 * per chunk is cheap, and a migration that changes a table is seen by the very next chunk. The test
 * for equality costs the query several times over (planning it, mostly), so only an upsert asks it;
 * whether a column is json-typed, only an NDJSON dataset.
 */
export async function tableShape(
  db: Kysely<Database>,
  table: string,
  mode?: TargetMode,
  format?: Format,
): Promise<TableShape> {
  const equality = mode === 'upsert' ? hasEquality(sql`a.atttypid`) : sql<boolean>`true`;
  const json = format === 'ndjson' ? jsonBased(sql`a.atttypid`) : sql<boolean>`false`;
  const result = await sql<{ name: string; type: string; equality: boolean; json: boolean }>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, ${equality} as equality,
      ${json} as json
    from pg_attribute a
    where a.attrelid = to_regclass(${table}) and a.attnum > 0 and not a.attisdropped`.execute(db);
  if (result.rows.length === 0)
    throw new TableShapeError(`table ${table} does not exist (has its migration run?)`);
  const textCompared = new Set(result.rows.filter((r) => !r.equality).map((r) => r.name));
  const jsonTyped = new Set(result.rows.filter((r) => r.json).map((r) => r.name));
  return Object.assign(new Map(result.rows.map((r) => [r.name, r.type])), { textCompared, jsonTyped });
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

/** `toText` of a value for its column: a string as a JSON string where `jsonString` says so (see `json-strings.ts`). */
export function columnText(value: unknown, jsonString: boolean | undefined): string | null {
  return toText(jsonString === true ? asJsonString(value) : value);
}

/** Why a value cannot be written as text: an object JSON cannot hold (a BigInt inside, a cycle), an invalid Date. */
export function unwritableReason(err: unknown): string {
  return `value cannot be written: ${errorMessage(err)}`;
}

/** A row as the writer holds it: its values in the target's column order, with where it came from. */
interface Row {
  line: number;
  raw: string;
  values: unknown[];
}

/**
 * Rows whose values can all be written, in order; each other row becomes a reject naming the field.
 * Only objects can fail (`toText` of a string, number or boolean cannot), so only they are tried.
 */
function writable(plan: TypedTarget, rows: Row[], rejects: Reject[]): Row[] {
  const out: Row[] = [];
  for (const row of rows) {
    const bad = row.values.findIndex((v, f) => {
      if (v === null || typeof v !== 'object') return false;
      try {
        toText(v);
        return false;
      } catch (err) {
        rejects.push({
          line: row.line,
          column: plan.fields[f] ?? null,
          kind: 'unwritable',
          reason: unwritableReason(err),
          raw: row.raw,
        });
        return true;
      }
    });
    if (bad < 0) out.push(row);
  }
  return out;
}

/** The target with its columns' SQL types, read in the writing transaction. */
async function planFor(trx: Transaction<Database>, target: WriteTarget): Promise<TypedTarget> {
  const shape = await tableShape(trx, target.table, target.mode, target.format);
  const missing = target.columns.filter((c) => !shape.has(c));
  if (missing.length > 0) {
    throw new TableShapeError(
      `table ${target.table} has no column ${missing.join(', ')} (dataset ${target.dataset})`,
    );
  }
  const types = target.columns.map((c) => shape.get(c) as string);
  return {
    ...target,
    types,
    jsonStrings: jsonStringColumns(target.columns, shape.jsonTyped),
    textCompared: shape.textCompared,
  };
}

/** `insert … select <select> from <source>`, with the dataset's conflict handling and a count of what it did. */
function insertStatement(
  plan: TypedTarget,
  select: RawBuilder<unknown>,
  source: RawBuilder<unknown>,
): RawBuilder<WriteCounts> {
  const table = sql.table(plan.table);
  return counted(
    sql`insert into ${table} (${sql.join(plan.columns.map((c) => sql.id(c)))})
      select ${select} from ${source} ${onConflict(table, plan.columns, plan.key, plan.mode, plan.textCompared)}`,
    plan.mode,
  );
}

/** The rows' values as text, one array per column: how statements send a batch. */
function textColumns(plan: TypedTarget, rows: Row[]): (string | null)[][] {
  return plan.columns.map((_, i) =>
    // The flag read once per column: a CSV statement's values go straight to `toText`.
    plan.jsonStrings?.[i] === true
      ? rows.map((r) => toText(asJsonString(r.values[i])))
      : rows.map((r) => toText(r.values[i])),
  );
}

function statement(plan: TypedTarget, arrays: (string | null)[][]): RawBuilder<WriteCounts> {
  const aliases = plan.columns.map((_, i) => sql.id(`v${i}`));
  const casts = plan.columns.map((_, i) => sql`u.${sql.id(`v${i}`)}::${sql.raw(plan.types[i] as string)}`);
  const unnest = sql.join(arrays.map((a) => sql`${a}::text[]`));
  return insertStatement(plan, sql.join(casts), sql`unnest(${unnest}) as u(${sql.join(aliases)})`);
}

/** In upsert mode a key may appear once per statement: the file's later line wins. */
function lastPerKey(plan: TypedTarget, rows: Row[]): Row[] {
  if (plan.mode !== 'upsert') return rows;
  const keyAt = plan.key.map((c) => plan.columns.indexOf(c));
  const byKey = new Map<string, Row>();
  for (const row of rows) byKey.set(JSON.stringify(keyAt.map((i) => toText(row.values[i]))), row);
  return byKey.size === rows.length ? rows : [...byKey.values()];
}

/**
 * Writes rows with one COPY where the database takes it; else, or when the COPY is refused for a row's
 * values, in statements of STATEMENT_ROWS. A statement the database refuses for a row's values
 * (SQLSTATE class 22/23) is rolled back to its savepoint and its rows go row by row on the server, in
 * one round trip: each refused row becomes a reject with the database's error while its neighbours
 * load. The rows are of file `fileId`: what the target adds to them after their fields is that id or
 * their line.
 */
export async function writeRows(
  trx: Transaction<Database>,
  target: WriteTarget,
  rows: ValidRow[],
  fileId: number,
): Promise<WriteResult> {
  await useTimeZone(trx, target.timeZone);
  const plan = await planFor(trx, target);
  const result: WriteResult = { inserted: 0, updated: 0, unchanged: 0, rejects: [] };
  const named = target.fields.length - target.added.length;
  const held = rows.map((row): Row => {
    const values = target.fields.map((f, i) =>
      i < named ? row.values[f] : target.added[i - named] === 'line' ? row.line : fileId,
    );
    return { line: row.line, raw: row.raw, values };
  });
  const valid = writable(plan, held, result.rejects);
  const sent = valid.length + result.rejects.length;
  const unique = lastPerKey(plan, valid);
  if (unique.length > 0 && !((await copySupported(trx)) && (await writeByCopy(trx, plan, unique, result))))
    await writeStatements(trx, plan, unique, result);
  return { ...result, unchanged: unchangedOf(sent, result) };
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
  target: WriteTarget,
  stream: RowStream,
): Promise<StreamWriteResult> {
  await useTimeZone(trx, target.timeZone);
  const plan = await planFor(trx, target);
  const copy = await copySupported(trx);
  if (copy && plan.mode !== 'upsert') {
    const pass = stream();
    const unwritable: Reject[] = [];
    const inserted = await copyPass(trx, plan, pass, unwritable);
    if (inserted !== undefined) {
      const invalid = mergeByLine(pass.rejects, unwritable);
      const rows = pass.rows - unwritable.length;
      return { inserted, updated: 0, unchanged: rows - inserted, rejects: [], rows, invalid };
    }
  }
  const pass = stream();
  const rows: Row[] = [];
  for (let values = pass.next(); values !== undefined; values = pass.next()) {
    rows.push({ line: pass.line, raw: pass.raw(), values });
  }
  const unwritable: Reject[] = [];
  const result: WriteResult = { inserted: 0, updated: 0, unchanged: 0, rejects: [] };
  const valid = writable(plan, rows, unwritable);
  const unique = lastPerKey(plan, valid);
  // An insert here had its COPY refused already: straight to the statements that isolate the row.
  if (
    unique.length > 0 &&
    !(copy && plan.mode === 'upsert' && (await writeByCopy(trx, plan, unique, result)))
  ) {
    await writeStatements(trx, plan, unique, result);
  }
  const unchanged = unchangedOf(valid.length, result);
  return { ...result, unchanged, rows: valid.length, invalid: mergeByLine(pass.rejects, unwritable) };
}

/** Two lists of rejects, each in line order, as one in line order. */
function mergeByLine(a: Reject[], b: Reject[]): Reject[] {
  return b.length === 0 ? a : [...a, ...b].sort((x, y) => x.line - y.line);
}

async function writeStatements(
  trx: Transaction<Database>,
  plan: TypedTarget,
  rows: Row[],
  into: WriteResult,
) {
  const state: Batches = { defined: false, rowByRow: false };
  for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
    await writeIsolating(trx, plan, rows.slice(i, i + STATEMENT_ROWS), into, state);
  }
  if (state.defined) await dropRowByRow(trx, plan);
}

/** One pass into `copy … from stdin` under a savepoint: the rows copied, or undefined (nothing written) when the database refused a row's values. */
async function copyPass(
  trx: Transaction<Database>,
  plan: TypedTarget,
  pass: RowPass,
  unwritable: Reject[],
): Promise<number | undefined> {
  const copied = await withSavepoint(trx, 'dropload_copy', () =>
    copyInto(trx, plan, sql.table(plan.table), copyLines(plan.fields, pass, unwritable, plan.jsonStrings)),
  );
  return copied.ok ? copied.value : undefined;
}

/** `copy <table> (<the plan's columns>) from stdin` of `lines`: the rows copied. */
function copyInto(
  trx: Transaction<Database>,
  plan: TypedTarget,
  table: RawBuilder<unknown>,
  lines: Iterable<string>,
): Promise<number> {
  const columns = sql.join(plan.columns.map((c) => sql.id(c)));
  return copyIn(trx, sql`copy ${table} (${columns}) from stdin`.compile(trx).sql, lines);
}

/** Rows per piece of COPY data: the text of one piece is in memory at a time, not the whole chunk's. */
const COPY_PIECE_ROWS = 1000;

/**
 * COPY text-format lines of the rows a pass reads (values in the order of `fields`), in pieces. A row
 * with a value that cannot be written is left out and added to `unwritable`: it is that row's fault,
 * and its chunk's other rows load. The strings of the columns `jsonStrings` marks go as JSON strings.
 */
export function* copyLines(
  fields: readonly string[],
  pass: RowPass,
  unwritable: Reject[],
  jsonStrings?: readonly boolean[],
): Generator<string> {
  const width = fields.length;
  let piece = '';
  let n = 0;
  for (let values = pass.next(); values !== undefined; values = pass.next()) {
    let line: string;
    try {
      // Only NDJSON marks columns, and its rows are not plain (`RowPass.plain` is CSV's): no shortcut lost.
      const plain = jsonStrings === undefined && pass.plain === true;
      line = plain ? plainLine(values, width) : copyLine(values, width, jsonStrings);
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

/**
 * One row's values as a COPY text-format line, without its newline; the strings of the columns `json`
 * marks (`jsonStringColumns`) as JSON strings. Without `json` (every CSV row) a test per value, no more.
 */
function copyLine(values: unknown[], width: number, json?: readonly boolean[]): string {
  let line = copyField(json?.[0] === true ? asJsonString(values[0]) : values[0]);
  for (let f = 1; f < width; f++)
    line += `\t${copyField(json?.[f] === true ? asJsonString(values[f]) : values[f])}`;
  return line;
}

/** `copyLine` of a plain row (see `RowPass.plain`): its strings need no escapes. */
function plainLine(values: unknown[], width: number): string {
  let line = plainField(values[0]);
  for (let f = 1; f < width; f++) line += `\t${plainField(values[f])}`;
  return line;
}

function plainField(value: unknown): string {
  return typeof value === 'string' ? value : copyField(value);
}

/** A pass over rows the writer holds, for `copyLines`; they were found writable already. */
function heldPass(rows: readonly Row[]): RowPass {
  let at = -1;
  return {
    next: () => rows[++at]?.values,
    get rows() {
      return Math.min(at + 1, rows.length);
    },
    get line() {
      return rows[at]?.line ?? 0;
    },
    raw: () => rows[at]?.raw ?? '',
    rejects: [],
  };
}

const STAGE = 'dropload_stage';

/**
 * The fast path: inserts COPY straight into the table; upserts COPY into a temp table of the target's
 * column types, then `insert … select … on conflict` from it. Returns false, with nothing written,
 * when the database refuses a row's values: the statement path then finds which row.
 */
async function writeByCopy(trx: Transaction<Database>, plan: TypedTarget, rows: Row[], into: WriteResult) {
  const columns = sql.join(plan.columns.map((c) => sql.id(c)));
  const written = await withSavepoint(trx, 'dropload_copy', async (): Promise<WriteCounts> => {
    const lines = copyLines(plan.fields, heldPass(rows), [], plan.jsonStrings);
    if (plan.mode !== 'upsert') {
      return { inserted: await copyInto(trx, plan, sql.table(plan.table), lines), updated: 0 };
    }
    await sql`create temp table ${sql.id(STAGE)} on commit drop as
      select ${columns} from ${sql.table(plan.table)} with no data`.execute(trx);
    const source = sql`${sql.id(STAGE)}`;
    await copyInto(trx, plan, source, lines);
    const { rows: out } = await insertStatement(plan, columns, source).execute(trx);
    await sql`drop table ${sql.id(STAGE)}`.execute(trx);
    return { inserted: out[0]?.inserted ?? 0, updated: out[0]?.updated ?? 0 };
  });
  if (!written.ok) return false;
  into.inserted += written.value.inserted;
  into.updated += written.value.updated;
  return true;
}

/** What the batches of one write share. */
interface Batches {
  /** The row-by-row function is defined: by the first batch that needs it; dropped at the end. */
  defined: boolean;
  /**
   * The last batch that went row by row had most of its rows refused: the next one goes row by row
   * straight away, as a statement for it would most likely be refused too (a re-dropped file).
   */
  rowByRow: boolean;
}

/**
 * One statement for the batch; if the database refuses it for a row's values, the batch goes row by
 * row on the server (see `row-by-row.ts`) and each refused row becomes a reject with its own error.
 * A value the server cannot even receive as text (a NUL byte) fails that call whole: the batch is
 * halved until that row is alone, and it is rejected with the error its statement met.
 */
async function writeIsolating(
  trx: Transaction<Database>,
  plan: TypedTarget,
  rows: Row[],
  into: WriteResult,
  state: Batches,
): Promise<void> {
  const arrays = textColumns(plan, rows);
  let refused: unknown;
  if (!state.rowByRow || rows.length === 1) {
    const tried = await withSavepoint(
      trx,
      'dropload_write',
      async () => (await statement(plan, arrays).execute(trx)).rows[0],
    );
    if (tried.ok) {
      into.inserted += tried.value?.inserted ?? 0;
      into.updated += tried.value?.updated ?? 0;
      return;
    }
    refused = tried.error;
  }
  if (!state.defined) await defineRowByRow(trx, plan);
  state.defined = true;
  const byRow = await withSavepoint(trx, 'dropload_write', () => insertRowByRow(trx, arrays));
  if (byRow.ok) {
    into.inserted += byRow.value.inserted;
    into.updated += byRow.value.updated;
    for (const refusal of byRow.value.refused) {
      into.rejects.push(dbReject(rows[refusal.index] as Row, refusal));
    }
    state.rowByRow = 2 * byRow.value.refused.length > rows.length;
  } else if (rows.length === 1) {
    into.rejects.push(dbReject(rows[0] as Row, refused));
  } else {
    const half = rows.length >> 1;
    await writeIsolating(trx, plan, rows.slice(0, half), into, state);
    await writeIsolating(trx, plan, rows.slice(half), into, state);
  }
}
