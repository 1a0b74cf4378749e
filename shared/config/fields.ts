import { z } from 'zod';
import { daysIn, digits } from '../core/calendar.ts';
import { ConfigError } from '../core/errors.ts';
import { configError } from './dataset.ts';

/**
 * Strict field types for CSV text (and NDJSON values). `z.coerce.number()` reads `" "` as 0 and `0x10`
 * as 16, and `z.coerce.date()` reads a timestamp without an offset in the machine's time zone, so the
 * same file loads differently on a laptop and in Lambda. These accept only what they say.
 */

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A value read but refused for a reason of its own (not merely "not <expected>"). */
class Refused {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** What a reader answers: the value, undefined for "not <expected>", or a refusal. */
type Read<T> = T | undefined | Refused;

/** What a field takes: text, and NDJSON numbers as their shortest text (plus what a helper adds). */
// Any number, Infinity too (JSON.parse reads 1e400 so): the helper refuses it with its own reason, not zod's "Invalid input".
const ANY_NUMBER = z.custom<number>((v) => typeof v === 'number');
const TEXT_OR_NUMBER = z.union([z.string(), ANY_NUMBER]);

/** Each helper's schema → what it makes of a text, or undefined where its schema refuses the text. */
const TEXT_READERS = new WeakMap<z.core.$ZodType, (text: string) => unknown>();

/**
 * The reader a strict helper's schema runs on a text value (trimmed first, as the schema does): its
 * value, or undefined where the schema refuses the text. Lets the loader skip zod for the text a file
 * holds and ask zod only for the message of a refusal. Undefined for every other schema.
 */
export function textReader(schema: z.core.$ZodType): ((text: string) => unknown) | undefined {
  return TEXT_READERS.get(schema);
}

function parsed<T>(
  read: (text: string) => Read<T>,
  expected: string,
  input: z.ZodType<string | number | bigint | boolean> = TEXT_OR_NUMBER,
) {
  const schema = input.transform((value, ctx): T => {
    const out = read(typeof value === 'string' ? value.trim() : String(value));
    const refusal = out === undefined ? `not ${expected}` : out instanceof Refused ? out.reason : undefined;
    if (refusal !== undefined) {
      ctx.addIssue({ code: 'custom', message: refusal });
      return z.NEVER;
    }
    return out as T;
  });
  TEXT_READERS.set(schema, (text) => {
    const out = read(text.trim());
    return out instanceof Refused ? undefined : out;
  });
  return schema;
}

/** A whole number in decimal digits, within JavaScript's safe range (use `bigintText` beyond it). */
export const integer = () =>
  parsed(
    (t) => (INTEGER.test(t) && Number.isSafeInteger(Number(t)) ? Number(t) : undefined),
    'a whole number',
  );

/**
 * A decimal number (`12`, `-0.5`, `1e3`) as a JavaScript double; no hex, no blanks, no thousands
 * separators. A double keeps about 15 significant digits: for money and other exact values of
 * `numeric` columns use `numeric()`, which keeps every digit.
 */
export const decimal = () =>
  parsed((t) => {
    if (!DECIMAL.test(t)) return undefined;
    const n = Number(t);
    if (!Number.isFinite(n)) return new Refused(`beyond the range of a double (got "${t}"): use numeric()`);
    // Only a zero is checked further: a nonzero literal that reads as 0 must not load as 0.
    if (n === 0 && NONZERO_DIGIT.test(t.replace(EXPONENT, '')))
      return new Refused(`too small for a double, it would be stored as 0 (got "${t}"): use numeric()`);
    return n;
  }, 'a decimal number');

const NONZERO_DIGIT = /[1-9]/;
const EXPONENT = /[eE].*$/;

/** A whole number kept as text, for `bigint` / `numeric` columns beyond 2^53. */
export const bigintText = () => parsed((t) => (INTEGER.test(t) ? t : undefined), 'a whole number');

// zod's own pattern for an ISO timestamp with an offset, the one `z.iso.datetime({ offset: true })`
// checks, tested directly: `init` asks it of millions of values, without a parse result for each.
const OFFSET_TIMESTAMP = z.regexes.datetime({ offset: true });

/**
 * Whether `timestamp()` accepts the (trimmed) text: an ISO 8601 timestamp with `Z` or an offset, from
 * year 1 (Postgres has no year 0, which zod's pattern and Date take).
 */
export const isOffsetTimestamp = (text: string): boolean =>
  OFFSET_TIMESTAMP.test(text) && !(text.charCodeAt(0) === ZERO && text.startsWith('0000'));

const ZERO = 48;

/** An ISO 8601 timestamp with `Z` or an offset; one without is refused rather than read in some time zone. */
export const timestamp = () =>
  parsed(
    (t) => (isOffsetTimestamp(t) ? new Date(t) : noSuchDateTime(t)),
    'an ISO timestamp with a time zone (Z or +hh:mm)',
  );

// ---- exact decimals ----

const PLAIN_OR_EXPONENT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
/** Postgres's own limits for an unconstrained `numeric`: digits before and after the point. */
const MAX_INTEGER_DIGITS = 131_072;
const MAX_FRACTION_DIGITS = 16_383;

/** A decimal's parts: sign, integer digits without leading zeros, fraction digits as written. */
interface Decimal {
  negative: boolean;
  integer: string;
  fraction: string;
}

/** Reads plain or exponent notation exactly (string shifts, no double); undefined for anything else. */
function readDecimal(text: string): Decimal | undefined {
  const m = PLAIN_OR_EXPONENT.exec(text);
  if (!m) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent] = m;
  if (whole === '' && fraction === '') return undefined;
  const shift = exponent === undefined ? 0 : Number(exponent);
  if (Math.abs(shift) > MAX_INTEGER_DIGITS) return undefined;
  const digits = whole + fraction;
  let point = whole.length + shift;
  let padded = digits;
  if (point < 0) {
    padded = '0'.repeat(-point) + digits;
    point = 0;
  } else if (point > digits.length) padded = digits + '0'.repeat(point - digits.length);
  const integer = padded.slice(0, point).replace(/^0+/, '');
  const rest = padded.slice(point);
  // An exponent moved the point: zeros it trailed are not digits the file wrote.
  const out = {
    negative: sign === '-',
    integer,
    fraction: exponent === undefined ? rest : rest.replace(/0+$/, ''),
  };
  if (out.integer.length > MAX_INTEGER_DIGITS || out.fraction.length > MAX_FRACTION_DIGITS) return undefined;
  return out;
}

