import { Buffer, isUtf8 } from 'node:buffer';
import Papa from 'papaparse';
import type { Format, Quote } from '../config/dataset.ts';
import { RecordScanner, STRAY_QUOTE_HINT } from './chunking.ts';
import {
  duplicateKey,
  type InexactNumber,
  inexactNumbers,
  keyCount,
  type LineScan,
  scanLine,
} from './json-text.ts';

/** Why a record could not be read into fields. */
export interface RecordError {
  column?: string;
  reason: string;
  /** The record's `raw` is not its text as in the file (its invalid UTF-8 was replaced on decoding). */
  unreadable?: true;
  /** A quoted field closes or ends where no well-formed one does, or runs over several lines: a stray quote, maybe. */
  quote?: true;
}

/** One data record of a chunk: where it is, its original text, and its fields by name. */
export interface ParsedRecord {
  line: number;
  raw: string;
  fields?: Record<string, unknown>;
  error?: RecordError;
  /** NDJSON: the record's numbers that JSON.parse did not read as written (see json-text.ts). */
  numbers?: InexactNumber[];
}

export interface ParseOptions {
  format: Format;
  delimiter: string;
  /** CSV quote character, or `false` for none (default `"`). */
  quote?: Quote;
  /** CSV header fields in file order. */
  columns?: string[];
  firstLine: number;
  /** CSV: fields the caller needs only short values of (see `Skim`). */
  skim?: Skim;
}

/**
 * Fields (by position, true: skimmed; the caller may change them between cursors) whose long values a
 * caller does not read: on a line without quotes, such a field longer than `upTo` characters is not
 * cut out of the text, its value is `SKIMMED`. `dropload init` skims the columns it has settled as text.
 */
export interface Skim {
  fields: readonly boolean[];
  upTo: number;
}

/** The value of a skimmed field longer than `Skim.upTo`: stands for "some longer text". */
export const SKIMMED = '\u0000skimmed\u0000';

// The planner already skips the file's BOM; a U+FEFF that starts a chunk is data (say, files joined with `cat`),
// and stripping it would make a record's value depend on where the chunk boundaries fall.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Splits a chunk's bytes into records; invalid UTF-8 rejects only the lines that carry it. */
export function parseChunk(bytes: Uint8Array, options: ParseOptions): ParsedRecord[] {
  return collectRecords(chunkCursor(bytes, options), options.columns ?? []);
}

/** A stretch of a chunk's bytes: records that are all valid UTF-8, or one record that is not. */
interface Stretch {
  start: number;
  end: number;
  line: number;
  utf8: boolean;
}

/** The chunk cut at its records that are not UTF-8, each one a stretch of its own. */
function utf8Stretches(bytes: Uint8Array, options: ParseOptions): Stretch[] {
  const out: Stretch[] = [];
  const scanner = new RecordScanner(options, (span) => {
    const utf8 = isUtf8(bytes.subarray(span.start, span.end));
    const last = out.at(-1);
    if (utf8 && last?.utf8) last.end = span.end;
    else out.push({ start: span.start, end: span.end, line: options.firstLine + span.line - 1, utf8 });
  });
  scanner.push(bytes);
  scanner.end();
  return out;
}

function firstInvalidByte(bytes: Uint8Array): number {
  let lo = 0;
  let hi = bytes.length;
  // Binary search on the longest valid prefix; a cut inside a valid multi-byte character reads invalid too,
  // so the result can sit up to 3 bytes early: close enough to point a person at the spot.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (isUtf8(bytes.subarray(0, mid))) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function parseText(text: string, options: ParseOptions): ParsedRecord[] {
  return collectRecords(textCursor(text, options), options.columns ?? []);
}

/** Every record of a cursor, held: for callers that need them all at once (multi-table writes, retries). */
export function collectRecords(cursor: RecordCursor, columns: string[]): ParsedRecord[] {
  const out: ParsedRecord[] = [];
  while (cursor.next()) out.push(toParsedRecord(cursor, columns));
  return out;
}

