import { UsageError } from '../../shared/core/errors.ts';
import type { ColumnProfile } from './column-profile.ts';
import { type ColumnType, columnType } from './column-type.ts';
import { keyLike } from './columns.ts';
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

const KEY_TYPES = new Set(['smallint', 'integer', 'bigint', 'text', 'uuid']);

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

/** A table per file: columns typed from every value, NOT NULL where none was missing, a primary key. */
export function inferTable(file: FileProfile, snake: (name: string) => string): InferredTable {
  const name = snake(file.base);
  const columns = file.columns.map((profile): InferredColumn => {
    const { type, evidence } = columnType(profile);
    return {
      field: profile.name,
      column: snake(profile.name),
      type,
      notNull: profile.nulls === 0 && profile.values > 0,
      evidence: `${evidence}${nullEvidence(profile)}`,
      profile,
    };
  });
  uniqueColumns(file.path, columns);
  const seen = new Set(file.columns.flatMap((c) => [...c.nullTokens.keys()]));
  const nullValues = NULL_TOKENS.filter((t) => t === '' || seen.has(t));
  return { file, name, columns, nullValues, ...primaryKey(name, columns, file) };
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

function primaryKey(
  table: string,
  columns: InferredColumn[],
  file: FileProfile,
): { primaryKey: string[]; keyEvidence: string } {
  const names = columns.map((c) => c.column);
  const single = columns
    .filter((c) => c.notNull && c.profile.unique === true && KEY_TYPES.has(c.type.name))
    .map((c) => ({ c, score: keyNameScore(c.column, table, names) || (c.profile.position === 0 ? 1 : 0) }))
    .filter((s) => s.score > 0)
    .sort((a, b) => b.score - a.score || a.c.profile.position - b.c.profile.position)[0];
  if (single)
    return {
      primaryKey: [single.c.column],
      keyEvidence: `${single.c.column}: ${count(single.c.profile.values, 'value')}, all distinct, none null`,
    };
  const byField = new Map(columns.map((c) => [c.field, c]));
  for (const pair of file.pairs) {
    const [a, b] = pair.columns.map((f) => byField.get(f));
    if (pair.unique && a?.notNull && b?.notNull)
      return {
        primaryKey: [a.column, b.column],
        keyEvidence: `(${a.column}, ${b.column}): ${count(file.rows - file.misfitCount, 'row')}, every pair distinct, none null`,
      };
  }
  // Key-named columns whose distinct set was given up: their uniqueness is unknown, not refuted.
  const unchecked = columns
    .filter((c) => c.notNull && c.profile.distinct === undefined && keyNameScore(c.column, table, names) > 0)
    .map((c) => `${c.column}: ${c.profile.keyless}, uniqueness not checked`);
  return {
    primaryKey: [],
    keyEvidence:
      unchecked.length > 0
        ? `none: ${unchecked.join('; ')}`
        : 'none: no id-like column or pair of them is unique and never null',
  };
}