function decimalText({ negative, integer, fraction }: Decimal): string {
  const zero = /^0*$/.test(integer + fraction);
  return `${negative && !zero ? '-' : ''}${integer || '0'}${fraction ? `.${fraction}` : ''}`;
}

/** Why a decimal does not fit `numeric(precision, scale)`, or undefined when it does. */
function misfit(d: Decimal, precision: number, scale: number): string | undefined {
  const type = `numeric(${precision},${scale})`;
  const decimals = d.fraction.replace(/0+$/, '').length;
  if (decimals > scale)
    return `${decimals} decimal${decimals === 1 ? '' : 's'} where ${type} keeps ${scale} (refused, not rounded)`;
  const room = precision - scale;
  if (d.integer.length > room)
    return `${d.integer.length} digits before the decimal point where ${type} allows ${room}`;
  return undefined;
}

export interface NumericOptions {
  /** Total significant digits of the column's `numeric(precision, scale)`. */
  precision?: number;
  /** Digits after the decimal point (default 0 when `precision` is given, as in Postgres). */
  scale?: number;
}

function checkedOptions(opts: NumericOptions): { precision: number; scale: number } | undefined {
  if (opts.precision === undefined) {
    if (opts.scale !== undefined) throw new ConfigError('numeric(): scale needs a precision');
    return undefined;
  }
  const { precision, scale = 0 } = opts;
  if (!Number.isInteger(precision) || precision < 1 || precision > 1000)
    throw new ConfigError(`numeric(): precision must be a whole number from 1 to 1000 (got ${precision})`);
  if (!Number.isInteger(scale) || scale < 0 || scale > precision)
    throw new ConfigError(`numeric(): scale must be a whole number from 0 to the precision (got ${scale})`);
  return { precision, scale };
}

/**
 * An exact decimal for a `numeric` column, kept as text: `numeric().parse('12345678901234567.89')` is
 * `'12345678901234567.89'` (a double would make it `12345678901234568`). Accepts plain notation (`12`,
 * `-0.5`, `+3`, `.5`, `12.`) and exponent notation (`1e3`, `2.5E-3`), written out in plain digits
 * (`'1000'`, `'0.0025'`); refuses blanks, hex, thousands separators, NaN and Infinity. With
 * `{ precision, scale }` a value that does not fit `numeric(precision, scale)` is refused rather than
 * rounded as Postgres would: more decimals than `scale` (trailing zeros do not count), or more digits
 * before the point than `precision - scale`. An NDJSON number a double does not hold as written
 * (12345678901234567.89) reaches it as the file's text (see load/exact-numbers.ts); any other as the
 * shortest text of its double (`2.50` as `'2.5'`).
 */
