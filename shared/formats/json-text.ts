/**
 * What JSON.parse does not keep of a record's text, found in one pass over the line (`scanLine`).
 * Numbers it does not read as the file wrote them: a double keeps about 15
 * significant digits and a range up to about 1.8e308, so `12345678901234567890` reads as
 * 12345678901234567000, `0.1000000000000000055` as 0.1, `1e-400` as 0 and `1e400` as Infinity; what
 * goes on to Postgres (JSON.stringify, String) is that double, not the file's number.
 */

/** A number of a JSON record whose double is not the number written: where it is and its text in the file. */
export interface InexactNumber {
  /** Keys and indexes from the record's root (`['doc', 'v']`, `['lines', 1, 'price']`). */
  path: (string | number)[];
  /** The number as the file wrote it. */
  source: string;
  /** What JSON.parse read (`String` of it is what would be stored). */
  value: number;
}

const QUOTE_CODE = 34;
const BACKSLASH = 92;
const COLON = 58;
const ZERO = 48;
const NINE = 57;
const DOT = 46;
const PLUS = 43;
const MINUS = 45;
const LOWER_E = 101;
const UPPER_E = 69;

/** What one pass over a JSON line sees outside its strings (see `scanLine`). */
export interface LineScan {
  /** Keys the text writes (a string followed by a colon): more than the parsed record has means one repeats. */
  keys: number;
  /** A number of 16 or more digits or with a three-digit exponent: one a double may not hold as written. */
  longNumber: boolean;
}

/**
 * One pass over a JSON line, character by character: inside strings only quotes and backslashes
 * matter, outside them digits, exponents and colons are counted. A regex for long digit runs costs
 * about half of JSON.parse itself; `indexOf` from string to string costs a call into the runtime each.
 */
export function scanLine(line: string, out: LineScan): LineScan {
  let keys = 0;
  let long = false;
  let digits = 0;
  /** Digits of the exponent, -1 before an `e`. */
  let exponent = -1;
  const length = line.length;
  const escapes = line.includes('\\');
  for (let i = 0; i < length; i++) {
    const c = line.charCodeAt(i);
    if (c === QUOTE_CODE) {
      // A string: on to its closing quote, over escaped characters (a line without backslashes has none).
      if (!escapes) {
        const close = line.indexOf('"', i + 1);
        i = close === -1 ? length : close;
        continue;
      }
      for (i++; i < length; i++) {
        const s = line.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE_CODE) break;
      }
      continue;
    }
    if (c >= ZERO && c <= NINE) {
      if (exponent >= 0) exponent++;
      else digits++;
    } else if (c === LOWER_E || c === UPPER_E) exponent = 0;
    else if (c !== DOT && c !== PLUS && c !== MINUS) {
      // A token ends: `true` and `false` pass through `e` above with no digits after it.
      if (digits >= 16 || exponent >= 3) long = true;
      digits = 0;
      exponent = -1;
      if (c === COLON) keys++;
    }
  }
  out.keys = keys;
  out.longNumber = long || digits >= 16 || exponent >= 3;
  return out;
}

/**
 * Numbers that may not be read as written: 16 or more digits (a run of digits and points that starts
 * with a digit: `1.234567890123456`), or a three-digit exponent. Anything shorter has at most 15
 * significant digits within a double's normal range, which a double always reads back as written.
 */
const LONG_NUMBER = /\d[\d.]{15,}(?:[eE][+-]?\d+)?|\d[eE][+-]?\d{3,}/g;

/**
 * Whether a line `scanLine` found a long number in holds one JSON.parse does not read as written: a long one (see LONG_NUMBER)
 * whose double is another number. Such a number is read alone (`Number`), not the line again: data
 * written by a program holds many 17-digit doubles (`0.14285714285714285`), each exactly its text.
 * A match inside a string, or not a number at all, answers yes: `inexactNumbers` then looks properly.
 */
export function mayHoldInexact(line: string): boolean {
  LONG_NUMBER.lastIndex = 0;
  for (let m = LONG_NUMBER.exec(line); m !== null; m = LONG_NUMBER.exec(line)) {
    const text = m[0];
    const value = Number(text);
    // The common case first: a double's shortest text, as JSON.stringify and most writers make it.
    if (String(value) !== text && !sameNumber(text, value)) return true;
  }
  return false;
}

/**
 * The numbers of one JSON text (an NDJSON record) that JSON.parse reads as another number, in the
 * order JSON.parse reads them. Parses the text again with each number's source text (ES2025 JSON.parse
 * source access, Node 22 and later): run it only on a line `mayHoldInexact` picked.
 */
export function inexactNumbers(text: string): InexactNumber[] {
  const found: InexactNumber[] = [];
  const tree: unknown = JSON.parse(text, (_key: string, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && !sameNumber(context.source, value)
      ? new Inexact(context.source, value)
      : value,
  );
  collect(tree, [], found);
  return found;
}

class Inexact {
  readonly source: string;
  readonly value: number;
  constructor(source: string, value: number) {
    this.source = source;
    this.value = value;
  }
}

function collect(value: unknown, path: (string | number)[], found: InexactNumber[]): void {
  if (value instanceof Inexact) {
    found.push({ path, source: value.source, value: value.value });
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) collect(value[i], [...path, i], found);
    return;
  }
  for (const [key, child] of Object.entries(value)) collect(child, [...path, key], found);
}

/** Whether a JSON number's text and the double read from it are the same number (a zero's sign aside). */
function sameNumber(source: string, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  return decimalKey(source) === decimalKey(String(value));
}

const DECIMAL = /^-?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A decimal text as `sign digits e exponent`, leading and trailing zeros gone: equal keys, equal numbers. */
function decimalKey(text: string): string {
  const m = DECIMAL.exec(text);
  if (!m) return text;
  const whole = m[1] ?? '';
  const fraction = m[2] ?? '';
  let digits = `${whole}${fraction}`.replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = Number(m[3] ?? 0) - fraction.length;
  const trimmed = digits.replace(/0+$/, '');
  exponent += digits.length - trimmed.length;
  digits = trimmed;
  return `${text.startsWith('-') ? '-' : ''}${digits}e${exponent}`;
}
