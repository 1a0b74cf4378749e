import { type RawBuilder, sql, type Transaction } from 'kysely';
import type { Dataset, Format, Reference, Target, TargetsDataset } from '../../config/dataset.ts';
import { TableShapeError } from '../../core/errors.ts';
import type { DuplicateKeys, Reject, TableCounts } from '../../ledger/ledger.ts';
import type { Database, ParentRow } from '../../ledger/schema.ts';
import type { ValidRow } from '../validation.ts';
import { jsonStringColumns } from './json-strings.ts';
import { type RecordRefusal, refusedRecords, type SearchStep } from './record-by-record.ts';
import { type RowStep, refusedRecordRows } from './record-rows.ts';
import { recordCounts } from './records.ts';
import { bisect, dbReject, keepIf, rehearse, withSavepoint } from './savepoint.ts';
import { type Own, selfMatchOf } from './self-row.ts';
import { onConflict, STATEMENT_ROWS, type WriteCounts } from './statement.ts';
import { writeTarget } from './target.ts';
import { useTimeZone } from './time-zone.ts';
import { columnText, tableShape, unwritableReason, type WriteResult, writeRows } from './writing.ts';

/**
 * The multi-table writer: one record (a flat row or a nested document) becomes rows of several
 * tables, written target by target, parents first, in the caller's transaction. A reference names its
 * parent by natural key; the surrogate id is looked up set-based inside the insert statement
 * (`insert … select … from unnest(…) u left join parent p on p.key = u.key`). A record is the unit:
 * all its rows are written or none. A record with a row whose parent is not there yet is not written
 * at all: it comes back as an orphan, for the caller to park and retry whole.
 */

type Text = string | null;

/** One row of one target, as text (the database casts), with its parents' natural keys. */
export interface TargetRow {
  /** Per `target.columns`. */
  values: Text[];
  /** Per `target.references`, per key column. */
  refs: Text[][];
}

/** What is written, refused or waits whole: a record of the file (its rows for every target), first written or retried. */
export interface Unit {
  line: number;
  raw: string;
  chunkIdx: number;
  /** Per target, in the dataset's write order. */
  rows: TargetRow[][];
  /** Set when the unit is a parked record being retried. */
  orphanId?: number;
}

/** A row of a unit whose parent is missing. */
export interface MissingRow {
  unit: Unit;
  target: Target;
  row: TargetRow;
  /** The referencing column whose parent is missing (the first one, when several are). */
  column: string;
  /** `shop.customers row with email = x@y`. */
  missing: string;
}

/** A unit that waits, none of it written: its first row whose parent is missing, and all its rows as parked. */
export interface Orphan extends MissingRow {
  record: StoredRecord;
}

export interface RelationalResult extends WriteCounts {
  /**
   * Per target table, in rows. `inserted`/`updated` above are in records, whatever the order of the
   * targets: a record counts as inserted when one of its rows was inserted, else as updated when one
   * was updated (see `recordOutcomes`).
   */
  tables: Record<string, TableCounts>;
  rejects: { unit: Unit; reject: Reject }[];
  orphans: Orphan[];
  /** Records of the chunk with duplicate keys (a record's first write only, not its retries). */
  duplicates?: DuplicateKeys;
}

/** Units per savepoint-protected attempt. */
const UNIT_BATCH = 2000;
/**
 * Units per batch that goes to the search first (see `writeIsolating`): the search's round trips are
 * the same whatever its size, and on a busy machine each costs more than the work it carries.
 */
const SEARCH_BATCH = STATEMENT_ROWS;

function get(value: unknown, step: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  return (value as Record<string, unknown>)[step];
}

/** A path parsed: from the root scope or the innermost, levels up, then the property steps (none: the scope itself). */
interface ParsedPath {
  root: boolean;
  ups: number;
  steps: string[];
}

/**
 * Paths parsed once: `valueAt` runs for every value of every row (a record's rows are built value by
 * value), and parsing the path each time (slices, a split) was most of its cost. Paths come from the
 * configuration, so the map stays as small as it is.
 */
const parsedPaths = new Map<string, ParsedPath>();

function parsePath(path: string): ParsedPath {
  let rest = path;
  const root = rest.startsWith('/');
  if (root) rest = rest.slice(1);
  let ups = 0;
  while (rest.startsWith('../')) {
    ups++;
    rest = rest.slice(3);
  }
  return { root, ups, steps: rest === '.' || rest === '' ? [] : rest.split('.') };
}

/** The value at `path` from a scope (record root, then one element per `each` level). */
export function valueAt(scope: readonly unknown[], path: string): unknown {
  let parsed = parsedPaths.get(path);
  if (parsed === undefined) {
    parsed = parsePath(path);
    parsedPaths.set(path, parsed);
  }
  let value = scope[parsed.root ? 0 : Math.max(0, scope.length - 1 - parsed.ups)];
  for (const step of parsed.steps) value = get(value, step);
  return value;
}

