import { snakeIdentifier } from '../../shared/config/column-names.ts';
import type { DateFormat } from '../../shared/config/fields.ts';
import type { ColumnProfile } from './column-profile.ts';
import { count } from './plural.ts';
import type { Shape } from './values.ts';

/** A Postgres column type `init` writes, with what the dataset field needs to read it. */
export type ColumnType =
  | {
      name: 'boolean' | 'smallint' | 'integer' | 'bigint' | 'timestamptz' | 'uuid' | 'jsonb' | 'text';
    }
  | { name: 'numeric'; precision: number; scale: number }
  /** `format`: how the file writes its dates, when not `YYYY-MM-DD` (the field's `date({ format })`). */
  | { name: 'date'; format?: DateFormat }
  /** `dateOnly`: the file has dates among its timestamps, read as midnight (`localTimestamp({ dateOnly })`). */
  | { name: 'timestamp'; dateOnly?: 'midnight' };

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
  const n = count(col.values, 'value');
  if (col.values === 0) return { type: { name: 'text' }, evidence: 'no values (every row null): text' };
  if (col.kinds.has('json')) return { type: { name: 'jsonb' }, evidence: `${n}, nested objects/arrays` };
  if (col.leadingZeros > 0)
    return {
      type: { name: 'text' },
      evidence: `${n}, ${col.leadingZeros} with leading zeros (e.g. ${example(col.textExample ?? '')}): kept as text`,
    };
  if (only(col, 'integer')) return wholeNumbers(col, n);
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
  if (only(col, 'date', 'timestamp'))
    return {
      type: { name: 'timestamp', dateOnly: 'midnight' },
      evidence: `${n}, mixed: ${mixed}: ${MIDNIGHT}`,
    };
  const dated = only(col, 'date', 'timestamptz') ? DATES_AND_ZONES : '';
  const shown = col.textExample === undefined ? '' : ` (e.g. ${example(col.textExample)})`;
  const dates = col.textExample === undefined ? undefined : textHint(col, col.textExample);
  const zones = col.kinds.has('timestamp') && col.kinds.has('timestamptz') ? MIXED_ZONES : '';
  return {
    type: { name: 'text' },
    evidence:
      col.kinds.size === 1
        ? dates
          ? `${n}, text: ${dates}`
          : `${n}${shown}`
        : `${n}, mixed: ${mixed}: text${zones}${dated}${dates ? `; ${dates}` : ''}`,
  };
}

/**
 * Whole numbers by range; all of them dates `YYYYMMDD` from 1900 to 2100 under a name that says date
 * (`start_date`, `created_on`, `dt`) are a `date`. Without such a name they may be amounts or ids that
 * happen to fit: they stay numbers, with a hint.
 */
function wholeNumbers(col: ColumnProfile, n: string): TypedColumn {
  const range = `${col.min}..${col.max}`;
  if (col.basicDates !== col.values) return { type: integerType(col), evidence: `${n}, range ${range}` };
  if (namesDate(col.name))
    return { type: { name: 'date', format: 'YYYYMMDD' }, evidence: `${n}, all dates YYYYMMDD, ${range}` };
  return {
    type: integerType(col),
    evidence: `${n}, range ${range}; every value is a date YYYYMMDD: if they are dates, make the column date and its field date({ format: 'YYYYMMDD' })`,
  };
}

// Words of a name (snake_case) that say it holds a date: `date`, `feed_start_date`, `birthday`, `dt`.
const DATE_WORD = /^(?:\w*date|\w*day|dt|ymd|yyyymmdd)$/;

/** Whether a column's name says it holds dates: a date word, or ending in `_on` (`created_on`). */
function namesDate(name: string): boolean {
  const words = snakeIdentifier(name).split('_');
  return words.some((w) => DATE_WORD.test(w)) || (words.length > 1 && words.at(-1) === 'on');
}

const MIDNIGHT = "timestamp, the dates read as midnight (localTimestamp({ dateOnly: 'midnight' }))";
const DATES_AND_ZONES =
  "; the dates have no zone and the timestamps do: for the dates as midnight in one zone, make it timestamptz, its field localTimestamp({ dateOnly: 'midnight' }) and the dataset's timeZone the zone the dates mean";

/** Why a column that looks like dates or numbers is text: the loader reads neither form (see below). */
function textHint(col: ColumnProfile, text: string): string | undefined {
  return localDateHint(text) ?? decimalCommaHint(col, text);
}

const DECIMAL_COMMA = /^-?\d{1,3}(?:\.\d{3})*,\d+$|^-?\d+,\d+$/;

/**
 * Why `19,67` (a European file, `;`-delimited) is text: the loader's number fields read a decimal
 * point only. Judged from the first text value and the column's kinds (numbers besides it, `5` being
 * the same file's whole numbers), counted already: the per-value loop does no extra work for it.
 */
function decimalCommaHint(col: ColumnProfile, text: string): string | undefined {
  if (!DECIMAL_COMMA.test(text) || !only(col, 'text', 'integer', 'decimal')) return undefined;
  return `values look like decimal commas (${example(text).slice(1, -1)}); the loader reads numbers with a decimal point only`;
}

const MIXED_ZONES = '; some values carry a zone and some do not: a column is read one way or the other';
const LOCAL_DATE = /^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?:[ T]\S.*)?$/;

/**
 * Why a value like `19/02/2024` is text: the loader's date fields read ISO dates only, and a user
 * seeing "text" for a date column needs to know that. Day and month are told apart when one is > 12.
 */
function localDateHint(text: string): string | undefined {
  const m = LOCAL_DATE.exec(text);
  if (!m) return undefined;
  const [a, b, year] = [Number(m[1]), Number(m[3]), m[4]];
  const iso = (month: number, day: number) =>
    `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
  const [order, isoExample] =
    a > 12 && b <= 12
      ? ['day/month/year', iso(b, a)]
      : b > 12 && a <= 12
        ? ['month/day/year', iso(a, b)]
        : ['day/month/year or month/day/year', 'YYYY-MM-DD'];
  return `values look like ${order} dates (${example(text).slice(1, -1)}); the loader reads ISO dates only (${isoExample})`;
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
