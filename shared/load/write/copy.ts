import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompiledQuery, sql, type Transaction } from 'kysely';
import { from as copyFrom } from 'pg-copy-streams';
import type { Database } from '../../ledger/schema.ts';

/**
 * `COPY … FROM STDIN` on a Kysely transaction's own connection. Kysely does not hand out its pg
 * client, but it passes a compiled query's `sql` straight to `client.query`, and pg runs any object
 * with a `submit` method as the query itself: so the COPY stream rides through Kysely as a query and
 * lands, in order, on the transaction's connection.
 */

/** PGlite over its socket does not refuse COPY FROM STDIN: it drops the connection. Ask once per database. */
const support = new WeakMap<object, Promise<boolean>>();

async function probe(trx: Transaction<Database>): Promise<boolean> {
  const { rows } = await sql<{ v: string }>`select version() as v`.execute(trx);
  return !/PGlite|emscripten/i.test(rows[0]?.v ?? '');
}

export function copySupported(trx: Transaction<Database>): Promise<boolean> {
  // The adapter is created once per Kysely instance and shared by its transactions: a per-database key.
  const key = trx.getExecutor().adapter;
  let known = support.get(key);
  if (!known) {
    known = probe(trx);
    known.catch(() => support.delete(key));
    support.set(key, known);
  }
  return known;
}

const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY's text format: `\N` for null; backslash, tab, newline and CR escaped. */
export function copyValue(value: string | null): string {
  if (value === null) return '\\N';
  return SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c] as string) : value;
}

/**
 * Streams `data` (COPY text-format lines, in pieces) into `statement` on the transaction's connection;
 * resolves to the rows copied. A refused COPY rejects with the server's error (SQLSTATE in `code`).
 */
export async function copyIn(
  trx: Transaction<Database>,
  statement: string,
  data: Iterable<string>,
): Promise<number> {
  const stream = copyFrom(statement);
  const query = { ...CompiledQuery.raw(statement), sql: stream } as unknown as CompiledQuery;
  const submitted = trx.executeQuery(query);
  try {
    // Both must settle: `submitted` fails if the COPY never reached the server, the pipeline if it refused the data.
    await Promise.all([submitted, pipeline(Readable.from(yielding(data), { objectMode: false }), stream)]);
  } catch (err) {
    stream.destroy();
    throw err;
  } finally {
    // pg may report the same failure again (a dropped connection errors every query it holds); the
    // caller already has it, and a second 'error' with no listener would crash the process.
    stream.on('error', () => {});
  }
  return stream.rowCount;
}

/**
 * The pieces, with a turn of the event loop after each. The server refuses a COPY as soon as a row
 * fails, but its error is only read from the socket when the loop turns: fed synchronously, a refused
 * COPY would parse, validate and send the whole chunk before noticing.
 */
async function* yielding(data: Iterable<string>): AsyncGenerator<string> {
  for (const piece of data) {
    yield piece;
    await new Promise((r) => setImmediate(r));
  }
}

const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 10000-01-01: within, `toISOString` writes a four-digit year. */
const FOUR_DIGIT_YEARS_FROM = -62_167_219_200_000;
const FOUR_DIGIT_YEARS_UNTIL = 253_402_300_800_000;
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** `YYYY-MM-DDT` by day number: rows of a file cluster on few days. Cleared when it grows past this. */
const DAY_PREFIXES = new Map<number, string>();
const MAX_DAY_PREFIXES = 4096;

/**
 * `date.toISOString()`, faster: the day's `YYYY-MM-DDT` comes from a small cache, the time of day is
 * put together from digit tables. Outside years 0–9999 (and for invalid dates, which throw) it is
 * `toISOString` itself.
 */
export function isoString(date: Date): string {
  const t = date.getTime();
  if (!(t >= FOUR_DIGIT_YEARS_FROM && t < FOUR_DIGIT_YEARS_UNTIL)) return date.toISOString();
  const day = Math.floor(t / DAY_MS);
  let prefix = DAY_PREFIXES.get(day);
  if (prefix === undefined) {
    if (DAY_PREFIXES.size >= MAX_DAY_PREFIXES) DAY_PREFIXES.clear();
    prefix = date.toISOString().slice(0, 11);
    DAY_PREFIXES.set(day, prefix);
  }
  const ms = t - day * DAY_MS;
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(seconds / 60);
  return `${prefix}${TWO_DIGITS[Math.floor(minutes / 60)]}:${TWO_DIGITS[minutes % 60]}:${TWO_DIGITS[seconds % 60]}.${THREE_DIGITS[ms % 1000]}Z`;
}

/**
 * `String(n)` for a number that is not an integer, faster for amounts: when `n` is the double nearest
 * to a decimal with two places (k/100, |k| < 10^15), that decimal is the shortest text that reads back
 * as `n` (two decimals of at most 15 significant digits are never the same double), so String(n) is
 * k/100 with its trailing zeros dropped, put together here from integers.
 */
export function numberText(n: number): string {
  const k = Math.round(n * 100);
  if (!(k / 100 === n && k < 1e15 && k > -1e15)) return String(n);
  const a = k < 0 ? -k : k;
  const cents = a % 100;
  const whole = (a - cents) / 100;
  // One concatenation (a second for a sign) where a part each cost one: the cents come with their point.
  const text = `${integerText(whole)}${CENTS[cents]}`;
  return k < 0 ? `-${text}` : text;
}

/** Integers `integerText` puts together from the digit table (below 10^9 in magnitude). */
const TABLE_DIGITS_UNTIL = 1e9;

/**
 * `String(n)` for an integer, faster below 10^9: three digits at a time from a table. `String` of a
 * number its small cache does not hold (a column of ids) is a call into the runtime.
 */
export function integerText(n: number): string {
  if (n < 0) return n > -TABLE_DIGITS_UNTIL ? `-${integerText(-n)}` : String(n);
  if (n < 1000) return n >= 0 ? (SMALL_INTEGERS[n] as string) : String(n);
  if (n >= TABLE_DIGITS_UNTIL) return String(n);
  const low = THREE_DIGITS[n % 1000] as string;
  const high = Math.floor(n / 1000);
  if (high < 1000) return `${SMALL_INTEGERS[high]}${low}`;
  return `${SMALL_INTEGERS[Math.floor(high / 1000)]}${THREE_DIGITS[high % 1000]}${low}`;
}

const SMALL_INTEGERS = Array.from({ length: 1000 }, (_, i) => String(i));

/** The text after the whole part for 0–99 cents, trailing zeros dropped: '', '.05', '.1', '.25'. */
const CENTS = Array.from({ length: 100 }, (_, i) =>
  i === 0 ? '' : i % 10 === 0 ? `.${i / 10}` : `.${String(i).padStart(2, '0')}`,
);

/** A value as COPY text: what `copyValue` makes of the statement path's text for it (dates as ISO instants). */
export function copyField(value: unknown): string {
  if (typeof value === 'string') return SPECIAL.test(value) ? copyValue(value) : value;
  if (value === undefined || value === null) return '\\N';
  if (typeof value === 'number') return Number.isInteger(value) ? integerText(value) : numberText(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return String(value);
  if (value instanceof Date) return isoString(value);
  return copyValue(JSON.stringify(value));
}