/** One scope per row of the target: the record itself, or one per element of the nested arrays. */
export function scopesOf(record: unknown, each: string | undefined): unknown[][] {
  let scopes: unknown[][] = [[record]];
  if (!each) return scopes;
  for (const piece of each.split('[]').filter((p) => p !== '')) {
    const path = piece.replace(/^\./, '');
    const next: unknown[][] = [];
    for (const scope of scopes) {
      const list = valueAt(scope, path);
      if (Array.isArray(list)) for (const element of list) next.push([...scope, element]);
    }
    scopes = next;
  }
  return scopes;
}

/** Per target, its columns' and its references' key columns' strings that go as JSON strings (`jsonStringColumns`). */
export interface JsonMarks {
  readonly jsonStrings?: readonly boolean[];
  /** Per reference, per key column: the parent column's mark. */
  readonly refJsonStrings?: readonly (readonly boolean[] | undefined)[];
}

/**
 * A record's rows as text. `marks` is, per target, its columns (and reference keys) whose strings go
 * as JSON strings (the plans'): encoded here, once, so a row that waits is stored as it is written.
 */
export function unitOf(
  dataset: TargetsDataset,
  row: ValidRow,
  chunkIdx: number,
  marks: readonly JsonMarks[] = [],
): Unit {
  const targets = dataset.targets;
  return {
    line: row.line,
    raw: row.raw,
    chunkIdx,
    rows: targets.map((t, ti) =>
      scopesOf(row.values, t.each).map((scope) => ({
        values: t.paths.map((p, i) => columnText(valueAt(scope, p), marks[ti]?.jsonStrings?.[i])),
        // A key as its parent column's value is written, so a jsonb key finds the row it names.
        refs: t.references.map((r, ri) =>
          r.keyPaths.map((p, j) => columnText(valueAt(scope, p), marks[ti]?.refJsonStrings?.[ri]?.[j])),
        ),
      })),
    ),
  };
}

/** How a waiting row is stored (by column name, so it survives a reordering of the config). */
export interface StoredRow {
  values: Record<string, Text>;
  refs: Record<string, Record<string, Text>>;
}

export function encodeRow(t: Target, row: TargetRow): StoredRow {
  return {
    values: Object.fromEntries(t.columns.map((c, i) => [c, row.values[i] ?? null])),
    refs: Object.fromEntries(
      t.references.map((r, i) => [
        r.column,
        Object.fromEntries(r.keyColumns.map((k, j) => [k, row.refs[i]?.[j] ?? null])),
      ]),
    ),
  };
}

export function decodeRow(t: Target, stored: StoredRow): TargetRow {
  return {
    values: t.columns.map((c) => stored.values?.[c] ?? null),
    refs: t.references.map((r) => r.keyColumns.map((k) => stored.refs?.[r.column]?.[k] ?? null)),
  };
}

/**
 * The stored record's format. 2: an NDJSON string for a json/jsonb column is held as its JSON string
 * (`unitOf`). A record without `v` was parked by older code, such a string as read (see `parkedBefore`).
 */
export const RECORD_VERSION = 2;

/** How a waiting record is stored: all its rows, per target table. */
export interface StoredRecord {
  v?: number;
  rows: Record<string, StoredRow[]>;
}

export function encodeUnit(targets: readonly Target[], unit: Unit): StoredRecord {
  const rows: Record<string, StoredRow[]> = {};
  targets.forEach((t, i) => {
    const list = unit.rows[i] ?? [];
    if (list.length > 0) rows[t.table] = list.map((r) => encodeRow(t, r));
  });
  return { v: RECORD_VERSION, rows };
}

/** Whether a parked record was stored by code older than `RECORD_VERSION` (a lone row is older still). */
export function parkedBefore(stored: StoredRecord | StoredRow): boolean {
  return !('rows' in stored) || (stored.v ?? 0) < RECORD_VERSION;
}

/**
 * A parked record's rows per target, or the table of it that is no longer a target. A row parked
 * before records were (one `StoredRow` of the `target` table) decodes as a record of that one row.
 */
export function decodeUnit(
  targets: readonly Target[],
  table: string,
  stored: StoredRecord | StoredRow,
): { rows: TargetRow[][] } | { gone: string } {
  const byTable = 'rows' in stored ? stored.rows : { [table]: [stored] };
  const gone = Object.keys(byTable).find((name) => !targets.some((t) => t.table === name));
  if (gone !== undefined) return { gone };
  return { rows: targets.map((t) => (byTable[t.table] ?? []).map((r) => decodeRow(t, r))) };
}

