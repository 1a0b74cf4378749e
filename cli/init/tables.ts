import { stemOf } from '../../shared/config/file-names.ts';
import { UsageError } from '../../shared/core/errors.ts';
import type { ColumnProfile } from './column-profile.ts';
import { type ColumnType, columnType } from './column-type.ts';
import { keyLike, SEQUENCE_LIKE } from './columns.ts';
import { FULL_PAIRS } from './distinct-pairs.ts';
import type { FileProfile } from './file-profile.ts';
import { count } from './plural.ts';
import { NULL_TOKENS, type NullToken } from './values.ts';

export interface InferredColumn {
  /** The field name as in the file (header or JSON key). */
  field: string;
  /** Its snake_case column. */
  column: string;
  type: ColumnType;
  notNull: boolean;
  evidence: string;
  profile: ColumnProfile;
}

export interface InferredTable {
  file: FileProfile;
  /** Dataset and table name: the file's base name in snake_case. */
  name: string;
  columns: InferredColumn[];
  /** Primary key columns (snake_case), empty when no column or pair is unique and never null. */
  primaryKey: string[];
  keyEvidence: string;
  /** Null tokens the file uses, always with '' (a blank field). */
  nullValues: NullToken[];
}

/** `customers` → `customer`, `categories` → `category`: enough English to match `customer_id` to its table. */
export function singular(name: string): string {
  if (name.endsWith('ies')) return `${name.slice(0, -3)}y`;
  if (name.endsWith('sses') || name.endsWith('xes')) return name.slice(0, -2);
  if (name.endsWith('s') && !name.endsWith('ss')) return name.slice(0, -1);
  return name;
}

const KEY_SUFFIX = /_(id|code|key|no)$/;
const KEY_TYPES = new Set(['smallint', 'integer', 'bigint', 'text', 'uuid']);

/**
 * Rows a key needs when its name does not say it is this table's own: `trip_id` unique in 2 rows of
 * `frequencies` says nothing (a third row may repeat it), and an upsert on it would silently merge the
 * rows a later file brings.
 */
export const MIN_KEY_ROWS = 20;

/** The names a table's own key is made of: `invoices_2024_03` is also `invoices`, as its rows are. */
function ownNames(table: string): string[] {
  const stem = stemOf(table);
  return [...new Set([table, singular(table), stem, singular(stem)].filter((n) => n !== ''))];
}

/**
 * The other table a column names, if any (`trip_id`, `from_stop_id` → trips, stops): the column points
 * there, so its uniqueness alone does not make it this table's key.
 */
export function namedTable(column: string, others: readonly string[]): string | undefined {
  const stem = column.replace(KEY_SUFFIX, '');
  return others.find((t) => [t, singular(t)].some((n) => stem === n || stem.endsWith(`_${n}`)));
}

/**
 * Whether a column's name says it is its own table's key, so that it is one at any size: `id`, the
 * table's name with `_id`/`_code`/`_key`/`_no`, a natural key bare or with the table's name (`email`,
 * `user_email` of users, in a file with no key of its own), or an id-like name naming no other table
 * (`service_id` of a calendar, with no `services` among the files; `dept_code` of departments).
 */
function ownKeyName(column: string, table: string, columns: readonly string[], others: readonly string[]) {
  if (column === 'id') return true;
  const own = ownNames(table);
  if (KEY_SUFFIX.test(column) && own.includes(column.replace(KEY_SUFFIX, ''))) return true;
  if (keyLike(column, columns) && !KEY_SUFFIX.test(column))
    return !column.includes('_') || own.some((n) => column.startsWith(`${n}_`));
  return KEY_SUFFIX.test(column) && namedTable(column, others) === undefined;
}

/** How strongly a column's name says it is its table's key (0: not a key name). */
function keyNameScore(column: string, table: string, columns: readonly string[]): number {
  if (column === 'id' || column === `${singular(table)}_id`) return 3;
  return keyLike(column, columns) ? 2 : 0;
}

function nullEvidence(col: ColumnProfile): string {
  if (col.nulls === 0) return '';
  const tokens = [...col.nullTokens].map(([t, n]) => `${n}× ${JSON.stringify(t)}`).join(', ');
  return `; ${count(col.nulls, 'null')}${tokens ? ` (${tokens})` : ''}`;
}

/**
 * A table per file: columns typed from every value, NOT NULL where none was missing, a primary key.
 * `others`: the other files' table names, which a column may name (see `ownKeyName`); `columnOf` names a
 * field's column (by default `snake`).
 */
export function inferTable(
  file: FileProfile,
  snake: (name: string) => string,
  others: readonly string[] = [],
  columnOf: (field: string) => string = snake,
): InferredTable {
  const name = snake(file.base);
  // A header's empty name (a trailing delimiter) is no field: the loader ignores that column, with a note.
  const named = file.columns.filter((profile) => profile.name !== '');
  const columns = named.map((profile): InferredColumn => {
    const { type, evidence } = columnType(profile);
    return {
      field: profile.name,
      column: columnOf(profile.name),
      type,
      notNull: profile.nulls === 0 && profile.values > 0,
      evidence: `${evidence}${nullEvidence(profile)}`,
      profile,
    };
  });
  uniqueColumns(file.path, columns);
  const seen = new Set(file.columns.flatMap((c) => [...c.nullTokens.keys()]));
  const nullValues = NULL_TOKENS.filter((t) => t === '' || seen.has(t));
  return { file, name, columns, nullValues, ...primaryKey(name, columns, file, others) };
}

