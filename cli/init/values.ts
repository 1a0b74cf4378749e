import { date, localTimestamp, timestamp } from '../../shared/config/fields.ts';

/**
 * What one value looks like. A column's type is decided by every shape seen in the whole file; these
 * are the shapes the loader's strict field helpers accept, so an inferred type never refuses the
 * values it was inferred from.
 */
export type Shape =
  | { kind: 'boolean' }
  | { kind: 'integer'; value: number | bigint }
  | { kind: 'decimal'; intDigits: number; scale: number }
  | { kind: 'date' }
  | { kind: 'timestamp' }
  | { kind: 'timestamptz' }
  | { kind: 'uuid' }
  | { kind: 'json' }
  | { kind: 'text'; reason?: 'leading zero' };

/** The raw values read as "no value" when a file uses them; `nullValues` of a generated dataset lists those seen. */
export const NULL_TOKENS = ['', 'NULL', 'null', '\\N', 'N/A'] as const;
export type NullToken = (typeof NULL_TOKENS)[number];
const NULL_SET: ReadonlySet<string> = new Set(NULL_TOKENS);

// Every token is at most 4 characters: most values are ruled out without hashing them.
export const isNullToken = (text: string): text is NullToken => text.length <= 4 && NULL_SET.has(text);

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?(\d+)\.(\d+)$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
// Zoneless: what a local timestamp field reads (ISO date and time, `T` or a space, optional fraction).
const LOCAL_TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BOOLEAN = /^(true|false)$/i;
// With a zone: exactly what `timestamp()` accepts (zod is asked only about values shaped like one: a
// refused parse costs microseconds, and most text is not a timestamp).
const zonedTimestamp = timestamp();
const ZONED_SHAPE = /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/;
// The loader's own field types decide: a type is inferred only from values its field accepts.
const calendarDate = date();
const wallClock = localTimestamp();

/** Leading zeros (`01581`, `-007`) are part of an identifier: such a value stays text. */
const leadingZero = (digits: string) => digits.length > 1 && digits.startsWith('0');

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const MINUS = 45;

/** The shape of one non-null text value (CSV fields, NDJSON strings). */
export function shapeOfText(text: string): Shape {
  const c = text.charCodeAt(0);
  // Numbers, dates and timestamps start with a digit or a minus; anything else is a boolean, a UUID or text.
  if ((c >= DIGIT_0 && c <= DIGIT_9) || c === MINUS) {
    const numeric = numericShape(text);
    if (numeric) return numeric;
  } else if (BOOLEAN.test(text)) return { kind: 'boolean' };
  if (text.length === 36 && UUID.test(text)) return { kind: 'uuid' };
  if (c < DIGIT_0 || c > DIGIT_9) return { kind: 'text' };
  if (DATE.test(text)) return calendarDate.safeParse(text).success ? { kind: 'date' } : { kind: 'text' };
  const local = LOCAL_TIMESTAMP.exec(text);
  if (local) return wallClock.safeParse(text).success ? { kind: 'timestamp' } : { kind: 'text' };
  if (ZONED_SHAPE.test(text) && zonedTimestamp.safeParse(text).success) return { kind: 'timestamptz' };
  return { kind: 'text' };
}

function numericShape(text: string): Shape | undefined {
  if (INTEGER.test(text)) {
    const digits = text.charCodeAt(0) === MINUS ? text.slice(1) : text;
    if (leadingZero(digits)) return { kind: 'text', reason: 'leading zero' };
    // Up to 15 digits a double is exact; BigInt only beyond.
    return { kind: 'integer', value: digits.length <= 15 ? Number(text) : BigInt(text) };
  }
  const decimal = DECIMAL.exec(text);
  if (!decimal) return undefined;
  const [, whole = '', fraction = ''] = decimal;
  if (leadingZero(whole)) return { kind: 'text', reason: 'leading zero' };
  return { kind: 'decimal', intDigits: whole === '0' ? 0 : whole.length, scale: fraction.length };
}

/** The shape of a typed value (NDJSON, Parquet): numbers by their digits, objects and arrays as JSON. */
export function shapeOfValue(value: unknown): Shape {
  if (typeof value === 'string') return shapeOfText(value);
  if (typeof value === 'boolean') return { kind: 'boolean' };
  if (typeof value === 'bigint') return { kind: 'integer', value };
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return { kind: 'integer', value };
    return Number.isFinite(value) ? shapeOfText(String(value)) : { kind: 'text' };
  }
  if (value instanceof Date) return { kind: 'timestamptz' };
  return { kind: 'json' };
}

/** The text a typed value is compared by across files (a CSV `7` and an NDJSON `7` are the same key). */
export function keyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