interface Plan extends JsonMarks {
  target: Target;
  types: string[];
  /** Per column, whether a string goes as a JSON string (`jsonStringColumns`); absent when none does. */
  jsonStrings?: boolean[];
  /** Per reference, per key column, the same of the parent's column; absent when none does. */
  refJsonStrings?: (boolean[] | undefined)[];
  /** Per reference, per key column: the parent column's type. */
  refTypes: string[][];
  /** Columns an upsert compares as text (`TableShape`). */
  textCompared: ReadonlySet<string>;
}

async function planFor(trx: Transaction<Database>, target: Target, format: Format): Promise<Plan> {
  const shape = await tableShape(trx, target.table, target.mode, format);
  const missing = [...target.columns, ...target.references.map((r) => r.column)].filter((c) => !shape.has(c));
  if (missing.length > 0)
    throw new TableShapeError(`table ${target.table} has no column ${missing.join(', ')}`);
  const refTypes: string[][] = [];
  const refJson: (boolean[] | undefined)[] = [];
  for (const r of target.references) {
    const parent = await tableShape(trx, r.table, undefined, format);
    const absent = [r.surrogate, ...r.keyColumns].filter((c) => !parent.has(c));
    if (absent.length > 0) throw new TableShapeError(`table ${r.table} has no column ${absent.join(', ')}`);
    refTypes.push(r.keyColumns.map((c) => parent.get(c) as string));
    refJson.push(jsonStringColumns(r.keyColumns, parent.jsonTyped));
  }
  const types = target.columns.map((c) => shape.get(c) as string);
  const jsonStrings = jsonStringColumns(target.columns, shape.jsonTyped);
  const refJsonStrings = refJson.some((j) => j) ? refJson : undefined;
  return { target, types, refTypes, jsonStrings, refJsonStrings, textCompared: shape.textCompared };
}

/**
 * The row's natural key as the file names it: referencing key columns by their parents' keys, or by the
 * value they store when it is the parent's first key column (a composite foreign key read from the
 * catalog, whose first column is a key column of its own: the form `parentKey` gives).
 */
function sourceKey(t: Target, row: TargetRow): string {
  return JSON.stringify(
    t.key.map((k) => {
      const i = t.columns.indexOf(k);
      if (i >= 0) return row.values[i];
      const r = t.references.findIndex((ref) => ref.column === k);
      const ref = t.references[r] as Reference;
      return ref.surrogate === ref.keyColumns[0] ? (row.refs[r]?.[0] ?? null) : row.refs[r];
    }),
  );
}

/** For a self-reference: the parent's natural key in the same form as `sourceKey`, or undefined for none. */
function parentKey(t: Target, selfIndex: number, row: TargetRow): string | undefined {
  const ref = t.references[selfIndex] as Reference;
  const values = t.key.map((k) => row.refs[selfIndex]?.[ref.keyColumns.indexOf(k)] ?? null);
  return values.some((v) => v === null) ? undefined : JSON.stringify(values);
}

interface Entry {
  unit: Unit;
  row: TargetRow;
}

/**
 * A self-referencing target is written level by level: rows whose parent is in the same batch go in
 * a statement after their parent's (a statement does not see its own inserts). A cycle stays at
 * level 0 and waits, as its parent never lands.
 */
function levels(t: Target, entries: Entry[]): Entry[][] {
  const self = t.references.findIndex((r) => r.self);
  if (self < 0) return [entries];
  const byKey = new Map(entries.map((e, i) => [sourceKey(t, e.row), i]));
  const level = new Array<number | undefined>(entries.length);
  const visiting = new Set<number>();
  const levelOf = (i: number): number => {
    const known = level[i];
    if (known !== undefined) return known;
    if (visiting.has(i)) return 0;
    visiting.add(i);
    const pk = parentKey(t, self, (entries[i] as Entry).row);
    const parent = pk === undefined ? undefined : byKey.get(pk);
    const l = parent === undefined || parent === i ? 0 : levelOf(parent) + 1;
    visiting.delete(i);
    level[i] = l;
    return l;
  };
  const out: Entry[][] = [];
  entries.forEach((e, i) => {
    const l = levelOf(i);
    out[l] ??= [];
    out[l].push(e);
  });
  return out.filter((l) => l !== undefined);
}

interface StatementResult extends WriteCounts {
  waiting: number[];
  masks: number[];
  /** Positions in the batch of the rows the statement inserted, and of those it updated. */
  fresh: number[];
  changed: number[];
}

/** The text columns of the relation `u` a target's statement reads: its columns, its references' keys, `n`. */
function sourceColumns(t: Target): string[] {
  return [
    ...t.columns.map((_, i) => `c${i}`),
    ...t.references.flatMap((r, i) => r.keyColumns.map((_, j) => `r${i}_${j}`)),
    'n',
  ];
}

/** A row as the text values of `sourceColumns`, `n` its position in the statement. */
function sourceValues(t: Target, row: TargetRow, n: number): Text[] {
  return [
    ...t.columns.map((_, i) => row.values[i] ?? null),
    ...t.references.flatMap((r, i) => r.keyColumns.map((_, j) => row.refs[i]?.[j] ?? null)),
    String(n),
  ];
}

