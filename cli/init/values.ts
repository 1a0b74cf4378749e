import { isCalendarDate, isLocalTimestamp, isOffsetTimestamp } from '../../shared/config/fields.ts';

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
/** A longer value is no null token: a parse may leave it uncut when only that matters (see `Skim`). */
export const NULL_TOKEN_MAX_LENGTH = Math.max(...NULL_TOKENS.map((t) => t.length));

/** The tokens' first characters: a short value that starts otherwise (`12`, `true`) is ruled out unhashed. */
const NULL_FIRST: readonly number[] = [
  ...new Set(NULL_TOKENS.filter((t) => t !== '').map((t) => t.charCodeAt(0))),
];

// Every token is at most 4 characters: most values are ruled out without hashing them.
export const isNullToken = (text: string): text is NullToken =>
  text.length === 0 ||
  (text.length <= NULL_TOKEN_MAX_LENGTH && NULL_FIRST.includes(text.charCodeAt(0)) && NULL_SET.has(text));

const DATE = /^\d{4}-\d{2}-\d{2}$/;
// Zoneless: what a local timestamp field reads (ISO date and time, `T` or a space, optional fraction).
const LOCAL_TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BOOLEAN = /^(true|false)$/i;

// The shapes without data, shared: a value of one of them costs no allocation.
const BOOLEAN_SHAPE: Shape = { kind: 'boolean' };
const DATE_SHAPE: Shape = { kind: 'date' };
const TIMESTAMP_SHAPE: Shape = { kind: 'timestamp' };
const TIMESTAMPTZ_SHAPE: Shape = { kind: 'timestamptz' };
const UUID_SHAPE: Shape = { kind: 'uuid' };
const TEXT_SHAPE: Shape = { kind: 'text' };
/** Leading zeros (`01581`, `-007`, `00.5`) are part of an identifier: such a value stays text. */
const LEADING_ZERO_SHAPE: Shape = { kind: 'text', reason: 'leading zero' };

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const ZONE_Z = 90;

const isDigit = (c: number) => c >= DIGIT_0 && c <= DIGIT_9;

/**
 * The shape of one non-null text value (CSV fields, NDJSON strings). Every value of a file goes
 * through here, so the common shapes are told apart by char codes, and a date or timestamp is
 * decided by the loader's own check for its field (`isCalendarDate`, …), value by value.
 */
export function shapeOfText(text: string): Shape {
  const c = text.charCodeAt(0);
  // Numbers, dates and timestamps start with a digit or a minus; anything else is a boolean, a UUID or text.
  if (isDigit(c) || c === MINUS) {
    const numeric = numericShape(text);
    if (numeric) return numeric;
  } else if (isBoolean(text)) return BOOLEAN_SHAPE;
  if (text.length === 36 && UUID.test(text)) return UUID_SHAPE;
  if (!isDigit(c)) return TEXT_SHAPE;
  return temporalShape(text);
}

const isBoolean = (text: string) =>
  text === 'true' || text === 'false' || ((text.length === 4 || text.length === 5) && BOOLEAN.test(text));

/** A text starting with a digit that is no number: a date, a timestamp with or without a zone, or text. */
function temporalShape(text: string): Shape {
  if (text.length === 10 && DATE.test(text)) return isCalendarDate(text) ? DATE_SHAPE : TEXT_SHAPE;
  // Ends in `Z` or `±hh:mm`: no zoneless timestamp does, so only `timestamp()`'s check can make it one.
  const zone = text.charCodeAt(text.length - 6);
  if (text.charCodeAt(text.length - 1) === ZONE_Z || zone === PLUS || zone === MINUS)
    return isOffsetTimestamp(text) ? TIMESTAMPTZ_SHAPE : TEXT_SHAPE;
  if (LOCAL_TIMESTAMP.test(text)) return isLocalTimestamp(text) ? TIMESTAMP_SHAPE : TEXT_SHAPE;
  return TEXT_SHAPE;
}

/** `-?\d+` (an integer) or `-?\d+\.\d+` (a decimal), read by char codes: no regex, no substring. */
function numericShape(text: string): Shape | undefined {
  const length = text.length;
  const start = text.charCodeAt(0) === MINUS ? 1 : 0;
  let i = start;
  // The digits' value, read along: exact up to 15 digits (a double's), where BigInt takes over.
  let value = 0;
  for (let c = text.charCodeAt(i); i < length && isDigit(c); c = text.charCodeAt(++i))
    value = value * 10 + c - DIGIT_0;
  const whole = i - start;
  if (whole === 0) return undefined;
  const leadingZero = whole > 1 && text.charCodeAt(start) === DIGIT_0;
  if (i === length) {
    if (leadingZero) return LEADING_ZERO_SHAPE;
    if (whole > 15) return { kind: 'integer', value: BigInt(text) };
    return { kind: 'integer', value: start === 1 ? -value : value };
  }
  if (text.charCodeAt(i) !== DOT) return undefined;
  const point = i++;
  while (i < length && isDigit(text.charCodeAt(i))) i++;
  const scale = i - point - 1;
  if (i !== length || scale === 0) return undefined;
  if (leadingZero) return LEADING_ZERO_SHAPE;
  return { kind: 'decimal', intDigits: whole === 1 && text.charCodeAt(start) === DIGIT_0 ? 0 : whole, scale };
}

/** The shape of a typed value (NDJSON, Parquet): numbers by their digits, objects and arrays as JSON. */
export function shapeOfValue(value: unknown): Shape {
  if (typeof value === 'string') return shapeOfText(value);
  if (typeof value === 'boolean') return BOOLEAN_SHAPE;
  if (typeof value === 'bigint') return { kind: 'integer', value };
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return { kind: 'integer', value };
    return Number.isFinite(value) ? shapeOfText(String(value)) : TEXT_SHAPE;
  }
  if (value instanceof Date) return TIMESTAMPTZ_SHAPE;
  return { kind: 'json' };
}

/** The text a typed value is compared by across files (a CSV `7` and an NDJSON `7` are the same key). */
export function keyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