/**
 * One record at a time, pulled: a parse that keeps nothing but the record it is on. CSV records
 * carry their fields as `values` (header order), NDJSON records as `fields`.
 */
export interface RecordCursor {
  /** Moves to the next record; false when there is none. */
  next(): boolean;
  /** Line of the current record. */
  readonly line: number;
  /** CSV: the current record's fields, in header order (set when it has no error). */
  readonly values: string[] | undefined;
  /** NDJSON (and records read as a whole): the current record's fields by name. */
  readonly fields: Record<string, unknown> | undefined;
  readonly error: RecordError | undefined;
  /** NDJSON: the current record's numbers that JSON.parse did not read as written, undefined when none. */
  readonly numbers?: InexactNumber[] | undefined;
  /** The current record's original text. */
  raw(): string;
}

/** The records of a chunk's bytes, pulled one by one (see `parseChunk`). */
export function chunkCursor(bytes: Uint8Array, options: ParseOptions): RecordCursor {
  if (isUtf8(bytes)) return textCursor(decoder.decode(bytes), options);
  return new StretchCursor(bytes, options);
}

/** A cursor over one text: where the text after it would start, for a reader that parses a stream in blocks. */
export interface TextCursor extends RecordCursor {
  /** The line after the lines read so far (once every record is read: the line after the text). */
  readonly nextLine: number;
}

export function textCursor(text: string, options: ParseOptions): TextCursor {
  return options.format === 'csv' ? new CsvCursor(text, options) : new NdjsonCursor(text, options.firstLine);
}

function toParsedRecord(cursor: RecordCursor, columns: string[]): ParsedRecord {
  const { line, values, error } = cursor;
  const raw = cursor.raw();
  if (error) return { line, raw, error };
  if (values) {
    const fields: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) fields[columns[i] as string] = values[i];
    return { line, raw, fields };
  }
  const numbers = cursor.numbers;
  return numbers ? { line, raw, fields: cursor.fields, numbers } : { line, raw, fields: cursor.fields };
}

/**
 * The records of a chunk that is not all UTF-8: each stretch of valid records read by `textCursor`, so a
 * record has the very shape (CSV `values`, NDJSON `fields`) and text it has in a valid chunk, and every
 * check of a record applies whichever way its chunk was decoded; a record that is not UTF-8 is `unreadable`.
 */
class StretchCursor implements RecordCursor {
  line = 0;
  values: string[] | undefined;
  fields: Record<string, unknown> | undefined;
  error: RecordError | undefined;
  numbers: InexactNumber[] | undefined;
  readonly #bytes: Uint8Array;
  readonly #options: ParseOptions;
  readonly #stretches: Stretch[];
  #at = 0;
  /** The cursor over the current valid stretch; undefined on an unreadable record. */
  #text: RecordCursor | undefined;
  #raw = '';

  constructor(bytes: Uint8Array, options: ParseOptions) {
    this.#bytes = bytes;
    this.#options = options;
    this.#stretches = utf8Stretches(bytes, options);
  }

  next(): boolean {
    for (;;) {
      const text = this.#text;
      if (text?.next()) {
        this.line = text.line;
        this.values = text.values;
        this.fields = text.fields;
        this.numbers = text.numbers;
        this.error = text.error;
        return true;
      }
      const stretch = this.#stretches[this.#at++];
      if (!stretch) return false;
      const piece = this.#bytes.subarray(stretch.start, stretch.end);
      if (stretch.utf8) {
        this.#text = textCursor(decoder.decode(piece), { ...this.#options, firstLine: stretch.line });
        continue;
      }
      this.#text = undefined;
      this.line = stretch.line;
      this.values = undefined;
      this.fields = undefined;
      this.numbers = undefined;
      this.#raw = trimEol(decoder.decode(piece));
      this.error = {
        reason: `bytes are not valid UTF-8 (first bad byte at offset ${firstInvalidByte(piece)} of the line)`,
        unreadable: true,
      };
      return true;
    }
  }

  raw(): string {
    return this.#text ? this.#text.raw() : this.#raw;
  }
}