/**
 * One set-based statement: unnest the batch, left-join each parent on its natural key (its unique
 * index), insert the rows whose parents were all found, and report the others by position and by
 * which references are missing (a bit per reference).
 */
export function targetStatement(plan: Plan, rows: TargetRow[]): RawBuilder<StatementResult> {
  const values = rows.map((row, n) => sourceValues(plan.target, row, n));
  const columns = sourceColumns(plan.target);
  const arrays = columns.map((_, i) => sql`${values.map((v) => v[i] ?? null)}::text[]`);
  const aliases = columns.map((c) => sql.id(c));
  return statementFrom(plan, sql`unnest(${sql.join(arrays)}) as u(${sql.join(aliases)})`, true);
}

/** `u.r<i>_<j>`, reference `i`'s key column `j` as the row names it, cast to the parent column's type. */
function refKey(plan: Plan, i: number, j: number): RawBuilder<unknown> {
  return sql`u.${sql.id(`r${i}_${j}`)}::${sql.raw(plan.refTypes[i]?.[j] as string)}`;
}

/** The row's own value of a column, typed (see `self-row.ts`). */
function ownValue(plan: Plan, own: Own): RawBuilder<unknown> {
  return 'column' in own
    ? sql`u.${sql.id(`c${own.column}`)}::${sql.raw(plan.types[own.column] as string)}`
    : refKey(plan, own.reference, 0);
}

/**
 * Reference `i`'s parent id: the one `found` by its key, else the row's own when it names itself
 * (`self-row.ts`), else NULL (its parent is missing, or it names none).
 */
function parentIdOf(plan: Plan, i: number, found: RawBuilder<unknown>): RawBuilder<unknown> {
  const match = selfMatchOf(plan.target, plan.target.references[i] as Reference);
  if (!match) return found;
  const same = match.keys.map((own, j) => sql`${ownValue(plan, own)} = ${refKey(plan, i, j)}`);
  return sql`coalesce(${found}, case when ${sql.join(same, sql` and `)} then ${ownValue(plan, match.surrogate)} end)`;
}

/**
 * The statement of `targetStatement` over `source`, a relation `u` of the text columns of
 * `sourceColumns`: `reported` (what it did, row by row), or for the search only how many rows wait.
 */
function statementFrom(plan: Plan, source: RawBuilder<unknown>, reported: true): RawBuilder<StatementResult>;
function statementFrom(
  plan: Plan,
  source: RawBuilder<unknown>,
  reported: false,
): RawBuilder<{ waiting: number }>;
function statementFrom(plan: Plan, source: RawBuilder<unknown>, reported: boolean): RawBuilder<unknown> {
  const t = plan.target;
  const selected: RawBuilder<unknown>[] = [sql`u.n::int as n`];
  t.columns.forEach((_, i) => {
    selected.push(sql`u.${sql.id(`c${i}`)}::${sql.raw(plan.types[i] as string)} as ${sql.id(`c${i}`)}`);
  });
  const joins: RawBuilder<unknown>[] = [];
  const misses: RawBuilder<unknown>[] = [];
  t.references.forEach((r, i) => {
    const p = sql.id(`p${i}`);
    const parent = parentIdOf(plan, i, sql`${p}.${sql.id(r.surrogate)}`);
    selected.push(sql`${parent} as ${sql.id(`f${i}`)}`);
    const on = r.keyColumns.map((k, j) => sql`${p}.${sql.id(k)} = ${refKey(plan, i, j)}`);
    joins.push(sql`left join ${sql.table(r.table)} as ${p} on ${sql.join(on, sql` and `)}`);
    const named = r.keyColumns.map((_, j) => sql`u.${sql.id(`r${i}_${j}`)} is not null`);
    misses.push(
      sql`case when ${sql.join(named, sql` and `)} and ${parent} is null then ${sql.lit(2 ** i)} else 0 end`,
    );
  });
  selected.push(misses.length > 0 ? sql`${sql.join(misses, sql` + `)} as miss` : sql`0 as miss`);

  const columns = [...t.columns, ...t.references.map((r) => r.column)];
  const fromS = [...t.columns.map((_, i) => sql.id(`c${i}`)), ...t.references.map((_, i) => sql.id(`f${i}`))];
  // An upsert updates in place: the surrogate id, and every row referencing it, survive.
  const conflict = onConflict(sql`t`, columns, t.key, t.mode, plan.textCompared);
  // Which batch rows were inserted and which updated: a plain insert inserts every row it is given (or
  // fails); otherwise a returned row is found by its key (one row per key in a statement), and a row
  // with a NULL in its key never conflicts, so it was inserted.
  const keyOf = (k: string) => fromS[columns.indexOf(k)] as RawBuilder<unknown>;
  const returning =
    t.mode === 'insert'
      ? sql`(xmax = 0) as fresh`
      : sql.join([
          ...t.key.map((k, i) => sql`t.${sql.id(k)} as ${sql.id(`k${i}`)}`),
          sql`(xmax = 0) as fresh`,
        ]);
  const outcomes =
    t.mode === 'insert'
      ? sql`select s.n, true as fresh from s where s.miss = 0`
      : sql`select s.n, w.fresh from w join s on ${sql.join(
          t.key.map((k, i) => sql`w.${sql.id(`k${i}`)} = s.${keyOf(k)}`),
          sql` and `,
        )}
        union all
        select s.n, true from s where s.miss = 0 and (${sql.join(
          t.key.map((k) => sql`s.${keyOf(k)} is null`),
          sql` or `,
        )})`;
  const staged = sql`s as (
      select ${sql.join(selected)}
      from ${source}
      ${sql.join(joins, sql` `)}
    )`;
  const insert = sql`insert into ${sql.table(t.table)} as t (${sql.join(columns.map((c) => sql.id(c)))})
      select ${sql.join(fromS)} from s where s.miss = 0 order by s.n
      ${conflict}`;
  // The search needs only whether a row waits: the outcomes cost it more than the insert of one record.
  if (!reported)
    return sql<{ waiting: number }>`with ${staged}, w as (${insert})
      select (select count(*) from s where miss <> 0)::int as waiting`;
  return sql<StatementResult>`with ${staged}, w as (
      ${insert}
      returning ${returning}
    ), o as (${outcomes})
    select (select count(*) from w where fresh)::int as inserted,
      (select count(*) from w where not fresh)::int as updated,
      (select coalesce(array_agg(n order by n), '{}'::int[]) from o where fresh) as fresh,
      (select coalesce(array_agg(n order by n), '{}'::int[]) from o where not fresh) as changed,
      (select coalesce(array_agg(n order by n), '{}'::int[]) from s where miss <> 0) as waiting,
      (select coalesce(array_agg(miss order by n), '{}'::int[]) from s where miss <> 0) as masks`;
}