/** Two fields named alike (`OrderID`, `order_id`) would be one column: the user renames one. */
function uniqueColumns(file: string, columns: InferredColumn[]): void {
  const byColumn = new Map<string, string>();
  for (const c of columns) {
    const other = byColumn.get(c.column);
    if (other !== undefined)
      throw new UsageError(
        `${file}: fields ${JSON.stringify(other)} and ${JSON.stringify(c.field)} both become column ${c.column}: rename one in the file`,
      );
    byColumn.set(c.column, c.field);
  }
}

interface KeyCandidate {
  columns: InferredColumn[];
  /** Rows that show it unique. */
  rows: number;
  /** Its name says it is this table's key: it is one at any size. */
  named: boolean;
}

const keyText = (k: KeyCandidate) =>
  k.columns.length === 1
    ? (k.columns[0] as InferredColumn).column
    : `(${k.columns.map((c) => c.column).join(', ')})`;

/** Unique never-null single columns with a key-like name (or first), the likeliest first. */
function singleKeys(table: string, columns: InferredColumn[], others: readonly string[]): KeyCandidate[] {
  const names = columns.map((c) => c.column);
  return columns
    .filter((c) => c.notNull && c.profile.unique === true && KEY_TYPES.has(c.type.name))
    .map((c) => ({ c, score: keyNameScore(c.column, table, names) || (c.profile.position === 0 ? 1 : 0) }))
    .filter((s) => s.score > 0)
    .sort((a, b) => b.score - a.score || a.c.profile.position - b.c.profile.position)
    .map(({ c }) => ({
      columns: [c],
      rows: c.profile.values,
      named: ownKeyName(c.column, table, names, others),
    }));
}

/**
 * Unique never-null pairs, those of a sequence first (`(trip_id, stop_sequence)`: named as a key of
 * this table's rows, at any size); a link table of nothing but its pair loses nothing by a merge.
 */
function pairKeys(columns: InferredColumn[], file: FileProfile): KeyCandidate[] {
  const byField = new Map(columns.map((c) => [c.field, c]));
  const rows = file.rows - file.misfitCount;
  const out: (KeyCandidate & { sequence: boolean })[] = [];
  for (const pair of file.pairs) {
    const [a, b] = pair.columns.map((f) => byField.get(f));
    if (!pair.unique || !a?.notNull || !b?.notNull) continue;
    const sequence = SEQUENCE_LIKE.test(a.column) || SEQUENCE_LIKE.test(b.column);
    out.push({ columns: [a, b], rows, named: sequence || columns.length === 2, sequence });
  }
  return out.sort((x, y) => Number(y.sequence) - Number(x.sequence));
}

/** Why a unique candidate is no key: too few rows for a name that does not say so, and what it names. */
function tooFew(k: KeyCandidate, others: readonly string[]): string {
  const named =
    k.columns.length === 1 ? namedTable((k.columns[0] as InferredColumn).column, others) : undefined;
  const points = named ? `; it names ${named}, so it is a foreign key` : '';
  return `${keyText(k)} unique in ${count(k.rows, 'row')} only: too few to tell${points}`;
}

/**
 * The primary key: a unique never-null column or pair, when the evidence makes uniqueness mean
 * something: a name saying it is this table's key, or MIN_KEY_ROWS rows. Else none, saying why.
 */
function primaryKey(
  table: string,
  columns: InferredColumn[],
  file: FileProfile,
  others: readonly string[],
): { primaryKey: string[]; keyEvidence: string } {
  const singles = singleKeys(table, columns, others);
  const pairs = pairKeys(columns, file);
  const strong = (k: KeyCandidate) => k.named || k.rows >= MIN_KEY_ROWS;
  const key = singles.find(strong) ?? pairs.find(strong);
  if (key?.columns.length === 1)
    return {
      primaryKey: [keyText(key)],
      keyEvidence: `${keyText(key)}: ${count(key.rows, 'value')}, all distinct, none null`,
    };
  if (key)
    return {
      primaryKey: key.columns.map((c) => c.column),
      keyEvidence: `${keyText(key)}: ${count(key.rows, 'row')}, every pair distinct, none null`,
    };
  const weak = [singles[0], pairs[0]].flatMap((k) => (k ? [tooFew(k, others)] : []));
  if (weak.length > 0)
    return {
      primaryKey: [],
      keyEvidence: `none: ${weak.join('; ')} (a key not named after its table needs ${MIN_KEY_ROWS} rows)`,
    };
  // Key-named columns and pairs whose distinct set was given up: their uniqueness is unknown, not refuted.
  const names = columns.map((c) => c.column);
  const unchecked = columns
    .filter((c) => c.notNull && c.profile.distinct === undefined && keyNameScore(c.column, table, names) > 0)
    .map((c) => `${c.column}: ${c.profile.keyless}, uniqueness not checked`);
  const byField = new Map(columns.map((c) => [c.field, c.column]));
  const pair = file.pairs.find((p) => p.seen === undefined && p.duplicates === 0 && p.withNull === 0);
  if (pair)
    unchecked.push(
      `(${pair.columns.map((f) => byField.get(f)).join(', ')}): ${FULL_PAIRS}, uniqueness not checked`,
    );
  return {
    primaryKey: [],
    keyEvidence:
      unchecked.length > 0
        ? `none: ${unchecked.join('; ')}`
        : 'none: no id-like column or pair of them is unique and never null',
  };
}
