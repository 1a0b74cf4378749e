import * as momoa from '@humanwhocodes/momoa';

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
  /** A number JSON.parse does not read as written (its double is another number). */
  inexact: boolean;
}

/**
 * One pass over a JSON line, character by character: inside strings only quotes and backslashes
 * matter, outside them colons are counted and numbers measured. A number of 16 or more digits or with
 * a three-digit exponent is read alone (`Number`) and compared with its double; a shorter one has at
 * most 15 significant digits within a double's normal range, which a double reads back as written.
 * (A regex for long digit runs costs about half of JSON.parse itself; `indexOf` from string to string
 * costs a call into the runtime each.)
 */
export function scanLine(line: string, out: LineScan): LineScan {
  let keys = 0;
  let inexact = false;
  let digits = 0;
  /** Digits of the exponent, -1 before an `e`. */
  let exponent = -1;
  /** Characters of the token so far (digits, point, signs, `e`). */
  let token = 0;
  const length = line.length;
  const escapes = line.includes('\\');
  for (let i = 0; i <= length; i++) {
    const c = i < length ? line.charCodeAt(i) : -1;
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
      token++;
    } else if (c === LOWER_E || c === UPPER_E) {
      exponent = 0;
      token++;
    } else if (c === DOT || c === PLUS || c === MINUS) token++;
    else {
      // A token ends: `true` and `false` pass through `e` above with no digits after it.
      if ((digits >= 16 || exponent >= 3) && !inexact) inexact = !exactText(line.slice(i - token, i));
      digits = 0;
      exponent = -1;
      token = 0;
      if (c === COLON) keys++;
    }
  }
  out.keys = keys;
  out.inexact = inexact;
  return out;
}

/** Whether a JSON number's text is the number its double is: data written by a program holds many 17-digit doubles (`0.14285714285714285`), each its shortest text. */
function exactText(text: string): boolean {
  const value = Number(text);
  return String(value) === text || sameNumber(text, value);
}

/**
 * The numbers of one JSON text (an NDJSON record) that JSON.parse reads as another number, in the
 * order JSON.parse reads them. Parses the text again with each number's source text (ES2025 JSON.parse
 * source access, Node 22 and later): run it only on a line `scanLine` found one in.
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

/**
 * Keys the parsed record has, at every depth: fewer than `scanLine` counted in its text means a key
 * repeats in one object (JSON.parse keeps the last value without a word).
 */
export function keyCount(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (const element of value) n += keyCount(element);
    return n;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    n++;
    const child = object[key];
    if (child !== null && typeof child === 'object') n += keyCount(child);
  }
  return n;
}

/** A key an object of a JSON record names twice: where it is, and where (character, from 1) the second one starts. */
export interface DuplicateKey {
  path: (string | number)[];
  key: string;
  character: number;
}

/** The first key repeated in one object of a JSON text (outer objects first), read with its places. */
export function duplicateKey(text: string): DuplicateKey | undefined {
  return firstDuplicate(momoa.parse(text).body, []);
}

function firstDuplicate(node: momoa.ValueNode, path: (string | number)[]): DuplicateKey | undefined {
  if (node.type === 'Array') {
    for (const [i, element] of node.elements.entries()) {
      const found = firstDuplicate(element.value, [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (node.type !== 'Object') return undefined;
  const seen = new Set<string>();
  for (const member of node.members) {
    const key = member.name.type === 'String' ? member.name.value : member.name.name;
    if (seen.has(key)) return { path: [...path, key], key, character: member.name.loc.start.offset + 1 };
    seen.add(key);
  }
  for (const member of node.members) {
    const key = member.name.type === 'String' ? member.name.value : member.name.name;
    const found = firstDuplicate(member.value, [...path, key]);
    if (found) return found;
  }
  return undefined;
}