function describeMissing(t: Target, row: TargetRow, mask: number): { column: string; missing: string } {
  const parts: string[] = [];
  let column = '';
  t.references.forEach((r, i) => {
    if ((mask & (2 ** i)) === 0) return;
    column ||= r.column;
    const key = r.keyColumns.map((k, j) => `${k} = ${row.refs[i]?.[j]}`).join(' and ');
    parts.push(`${r.table} row with ${key}`);
  });
  return { column, missing: parts.join('; ') };
}

/** What one attempt wrote per table, what each unit's rows did, and its rows whose parents are missing. */
interface Attempted {
  tables: Record<string, WriteCounts>;
  outcomes: Map<Unit, 'inserted' | 'updated'>;
  missing: MissingRow[];
}

/**
 * The units' rows of target `ti` as its statements write them, level by level (see `levels`); none
 * when they have no row of it. Unless the mode is `insert`, a key once per statement (the later line
 * wins), in key order so concurrent loads lock alike.
 */
function levelsOf(t: Target, ti: number, units: Unit[]): Entry[][] {
  let entries: Entry[] = units.flatMap((unit) => (unit.rows[ti] ?? []).map((row) => ({ unit, row })));
  if (entries.length === 0) return [];
  if (t.mode !== 'insert') {
    const byKey = new Map<string, Entry>();
    for (const e of entries) byKey.set(sourceKey(t, e.row), e);
    entries = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
  }
  return levels(t, entries);
}

/**
 * The statements `writeAttempt` runs for one unit, as steps of the record-by-record search: per target,
 * parents first, per level, each unit's rows as `writeAttempt` would send them were it alone.
 */
function searchSteps(plans: Plan[], units: Unit[]): SearchStep[] {
  const steps: SearchStep[] = [];
  plans.forEach((plan, ti) => {
    const t = plan.target;
    const perUnit = units.map((unit) => levelsOf(t, ti, [unit]));
    const depth = Math.max(0, ...perUnit.map((l) => l.length));
    for (let level = 0; level < depth; level++) {
      steps.push({
        columns: sourceColumns(t),
        rows: perUnit.map((l) => (l[level] ?? []).map((e, n) => sourceValues(t, e.row, n))),
        statement: (source) => statementFrom(plan, source, false),
      });
    }
  });
  return steps;
}

/**
 * The steps of the one-row search (`record-rows.ts`), one per target, when every unit gives each
 * target one row at most, written in one statement (no parent in the same batch); else undefined.
 */
