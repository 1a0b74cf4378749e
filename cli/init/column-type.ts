import type { ColumnProfile } from './column-profile.ts';
import type { Shape } from './values.ts';

/** A Postgres column type `init` writes, with what the dataset field needs to read it. */
export type ColumnType =
  | {
      name:
        | 'boolean'
        | 'smallint'
        | 'integer'
        | 'bigint'
        | 'date'
        | 'timestamp'
        | 'timestamptz'
        | 'uuid'
        | 'jsonb'
        | 'text';
    }
  | { name: 'numeric'; precision: number; scale: number };

export interface TypedColumn {
  type: ColumnType;
  /** Why: counts, ranges, digits, the value that made it text. */
  evidence: string;
}

const SMALLINT = 32_767n;
const INTEGER = 2_147_483_647n;
const BIGINT = 9_223_372_036_854_775_807n;

export const sqlType = (t: ColumnType): string =>
  t.name === 'numeric' ? `numeric(${t.precision}, ${t.scale})` : t.name;

const only = (col: ColumnProfile, ...kinds: Shape['kind'][]) =>
  col.kinds.size > 0 && [...col.kinds.keys()].every((k) => kinds.includes(k));

function integerType(col: ColumnProfile): ColumnType {
  const min = BigInt(col.min ?? 0);
  const max = BigInt(col.max ?? 0);
  const bound = -min > max ? -min - 1n : max;
  if (bound <= SMALLINT) return { name: 'smallint' };
  if (bound <= INTEGER) return { name: 'integer' };
  if (bound <= BIGINT) return { name: 'bigint' };
  return { name: 'numeric', precision: col.intDigits, scale: 0 };
}

const EXAMPLE_LENGTH = 60;
// JSON escapes the C0 controls; DEL and the C1 controls would reach the terminal raw.
const C1 = /[\u007f-\u009f]/g;

/**
 * A value as the evidence quotes it: in JSON quotes, control characters escaped (binary garbage must
 * not reach the terminal raw), cut to 60 characters with `…` (a 10 MB field is no example).
 */
export function example(text: string): string {
  let cut = text.length > EXAMPLE_LENGTH ? text.slice(0, EXAMPLE_LENGTH) : text;
  // Never half a surrogate pair: JSON would print it as an escape.
  if (cut.length < text.length && /[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  const quoted = JSON.stringify(cut).replace(
    C1,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return cut.length < text.length ? `${quoted.slice(0, -1)}…"` : quoted;
}

/** The narrowest type that holds every non-null value seen; text for leading zeros and mixed shapes. */
export function columnType(col: ColumnProfile): TypedColumn {
  const n = `${col.values} values`;
  if (col.values === 0) return { type: { name: 'text' }, evidence: 'no values (every row null): text' };
  if (col.kinds.has('json')) return { type: { name: 'jsonb' }, evidence: `${n}, nested objects/arrays` };
  if (col.leadingZeros > 0)
    return {
      type: { name: 'text' },
      evidence: `${n}, ${col.leadingZeros} with leading zeros (e.g. ${example(col.textExample ?? '')}): kept as text`,
    };
  if (only(col, 'integer')) {
    const type = integerType(col);
    return { type, evidence: `${n}, range ${col.min}..${col.max}` };
  }
  if (only(col, 'integer', 'decimal')) {
    const precision = Math.max(col.intDigits + col.scale, 1);
    return {
      type: { name: 'numeric', precision, scale: col.scale },
      evidence: `${n}, up to ${col.intDigits} integer digits, max ${col.scale} decimals`,
    };
  }
  for (const kind of ['boolean', 'date', 'timestamp', 'timestamptz', 'uuid'] as const) {
    if (only(col, kind)) return { type: { name: kind }, evidence: `${n}, all ${shapeNames[kind]}` };
  }
  const mixed = [...col.kinds].map(([kind, count]) => `${count} ${shapeNames[kind]}`).join(', ');
  const shown = col.textExample === undefined ? '' : ` (e.g. ${example(col.textExample)})`;
  return {
    type: { name: 'text' },
    evidence: col.kinds.size === 1 ? `${n}${shown}` : `${n}, mixed: ${mixed}: text`,
  };
}

const shapeNames: Record<Shape['kind'], string> = {
  boolean: 'true/false',
  integer: 'whole numbers',
  decimal: 'decimals',
  date: 'dates',
  timestamp: 'timestamps without a zone',
  timestamptz: 'timestamps with a zone',
  uuid: 'UUIDs',
  json: 'JSON objects/arrays',
  text: 'text',
};

const RANK: Record<string, number> = { smallint: 1, integer: 2, bigint: 3 };

/** The type both of two columns fit (a foreign key and its parent), or undefined when only text would. */
export function wider(a: ColumnType, b: ColumnType): ColumnType | undefined {
  if (a.name === b.name && a.name !== 'numeric') return a;
  const ra = RANK[a.name];
  const rb = RANK[b.name];
  if (ra !== undefined && rb !== undefined) return ra >= rb ? a : b;
  return undefined;
}