function trimEol(raw: string): string {
  return raw.replace(/\r?\n$/, '');
}

/** Line breaks in `text` from `start` up to `end`. */
function countNewlines(text: string, start: number, end: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', start); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

const CR = 13;
const LF = 10;
const QUOTE = '"';
const QUOTE_CODE = 34;

/**
 * The fields of the CSV record at `pos` of `text`, pushed onto `values`, when every quoted field in it is
 * well formed (opens the field, doubles its inner quotes, closes right before a delimiter, LF or CRLF):
 * what papaparse reads there, without its set-up per call. Returns where the record ends, past its
 * newline; -1 for anything else (a quote left open or closing at the very end, text after a closing
 * quote, a delimiter of several characters: `delimiter` is its code, or -1), which is papaparse's to read.
 * `lineEnd`, when the caller knows it, is where the line at `pos` ends (its LF, or the text's end).
 */
export function wellQuotedRecord(
  text: string,
  pos: number,
  delimiter: number,
  values: string[],
  lineEnd = -1,
): number {
  if (delimiter < 0) return -1;
  const length = text.length;
  const split = String.fromCharCode(delimiter);
  let i = pos;
  let lf = lineEnd;
  for (;;) {
    if (text.charCodeAt(i) === QUOTE_CODE) {
      let from = i + 1;
      let doubled = false;
      let close: number;
      for (;;) {
        close = text.indexOf(QUOTE, from);
        if (close === -1 || close + 1 >= length) return -1;
        if (text.charCodeAt(close + 1) !== QUOTE_CODE) break;
        doubled = true;
        from = close + 2;
      }
      const value = text.slice(i + 1, close);
      values.push(doubled ? value.replaceAll('""', '"') : value);
      const after = text.charCodeAt(close + 1);
      if (after === delimiter) {
        i = close + 2;
        continue;
      }
      if (after === LF) return close + 2;
      if (after === CR && text.charCodeAt(close + 2) === LF) return close + 3;
      return -1;
    }
    // An unquoted field ends at the next delimiter or LF (a quoted field may have run past `lf`):
    // two searches, not a look at every character.
    if (lf < i) {
      lf = text.indexOf('\n', i);
      if (lf === -1) lf = length;
    }
    let j = text.indexOf(split, i);
    if (j === -1 || j > lf) j = lf;
    values.push(text.slice(i, j));
    if (j < lf) {
      i = j + 1;
      continue;
    }
    return j < length ? j + 1 : length;
  }
}

/**
 * CSV as papaparse reads it with `newline: '\n'`, one record per `next()`. A record whose first line has
 * no quote is that line split at the delimiter (what papaparse makes of it too); a record with a quote
 * is read by papaparse itself, from the record's start to the end of the text, so quoted fields,
 * malformed quotes and a quote left open behave exactly as in a parse of the whole text.
 */
class CsvCursor implements TextCursor {
  line = 0;
  values: string[] | undefined;
  fields = undefined;
  error: RecordError | undefined;
  readonly #text: string;
  readonly #delimiter: string;
  /** What papaparse splits at: it reads a delimiter it cannot use as a comma. */
  readonly #split: string;
  readonly #columns: string[];
  readonly #papa: Papa.Parser;
  #pos = 0;
  #nextLine: number;
  /** The first quote at or after `#pos` (or before it, stale), -1 when the text has no more. */
  #quote: number;
  #rawStart = 0;
  #rawEnd = 0;
  #raw: string | undefined;
  /** The split delimiter's char code, -1 when it is not one UTF-16 unit. */
  readonly #delimiterCode: number;
  /** Where the record `#wellQuoted` read ends. */
  #end = 0;

  readonly #skim: Skim | undefined;

  constructor(text: string, options: ParseOptions) {
    const { delimiter } = options;
    this.#text = text;
    this.#skim = options.skim;
    this.#delimiter = delimiter;
    this.#split = Papa.BAD_DELIMITERS.includes(delimiter) || delimiter === '' ? ',' : delimiter;
    this.#columns = options.columns ?? [];
    this.#nextLine = options.firstLine;
    // Without quoting every line is split at the delimiter, as papaparse's `fastMode` reads a text without quotes.
    this.#quote = options.quote === false ? -1 : text.indexOf(QUOTE);
    this.#papa = new Papa.Parser({ delimiter, newline: '\n', preview: 1 });
    this.#delimiterCode = this.#split.length === 1 ? this.#split.charCodeAt(0) : -1;
  }

  raw(): string {
    this.#raw ??= this.#text.slice(this.#rawStart, this.#rawEnd);
    return this.#raw;
  }

  get nextLine(): number {
    return this.#nextLine;
  }

  next(): boolean {
    const text = this.#text;
    const length = text.length;
    while (this.#pos < length) {
      const pos = this.#pos;
      const newline = text.indexOf('\n', pos);
      const end = newline === -1 ? length : newline;
      if (this.#quote !== -1 && this.#quote < pos) this.#quote = text.indexOf(QUOTE, pos);
      if (this.#quote === -1 || this.#quote >= end) {
        const line = this.#nextLine++;
        this.#pos = newline === -1 ? length : newline + 1;
        // The CR of a CRLF ending belongs to neither the raw line nor the last field.
        const rawEnd = newline !== -1 && end > pos && text.charCodeAt(end - 1) === CR ? end - 1 : end;
        if (onlyCarriageReturns(text, pos, rawEnd)) continue; // blank line
        this.line = line;
        this.#rawStart = pos;
        this.#rawEnd = rawEnd;
        this.#raw = undefined;
        this.#settle(this.#splitLine(pos, rawEnd), undefined);
        return true;
      }
      if (this.#quoted(pos, newline === -1 ? length : newline)) return true;
    }
    return false;
  }

  /**
   * The fields of a line without quotes: `text.slice(start, end).split(delimiter)`, cut out of the text
   * field by field (a quarter faster: no copy of the line, no split of it).
   */
  #splitLine(start: number, end: number): string[] {
    const text = this.#text;
    const split = this.#split;
    const skim = this.#skim;
    // Sized for the header's fields and filled by index: a push per field costs a call to a builtin.
    const values: string[] = new Array(this.#columns.length);
    let n = 0;
    for (let at = start; ; n++) {
      let next = text.indexOf(split, at);
      if (next === -1 || next + split.length > end) next = end;
      const skimmed = skim !== undefined && next - at > skim.upTo && skim.fields[n] === true;
      values[n] = skimmed ? SKIMMED : text.slice(at, next);
      if (next === end) break;
      at = next + split.length;
    }
    // A row of fewer fields than the header (a reject) is cut to size; setting the length is a call into
    // the runtime even when it does not change, so a full row skips it.
    if (n + 1 < values.length) values.length = n + 1;
    return values;
  }

  /** Reads the record at `pos` (its first line ends at `lineEnd`) with papaparse; false for a blank one. */
  #quoted(pos: number, lineEnd: number): boolean {
    const text = this.#text;
    let values = this.#wellQuoted(pos, lineEnd);
    let end = this.#end;
    let problem: Papa.ParseError | undefined;
    if (!values) {
      // The record ends where the record scanner (and so the chunk plan) ends it: past a malformed quote
      // papaparse would read on to the next quote before a delimiter or line break, maybe the chunk's end.
      end = pos + scannedLength(text, pos, this.#delimiter);
      const result: Papa.ParseResult<string[]> = this.#papa.parse(text.slice(pos, end), 0, false);
      problem = result.errors[0];
      values = result.data[0] ?? [''];
    }
    this.#pos = end;
    const line = this.#nextLine;
    const newlines = countNewlines(text, pos, end);
    this.#nextLine += newlines;
    // The raw text is cut out only when asked for (`raw()`): it ends before a last LF or CRLF.
    const crlf = end - pos >= 2 && text.charCodeAt(end - 1) === LF && text.charCodeAt(end - 2) === CR;
    const rawEnd = crlf ? end - 2 : end > pos && text.charCodeAt(end - 1) === LF ? end - 1 : end;
    // Blank as the scanner sees it (nothing but CRs): a lone `""` is a record with one empty field, not a blank line.
    if (onlyCarriageReturns(text, pos, rawEnd)) return false;
    // With LF as the record separator, an unquoted last field keeps the CR of a CRLF ending. Whether it is
    // unquoted takes a look at the field's start: a closing quote at the end does not tell (`5'10"`).
    const last = values.length - 1;
    if (crlf && !lastFieldQuoted(text.slice(pos, rawEnd), this.#delimiter)) {
      values[last] = (values[last] ?? '').replace(/\r$/, '');
    }
    this.line = line;
    this.#rawStart = pos;
    this.#rawEnd = rawEnd;
    this.#raw = undefined;
    this.#settle(values, problem);
    // A quoted record that fails over several lines most likely opened at a stray quote.
    const lines = newlines + (text.charCodeAt(end - 1) === LF ? 0 : 1);
    if (this.error && (problem || lines > 1)) {
      const ran = lines > 1 ? `a quoted field runs from line ${line} over ${lines} lines: ` : '';
      this.error = { ...this.error, reason: `${this.error.reason} (${ran}${STRAY_QUOTE_HINT})`, quote: true };
    }
    return true;
  }

  /** `wellQuotedRecord` at `pos` (its first line ends at `lineEnd`), setting `#end` past the record's newline. */
  #wellQuoted(pos: number, lineEnd: number): string[] | undefined {
    const values: string[] = [];
    const end = wellQuotedRecord(this.#text, pos, this.#delimiterCode, values, lineEnd);
    if (end < 0) return undefined;
    this.#end = end;
    return values;
  }

  #settle(values: string[], problem: Papa.ParseError | undefined): void {
    const columns = this.#columns;
    if (problem) {
      this.values = undefined;
      this.error = { reason: `malformed CSV: ${problem.message}` };
    } else if (values.length !== columns.length) {
      const column = values.length < columns.length ? columns[values.length] : undefined;
      const reason =
        values.length < columns.length
          ? `row has ${values.length} fields, the header has ${columns.length}: "${column}" and after are missing`
          : `row has ${values.length} fields, the header has ${columns.length}`;
      this.values = undefined;
      this.error = { column, reason };
    } else {
      this.values = values;
      this.error = undefined;
    }
  }
}

const encoder = new TextEncoder();
/** Characters first encoded while the record scanner looks for one record's end; doubled while it has not ended. */
const SCAN_CHARS = 256;

/** The length (in characters) of the CSV record at `pos` of `text`, as the record scanner cuts it. */
function scannedLength(text: string, pos: number, delimiter: string): number {
  let end: number | undefined;
  const scanner = new RecordScanner({ format: 'csv', delimiter }, (span) => {
    end ??= span.end;
  });
  const pieces: Uint8Array[] = [];
  // A step as long as what was read: a record costs about its own length, however long.
  for (let at = pos, step = SCAN_CHARS; at < text.length && end === undefined; at += step, step *= 2) {
    const piece = encoder.encode(text.slice(at, at + step));
    pieces.push(piece);
    scanner.push(piece);
  }
  // No record end: the record is the rest of the text. One ends after a line break, so its bytes decode whole.
  return end === undefined
    ? text.length - pos
    : decoder.decode(Buffer.concat(pieces).subarray(0, end)).length;
}

function onlyCarriageReturns(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) !== CR) return false;
  return true;
}

/** Whether a record's last field is quoted: a quote opens a field only at its start, as the scanner reads it. */
function lastFieldQuoted(raw: string, delimiter: string): boolean {
  let quoted = false;
  let open = false;
  let start = true;
  for (const ch of raw) {
    if (start) {
      start = false;
      quoted = ch === '"';
      open = quoted;
      if (quoted) continue;
    }
    if (quoted && ch === '"') open = !open;
    else if (!open && ch === delimiter) start = true;
  }
  return quoted && !start;
}

class NdjsonCursor implements TextCursor {
  line = 0;
  values = undefined;
  fields: Record<string, unknown> | undefined;
  error: RecordError | undefined;
  numbers: InexactNumber[] | undefined;
  readonly #text: string;
  readonly #scan: LineScan = { keys: 0, inexact: false };
  #pos = 0;
  #nextLine: number;
  #raw = '';
  constructor(text: string, firstLine: number) {
    this.#text = text;
    this.#nextLine = firstLine;
  }
  raw(): string {
    return this.#raw;
  }
  get nextLine(): number {
    return this.#nextLine;
  }
  next(): boolean {
    const text = this.#text;
    while (this.#pos < text.length) {
      let end = text.indexOf('\n', this.#pos);
      if (end === -1) end = text.length;
      const raw = text.slice(this.#pos, end).replace(/\r$/, '');
      const line = this.#nextLine++;
      this.#pos = end + 1;
      if (raw.trim() === '') continue;
      this.line = line;
      this.#raw = raw;
      this.#read(raw);
      return true;
    }
    return false;
  }
  #read(raw: string): void {
    this.fields = undefined;
    this.numbers = undefined;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      this.error = { reason: `invalid JSON: ${(err as Error).message}` };
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.error = { reason: 'line is not a JSON object' };
      return;
    }
    // Nesting needs two characters a level: a shorter line cannot be too deep, and is not walked.
    if (raw.length > 2 * MAX_NESTING_DEPTH && nestingDepth(value, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) {
      this.error = { reason: tooDeep(nestingDepth(value)) };
      return;
    }
    // One pass over the line: a key the text writes twice, a long number (see json-text.ts).
    const scan = scanLine(raw, this.#scan);
    if (scan.keys !== keyCount(value)) {
      this.error = duplicateKeyError(raw);
      return;
    }
    this.error = undefined;
    this.fields = value as Record<string, unknown>;
    // Only a line with a number that is not its double's text is parsed again.
    if (scan.inexact) {
      const numbers = inexactNumbers(raw);
      if (numbers.length > 0) this.numbers = numbers;
    }
  }
}

/** The reject of a record that names a key twice in one object: JSON.parse would keep the last value. */
function duplicateKeyError(raw: string): RecordError {
  const found = duplicateKey(raw);
  if (!found) return { reason: 'a key repeats in one object (JSON.parse would keep the last)' };
  let column = '';
  for (const part of found.path)
    column += typeof part === 'number' ? `[${part}]` : column === '' ? part : `.${part}`;
  const reason = `duplicate key ${JSON.stringify(found.key)} (again at character ${found.character} of the line; JSON.parse would keep the last)`;
  return { column, reason };
}

/**
 * How deep objects and arrays may nest in one record. JSON.parse reads any depth, but what comes after
 * recurses on the value (zod's z.json(), JSON.stringify when it is written, a reject's "got …") and
 * overflows the stack around 5,000 levels, which would fail the record's whole chunk. A record deeper
 * than this is rejected as that record; the limit leaves the recursive steps several times the room.
 */
export const MAX_NESTING_DEPTH = 512;

const tooDeep = (depth: number) =>
  `record is nested ${depth} levels deep, over the limit of ${MAX_NESTING_DEPTH} levels`;

/**
 * The deepest nesting of objects and arrays in `value` (the value itself is level 1), walked without
 * recursion; with `stopAbove`, it stops at the first level past that and returns it.
 */
export function nestingDepth(value: unknown, stopAbove = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (v === null || typeof v !== 'object') continue;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > stopAbove) return deepest;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/** Reads a CSV header record into field names. */
export function parseHeader(bytes: Uint8Array, delimiter: string, quote: Quote = QUOTE): string[] {
  const text = decoder.decode(bytes).replace(/\r?\n$/, '');
  // papaparse's `fastMode` splits at delimiters only: what a file without quoting means.
  const result = Papa.parse<string[]>(text, { delimiter, newline: '\n', fastMode: quote === false });
  return (result.data[0] ?? []).map((f) => f.trim());
}