function rowSteps(plans: Plan[], units: Unit[]): RowStep[] | undefined {
  const steps: RowStep[] = [];
  for (const [ti, plan] of plans.entries()) {
    const rows: RowStep['rows'] = [];
    // A row of its own (no other to dedupe or to be the parent of) is its one statement's.
    const self = plan.target.references.some((r) => r.self);
    for (const unit of units) {
      const own = unit.rows[ti] ?? [];
      if (own.length <= 1 && !self) {
        rows.push(own[0]);
        continue;
      }
      const levels = levelsOf(plan.target, ti, [unit]);
      if (levels.length > 1 || (levels[0]?.length ?? 0) > 1) return undefined;
      rows.push(levels[0]?.[0]?.row);
    }
    steps.push({ ...plan, rows });
  }
  return steps;
}

/** The units the database refuses, by position, with their errors: found record by record, written (rehearse it). */
function searchRefused(
  trx: Transaction<Database>,
  plans: Plan[],
  units: Unit[],
): Promise<Map<number, RecordRefusal>> {
  const steps = rowSteps(plans, units);
  if (steps) return refusedRecordRows(trx, steps, units.length);
  return refusedRecords(trx, searchSteps(plans, units), units.length);
}

/** Writes every target's rows of the units, parents first. Throws a data error for bisection to isolate. */
async function writeAttempt(trx: Transaction<Database>, plans: Plan[], units: Unit[]): Promise<Attempted> {
  const result: Attempted = { tables: {}, outcomes: new Map(), missing: [] };
  for (const [ti, plan] of plans.entries()) {
    const t = plan.target;
    const stages = levelsOf(t, ti, units);
    if (stages.length === 0) continue;
    const counts = result.tables[t.table] ?? { inserted: 0, updated: 0 };
    result.tables[t.table] = counts;
    for (const level of stages) {
      for (let i = 0; i < level.length; i += STATEMENT_ROWS) {
        const batch = level.slice(i, i + STATEMENT_ROWS);
        const { rows } = await targetStatement(
          plan,
          batch.map((e) => e.row),
        ).execute(trx);
        const out = rows[0] as StatementResult;
        counts.inserted += out.inserted;
        counts.updated += out.updated;
        for (const n of out.changed) {
          const unit = (batch[n] as Entry).unit;
          if (!result.outcomes.has(unit)) result.outcomes.set(unit, 'updated');
        }
        for (const n of out.fresh) result.outcomes.set((batch[n] as Entry).unit, 'inserted');
        out.waiting.forEach((n, k) => {
          const e = batch[n] as Entry;
          result.missing.push({
            unit: e.unit,
            target: t,
            row: e.row,
            ...describeMissing(t, e.row, out.masks[k] ?? 0),
          });
        });
      }
    }
  }
  return result;
}

function merge(into: RelationalResult, from: RelationalResult): void {
  for (const [table, c] of Object.entries(from.tables)) {
    const t = into.tables[table] ?? { inserted: 0, updated: 0, unchanged: 0 };
    into.tables[table] = t;
    t.inserted += c.inserted;
    t.updated += c.updated;
    t.unchanged += c.unchanged;
  }
  into.inserted += from.inserted;
  into.updated += from.updated;
  into.rejects.push(...from.rejects);
  into.orphans.push(...from.orphans);
}

/**
 * What a committed attempt did, per table in rows (a row sent that was neither inserted nor updated is
 * unchanged: equal to the stored one, or superseded by a later row with its key) and in records: a
 * record is inserted when one of its rows was inserted, else updated when one was updated, else
 * unchanged. A row several records share (a shipper) is one record's (the last to name it), so the
 * count does not depend on which target is declared first.
 */
function recordOutcomes(
  plans: Plan[],
  units: Unit[],
  attempt: Attempted,
): Pick<RelationalResult, 'inserted' | 'updated' | 'tables'> {
  const rows = new Map<string, number>();
  plans.forEach((plan, ti) => {
    const t = plan.target.table;
    rows.set(t, (rows.get(t) ?? 0) + units.reduce((n, u) => n + (u.rows[ti]?.length ?? 0), 0));
  });
  const tables: Record<string, TableCounts> = {};
  for (const [t, sent] of rows) {
    const wrote = attempt.tables[t] ?? { inserted: 0, updated: 0 };
    if (sent === 0 && !attempt.tables[t]) continue;
    tables[t] = {
      inserted: wrote.inserted,
      updated: wrote.updated,
      unchanged: sent - wrote.inserted - wrote.updated,
    };
  }
  let inserted = 0;
  let updated = 0;
  for (const o of attempt.outcomes.values()) {
    if (o === 'inserted') inserted++;
    else updated++;
  }
  return { inserted, updated, tables };
}

/** Each unit's first row whose parent is missing (parents first, in the dataset's write order). */
function firstMissing(missing: MissingRow[]): Map<Unit, MissingRow> {
  const first = new Map<Unit, MissingRow>();
  for (const m of missing) if (!first.has(m.unit)) first.set(m.unit, m);
  return first;
}

/**
 * Writes only whole units: an attempt in which a unit has a row whose parent is missing is undone
 * (to a savepoint) and made again without that unit, until one has none. Leaving a unit out can
 * orphan another that needed a row it carried, hence the loop; each round leaves one unit out at
 * least. The units left out come back as `orphans`, one per unit (its first missing parent), with
 * nothing of them written; the counts are the last, committed, attempt's.
 */
