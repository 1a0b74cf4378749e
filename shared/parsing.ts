import { isUtf8 } from 'node:buffer';
import Papa from 'papaparse';
import { RecordScanner } from './chunking.ts';
import type { Format } from './dataset.ts';

/** One data record of a chunk: where it is, its original text, and its fields by name. */
export interface ParsedRecord {
  line: number;
  raw: string;
  fields?: Record<string, unknown>;
  /** Why the record could not be read into fields. */
  error?: { column?: string; reason: string };
}

export interface ParseOptions {
  format: Format;
  delimiter: string;
  /** CSV header fields in file order. */
  columns?: string[];
  firstLine: number;
}

// The planner already skips the file's BOM; a U+FEFF that starts a chunk is data (say, files joined with `cat`),
// and stripping it would make a record's value depend on where the chunk boundaries fall.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Splits a chunk's bytes into records; invalid UTF-8 rejects only the lines that carry it. */
export function parseChunk(bytes: Uint8Array, options: ParseOptions): ParsedRecord[] {
  if (isUtf8(bytes)) return parseText(decoder.decode(bytes), options);
  const out: ParsedRecord[] = [];
  const scanner = new RecordScanner({ format: options.format, delimiter: options.delimiter }, (span) => {
    const piece = bytes.subarray(span.start, span.end);
    const line = options.firstLine + span.line - 1;
    if (isUtf8(piece)) {
      out.push(...parseText(decoder.decode(piece), { ...options, firstLine: line }));
    } else {
      const at = firstInvalidByte(piece);
      out.push({
        line,
        raw: trimEol(decoder.decode(piece)),
        error: { reason: `bytes are not valid UTF-8 (first bad byte at offset ${at} of the line)` },
      });
    }
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
  return options.format === 'csv' ? parseCsv(text, options) : parseNdjson(text, options.firstLine);
}

function trimEol(raw: string): string {
  return raw.replace(/\r?\n$/, '');
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function parseCsv(text: string, options: ParseOptions): ParsedRecord[] {
  const columns = options.columns ?? [];
  const out: ParsedRecord[] = [];
  let line = options.firstLine;
  let cursor = 0;
  // Papa drops a leading U+FEFF, which would shift its cursor off `text` by one; the extra one is what it drops.
  Papa.parse<string[]>(text.startsWith('\uFEFF') ? `\uFEFF${text}` : text, {
    delimiter: options.delimiter,
    // Fixed rather than guessed: files mix CRLF and LF, and a guess from the first line splits the rest wrongly.
    newline: '\n',
    step: (result) => {
      const end = result.meta.cursor;
      const rawWithEol = text.slice(cursor, end);
      cursor = end;
      const recordLine = line;
      line += countNewlines(rawWithEol);
      const values = result.data;
      const raw = trimEol(rawWithEol);
      // Blank as the scanner sees it (nothing but CRs): a lone `""` is a record with one empty field, not a blank line.
      if (/^\r*$/.test(raw)) return; // blank line
      // With LF as the record separator, an unquoted last field keeps the CR of a CRLF ending. Whether it is
      // unquoted takes a look at the field's start: a closing quote at the end does not tell (`5'10"`).
      const last = values.length - 1;
      if (rawWithEol.endsWith('\r\n') && !lastFieldQuoted(raw, options.delimiter)) {
        values[last] = (values[last] ?? '').replace(/\r$/, '');
      }
      out.push(csvRecord(recordLine, raw, values, columns, result.errors));
    },
  });
  return out;
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

function csvRecord(
  line: number,
  raw: string,
  values: string[],
  columns: string[],
  errors: Papa.ParseError[],
): ParsedRecord {
  const problem = errors[0];
  if (problem) return { line, raw, error: { reason: `malformed CSV: ${problem.message}` } };
  if (values.length !== columns.length) {
    const column = values.length < columns.length ? columns[values.length] : undefined;
    const reason =
      values.length < columns.length
        ? `row has ${values.length} fields, the header has ${columns.length}: "${column}" and after are missing`
        : `row has ${values.length} fields, the header has ${columns.length}`;
    return { line, raw, error: { column, reason } };
  }
  const fields: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) fields[columns[i] as string] = values[i];
  return { line, raw, fields };
}

function parseNdjson(text: string, firstLine: number): ParsedRecord[] {
  const out: ParsedRecord[] = [];
  let line = firstLine;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const raw = text.slice(start, end).replace(/\r$/, '');
    if (raw.trim() !== '') out.push(ndjsonRecord(line, raw));
    line++;
    start = end + 1;
  }
  return out;
}

function ndjsonRecord(line: number, raw: string): ParsedRecord {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { line, raw, error: { reason: `invalid JSON: ${(err as Error).message}` } };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { line, raw, error: { reason: 'line is not a JSON object' } };
  }
  return { line, raw, fields: value as Record<string, unknown> };
}

/** Reads a CSV header record into field names. */
export function parseHeader(bytes: Uint8Array, delimiter: string): string[] {
  const text = decoder.decode(bytes).replace(/\r?\n$/, '');
  const result = Papa.parse<string[]>(text, { delimiter, newline: '\n' });
  return (result.data[0] ?? []).map((f) => f.trim());
}