export function numeric(opts: NumericOptions = {}) {
  const fit = checkedOptions(opts);
  const read = (t: string): Read<string> => {
    const d = readDecimal(t);
    if (!d) return undefined;
    const problem = fit && misfit(d, fit.precision, fit.scale);
    return problem ? new Refused(problem) : decimalText(d);
  };
  // Parquet hands INT64 values over as bigint: exact already.
  return parsed(read, 'a decimal number', z.union([z.string(), ANY_NUMBER, z.bigint()]));
}

// ---- dates, times, booleans ----

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const LOCAL_TIMESTAMP =
  /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Whether `date()` accepts the (trimmed) text: a calendar date `YYYY-MM-DD` from year 1 on. */
export function isCalendarDate(text: string): boolean {
  const m = DATE.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Postgres has no year 0 (1 BC comes before 1 AD).
  if (year < 1) return false;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/**
 * A helper's options checked by their spec, its defaults applied: the spec is the one statement of
 * what the helper takes (its options' type is inferred from it), and a wrong one fails the config.
 */
function helperOptions<S extends z.ZodType>(helper: string, spec: S, given: unknown): z.output<S> {
  const out = spec.safeParse(given);
  if (!out.success) throw configError(out.error, `${helper}()`);
  return out.data;
}

const DATE_OPTIONS = z.strictObject({
  /**
   * How the file writes a date: `YYYY-MM-DD` (ISO 8601's extended format), or `YYYYMMDD` (its basic
   * format: GTFS feeds, many exports), which is stored as the same `date`.
   */
  format: z.enum(['YYYY-MM-DD', 'YYYYMMDD']).default('YYYY-MM-DD'),
});
export type DateOptions = z.input<typeof DATE_OPTIONS>;
export type DateFormat = z.output<typeof DATE_OPTIONS>['format'];

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Why a year, month and day make no calendar date (no 30th of February, no year 0000), or undefined. */
function calendarProblem(year: number, month: number, day: number): string | undefined {
  // Postgres has no year 0 (1 BC comes before 1 AD).
  if (year < 1) return 'there is no year 0000';
  if (month < 1 || month > 12) return `there is no month ${pad(month, 2)}`;
  const days = daysIn(year, month);
  if (day < 1 || day > days)
    return `${pad(year, 4)}-${pad(month, 2)} has no day ${pad(day, 2)} (it has ${days})`;
  return undefined;
}

/** The problem of 8 digits `YYYYMMDD` that make no calendar date, '' for one that does, undefined for other text. */
function basicDateProblem(text: string): string | undefined {
  if (text.length !== 8) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 4, 2);
  const day = digits(text, 6, 2);
  if (year < 0 || month < 0 || day < 0) return undefined;
  return calendarProblem(year, month, day) ?? '';
}

/** Whether `date({ format: 'YYYYMMDD' })` accepts the (trimmed) text. */
export const isBasicDate = (text: string): boolean => basicDateProblem(text) === '';

/** 8 digits `YYYYMMDD` as the date's text `YYYY-MM-DD`; a refusal naming what no calendar has. */
function basicDate(text: string): Read<string> {
  const problem = basicDateProblem(text);
  if (problem === undefined) return undefined;
  if (problem !== '') return new Refused(`not a calendar date: ${problem}`);
  return `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6)}`;
}

/**
 * A calendar date (no 30th of February, no year 0000) for a `date` column, kept as its text
 * `YYYY-MM-DD`. The file writes it `YYYY-MM-DD`, or with `{ format: 'YYYYMMDD' }` as 8 digits
 * (`20240131`, or that NDJSON number), read by char codes, no regex.
 */
export function date(options: DateOptions = {}) {
  const { format } = helperOptions('date', DATE_OPTIONS, options);
  if (format === 'YYYYMMDD') return parsed(basicDate, 'a date (YYYYMMDD)');
  return parsed((t) => (isCalendarDate(t) ? t : noSuchDateTime(t)), 'a date (YYYY-MM-DD)');
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const DATE_TIME_PARTS = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/;

/**
 * Why a refused text shaped like a date (and time) names none: a part out of range (`no such date:
 * February 30`, `no such time: hour 24`), so the reason does not blame a zone the text has. Undefined
 * (the helper's own "not …") for any other text. Runs on refusals only.
 */
function noSuchDateTime(text: string): Refused | undefined {
  const m = DATE_TIME_PARTS.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year === 0) return new Refused('no such date: year 0 (the year before 1 is 1 BC)');
  if (month < 1 || month > 12) return new Refused(`no such date: month ${m[2]}`);
  if (!isCalendarDate(`${m[1]}-${m[2]}-${m[3]}`))
    return new Refused(
      `no such date: ${MONTHS[month - 1]} ${day}${month === 2 && day === 29 ? ` in ${year}` : ''}`,
    );
  if (m[4] !== undefined && Number(m[4]) > 23) return new Refused(`no such time: hour ${m[4]}`);
  if (m[5] !== undefined && Number(m[5]) > 59) return new Refused(`no such time: minute ${m[5]}`);
  if (m[6] !== undefined && Number(m[6]) > 59)
    return new Refused(
      `no such time: second ${m[6]}${m[6] === '60' ? ' (a leap second, which no timestamp type keeps)' : ''}`,
    );
  return undefined;
}