async function writeWhole(
  trx: Transaction<Database>,
  plans: Plan[],
  units: Unit[],
): Promise<RelationalResult> {
  const targets = plans.map((p) => p.target);
  const orphans: Orphan[] = [];
  let batch = units;
  for (;;) {
    const attempt = await keepIf(
      trx,
      'dropload_records',
      () => writeAttempt(trx, plans, batch),
      (result) => result.missing.length === 0,
    );
    if (attempt.kept) return { ...recordOutcomes(plans, batch, attempt.value), rejects: [], orphans };
    const first = firstMissing(attempt.value.missing);
    for (const m of first.values()) orphans.push({ ...m, record: encodeUnit(targets, m.unit) });
    batch = batch.filter((u) => !first.has(u));
  }
}

/**
 * Every target's rows of the units, in one attempt. A unit the database refuses is rejected whole:
 * when the attempt is refused (or `searchFirst`, skipped), the search (`record-by-record.ts`,
 * rehearsed) finds the refused units in a few round trips, and the others are written without them.
 * Should those be refused still (a unit refused only beside one the search found waiting), or the
 * search itself be refused (a value the server cannot take as text), halving them under savepoints
 * isolates the rest (see `bisect`). Returns whether the next batch goes to the search first: when most
 * of this one was refused, as when a file is dropped again, the next is all but sure to be refused too,
 * and an attempt bound to be refused costs sending the batch and its statements for nothing.
 */
async function writeIsolating(
  trx: Transaction<Database>,
  plans: Plan[],
  units: Unit[],
  into: RelationalResult,
  searchFirst: boolean,
): Promise<boolean> {
  if (!searchFirst) {
    const whole = await withSavepoint(trx, 'dropload_relations', () => writeWhole(trx, plans, units));
    if (whole.ok) {
      merge(into, whole.value);
      return false;
    }
  }
  const rejects: RelationalResult['rejects'] = [];
  const searched = await rehearse(trx, 'dropload_search', () => searchRefused(trx, plans, units));
  const refused = searched.ok ? searched.value : new Map<number, RecordRefusal>();
  for (const [i, refusal] of refused) {
    const unit = units[i] as Unit;
    rejects.push({ unit, reject: refusedIn(unit, refusal) });
  }
  const written = await bisect(
    trx,
    'dropload_relations',
    units.filter((_, i) => !refused.has(i)),
    (batch) => writeWhole(trx, plans, batch),
    (unit, err) => rejects.push({ unit, reject: refusedIn(unit, err) }),
  );
  for (const attempt of written) merge(into, attempt);
  into.rejects.push(...rejects.sort((a, b) => a.unit.line - b.unit.line));
  return 2 * refused.size > units.length;
}

/**
 * A record the database refused: its column names the table the refused row was for, as the error
 * says (`rec.lines.quantity`, or `rec.lines` for a CHECK, which names no column), since a record
 * writes several tables and a column name alone may belong to any of them.
 */
function refusedIn(unit: Unit, err: unknown): Reject {
  const reject = dbReject(unit, err);
  const { schema, table } = err as { schema?: string; table?: string };
  if (table) reject.column = [schema, table, reject.column].filter((p) => p).join('.');
  return reject;
}

/** Writes units (records, or parked orphans) of a multi-table dataset in the caller's transaction. */
export async function writeUnits(
  trx: Transaction<Database>,
  dataset: TargetsDataset,
  units: Unit[],
): Promise<RelationalResult> {
  return writePlanned(trx, await plansOf(trx, dataset), units);
}

/** Per target, its columns (and reference keys) whose strings go as JSON strings, read as `writeUnits` reads them. */
export function jsonMarksOf(trx: Transaction<Database>, dataset: TargetsDataset): Promise<JsonMarks[]> {
  return plansOf(trx, dataset);
}

/** The dataset's targets with their columns' types, in the transaction that writes (its time zone set). */
async function plansOf(trx: Transaction<Database>, dataset: TargetsDataset): Promise<Plan[]> {
  await useTimeZone(trx, dataset.timeZone);
  const plans: Plan[] = [];
  for (const t of dataset.targets) plans.push(await planFor(trx, t, dataset.format));
  return plans;
}

async function writePlanned(
  trx: Transaction<Database>,
  plans: Plan[],
  units: Unit[],
): Promise<RelationalResult> {
  const result: RelationalResult = { inserted: 0, updated: 0, tables: {}, rejects: [], orphans: [] };
  let searchFirst = false;
  for (let i = 0; i < units.length; ) {
    const batch = units.slice(i, i + (searchFirst ? SEARCH_BATCH : UNIT_BATCH));
    i += batch.length;
    searchFirst = await writeIsolating(trx, plans, batch, result, searchFirst);
  }
  return result;
}

/** Writes a chunk's valid rows of a multi-table dataset; a row with a value that cannot be written is rejected. */
export async function writeRecords(
  trx: Transaction<Database>,
  dataset: TargetsDataset,
  rows: ValidRow[],
  chunkIdx: number,
): Promise<RelationalResult> {
  // Planned first: a row's text depends on its columns' types (`unitOf`).
  const plans = await plansOf(trx, dataset);
  const units: Unit[] = [];
  const unwritable: RelationalResult['rejects'] = [];
  for (const row of rows) {
    try {
      units.push(unitOf(dataset, row, chunkIdx, plans));
    } catch (err) {
      // That row's fault (a BigInt inside a JSON value, say): its neighbours load.
      const reason = unwritableReason(err);
      const reject: Reject = { line: row.line, column: null, kind: 'unwritable', reason, raw: row.raw };
      unwritable.push({ unit: { line: row.line, raw: row.raw, chunkIdx, rows: [] }, reject });
    }
  }
  const result = await writePlanned(trx, plans, units);
  result.rejects.push(...unwritable);
  for (const unit of units) {
    const found = duplicateKey(dataset, unit);
    if (!found) continue;
    if (result.duplicates) result.duplicates.records++;
    else result.duplicates = { records: 1, line: unit.line, ...found };
  }
  return result;
}

/**
 * A key the record gives two rows of one table with different values: the statement writes one row per
 * key (the last element), so the record said more than was written. The same parent named twice alike
 * (a category two lines share) loses nothing and is not reported.
 */
function duplicateKey(dataset: TargetsDataset, unit: Unit): { table: string; key: string } | undefined {
  for (let i = 0; i < dataset.targets.length; i++) {
    const t = dataset.targets[i] as Target;
    const rows = unit.rows[i] ?? [];
    // One row cannot repeat a key: most records give a target one.
    if (rows.length < 2) continue;
    const seen = new Map<string, TargetRow>();
    const whole = (row: TargetRow) => JSON.stringify([row.values, row.refs]);
    for (const row of rows) {
      const key = sourceKey(t, row);
      const before = seen.get(key);
      // Compared whole only when the key repeats: most records repeat none.
      if (before !== undefined && whole(before) !== whole(row))
        return { table: t.table, key: keyText(t, row) };
      seen.set(key, row);
    }
  }
  return undefined;
}

/** `order_ref = 10280, line_no = 1`: a reference by its parent's natural key. */
function keyText(t: Target, row: TargetRow): string {
  return t.key
    .map((k) => {
      const i = t.columns.indexOf(k);
      const value =
        i >= 0 ? row.values[i] : row.refs[t.references.findIndex((r) => r.column === k)]?.join(', ');
      return `${k} = ${value ?? 'null'}`;
    })
    .join(', ');
}

/** The parent a row misses, by the natural key the row names it with (see `ParentRow`). */
export function parentRowOf(m: MissingRow): ParentRow | undefined {
  const i = m.target.references.findIndex((r) => r.column === m.column);
  const ref = m.target.references[i];
  if (!ref) return undefined;
  return {
    table: ref.table,
    key: Object.fromEntries(ref.keyColumns.map((k, j) => [k, m.row.refs[i]?.[j] ?? null])),
  };
}

/** `orphan: no X`, and when X is itself a waiting record, the missing root its chain of parents lacks. */
export function orphanReason(missing: string, root?: string): string {
  return root === undefined
    ? `orphan: no ${missing}`
    : `orphan: no ${missing}, which waits in turn for the missing root: ${root}`;
}

/**
 * `writeRows` for any dataset's rows of file `fileId`: single-table ones go to the table writer;
 * multi-table ones to this one, where a row that still lacks its parent is a reject (used by
 * retry-rejects, which parks nothing).
 */
export async function writeDatasetRows(
  trx: Transaction<Database>,
  dataset: Dataset,
  rows: ValidRow[],
  fileId: number,
): Promise<WriteResult> {
  if (dataset.kind === 'table') return writeRows(trx, writeTarget(dataset), rows, fileId);
  const written = await writeRecords(trx, dataset, rows, 0);
  const rejects = written.rejects.map((r) => r.reject);
  const seen = new Set(rejects.map((r) => r.line));
  for (const o of written.orphans) {
    if (seen.has(o.unit.line)) continue;
    seen.add(o.unit.line);
    const reason = orphanReason(o.missing);
    rejects.push({ line: o.unit.line, column: o.column, kind: 'orphan', reason, raw: o.unit.raw });
  }
  const counts = recordCounts(rows.length, written, { rejected: seen, waiting: [] });
  return {
    inserted: counts.inserted,
    updated: counts.updated,
    unchanged: counts.unchanged,
    rejects: rejects.sort((a, b) => a.line - b.line),
    tables: written.tables,
  };
}