/** The timestamp in one form Postgres reads (`YYYY-MM-DDTHH:MM:SS[.f][zone]`), or undefined. */
function localTimestampText(text: string): string | undefined {
  const m = LOCAL_TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [, day = '', hour = '', minute = '', second = '00', fraction = '', zone = ''] = m;
  if (!isCalendarDate(day) || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59)
    return undefined;
  const offset = /^[+-]\d{2}(:?\d{2})?$/.test(zone) ? zone : undefined;
  if (offset && (Number(offset.slice(1, 3)) > 23 || Number(offset.slice(-2)) > 59)) return undefined;
  return `${day}T${hour}:${minute}:${second}${fraction}${zone.toUpperCase()}`;
}

/** Whether `localTimestamp()` accepts the (trimmed) text. */
export const isLocalTimestamp = (text: string): boolean => localTimestampText(text) !== undefined;

const LOCAL_TIMESTAMP_OPTIONS = z.strictObject({
  /**
   * A date without a time (`1996-07-04`): `refuse`d, or read as that day's `midnight`, a zoneless
   * wall-clock time like any other (in the dataset's `timeZone`).
   */
  dateOnly: z.enum(['refuse', 'midnight']).default('refuse'),
});
export type LocalTimestampOptions = z.input<typeof LOCAL_TIMESTAMP_OPTIONS>;

/**
 * A timestamp, with or without a time zone: `1996-07-04 00:00:00.000`, `1996-07-04T00:00`, with up to
 * nine decimals (Postgres keeps microseconds). One without a zone is a wall-clock time in the dataset's
 * `timeZone` (default UTC), never the machine's: the loader has Postgres read it in that zone (`set
 * local time zone` in the transaction that writes it), so a file loads the same on a laptop and in
 * Lambda. One with `Z` or an offset (`+02:00`, `+0200`, `+02`) is that instant. The output is that
 * text, normalized (`T`, seconds); into a `timestamp` (without time zone) column Postgres stores a
 * zoneless value as written and drops an offset, so give such a column zoneless values. Wall-clock times
 * that a DST change skips or repeats are read as Postgres reads them: a skipped one (02:30 when clocks
 * jump from 02:00 to 03:00) with the offset before the change (so 03:30 summer time), a repeated one
 * (02:30 when clocks fall back from 03:00 to 02:00) as standard time, the later of the two instants.
 * With `{ dateOnly: 'midnight' }` a date alone (`1996-07-04`) is that day's 00:00, zoneless like the rest.
 */
export function localTimestamp(options: LocalTimestampOptions = {}) {
  const { dateOnly } = helperOptions('localTimestamp', LOCAL_TIMESTAMP_OPTIONS, options);
  const expected = 'a timestamp (YYYY-MM-DD HH:MM[:SS[.fff]], optionally with Z or an offset)';
  if (dateOnly === 'refuse') return parsed((t) => localTimestampText(t) ?? noSuchDateTime(t), expected);
  // Tried after the timestamp: a column of timestamps pays nothing for its few dates.
  const read = (t: string) =>
    localTimestampText(t) ?? (isCalendarDate(t) ? `${t}T00:00:00` : noSuchDateTime(t));
  return parsed(read, `${expected} or a date (YYYY-MM-DD)`);
}

const TRUE = new Set(['true', 't', '1', 'yes', 'y']);
const FALSE = new Set(['false', 'f', '0', 'no', 'n']);

/** A boolean: `true/false`, `t/f`, `1/0`, `yes/no`, `y/n` in any case (and JSON booleans). */
export const boolean = () =>
  parsed(
    (t) => {
      const lower = t.toLowerCase();
      return TRUE.has(lower) ? true : FALSE.has(lower) ? false : undefined;
    },
    'a boolean (true/false, t/f, 1/0, yes/no, y/n)',
    z.union([z.string(), ANY_NUMBER, z.boolean()]),
  );
