import { describe, expect, it } from 'vitest';
import type { FilePlan, PlanOptions } from '../../shared/formats/chunking.ts';
import { type ParsedRecord, parseChunk, parseHeader, parseText } from '../../shared/formats/parsing.ts';
import { bytesOf, plan, prng, text } from './helpers.ts';

interface Rng {
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

function rng(seed: number): Rng {
  const next = prng(seed);
  return {
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)] as (typeof items)[number],
  };
}

// Characters an unquoted field may hold anywhere but its start: a quote mid-field is literal.
const PLAIN = ['a', 'b', 'Z', '0', '7', ' ', '-', '.', "'", 'ü', 'ß', '€', '中', '😀', '\t', '\uFEFF'];
// A quoted field may hold anything, delimiters, quotes and line breaks included.
const QUOTED = [...PLAIN, ',', '"', '\n', '\r\n', '\r', ';'];

function plainField(r: Rng): string {
  let s = r.chance(0.15) ? '' : r.pick(PLAIN.filter((c) => c !== '\t'));
  const n = r.int(0, 8);
  for (let i = 0; i < n; i++) s += r.chance(0.05) && s !== '' ? '"' : r.pick(PLAIN);
  return s;
}

function quotedField(r: Rng): string {
  let s = '';
  const n = r.int(0, 10);
  for (let i = 0; i < n; i++) s += r.pick(QUOTED);
  return `"${s.replace(/"/g, '""')}"`;
}

interface CsvFile {
  bytes: Uint8Array;
  /** Byte offset where the header record ends (the body starts). */
  headerEnd: number;
  headerLine: number;
  columns: string[];
  /** Blank lines anywhere after the header (they may sit between chunks). */
  blanks: boolean;
}

function csvFile(seed: number): CsvFile {
  const r = rng(seed);
  const columns = Array.from({ length: r.int(1, 5) }, (_, i) => `c${i}`);
  const eol = () => (r.chance(0.5) ? '\r\n' : '\n');
  const bom = r.chance(0.3);
  let lead = '';
  for (let i = r.chance(0.2) ? r.int(1, 3) : 0; i > 0; i--) lead += eol();
  const header = `${columns.map((c) => (r.chance(0.3) ? `"${c}"` : c)).join(',')}${eol()}`;
  let body = '';
  let blanks = false;
  const rows = r.int(0, 40);
  for (let i = 0; i < rows; i++) {
    if (r.chance(0.08)) {
      body += eol();
      blanks = true;
      continue;
    }
    // Now and then a row with the wrong number of fields: it must reach the loader as that row, not vanish.
    const count = r.chance(0.06) ? r.int(1, columns.length + 2) : columns.length;
    const fields = Array.from({ length: count }, () => (r.chance(0.4) ? quotedField(r) : plainField(r)));
    const row = fields.join(',');
    // A one-column row with an empty unquoted value is a blank line.
    if (row === '') blanks = true;
    body += row;
    body += i === rows - 1 && r.chance(0.3) ? '' : eol();
  }
  if (r.chance(0.05)) {
    // A quote left open in the last record: it runs to the end of the file.
    const sep = body === '' || body.endsWith('\n') ? '' : '\n';
    body += `${sep}${columns
      .map(() => '1')
      .join(',')
      .slice(0, -1)}"never closed\n1,2\n`;
  }
  const prefix = bytesOf(bom ? [0xef, 0xbb, 0xbf] : [], lead, header);
  const file = bytesOf(prefix, body);
  const leadLines = lead.split('\n').length - 1;
  return { bytes: file, headerEnd: prefix.length, headerLine: 1 + leadLines, columns, blanks };
}

/** Random cut points: pieces of 1 byte up to the whole file. */
function randomCuts(r: Rng, size: number): number[] {
  const cuts: number[] = [];
  const max = r.pick([1, 2, 7, 64, 300, size]);
  for (let at = r.int(1, Math.max(1, max)); at < size; at += r.int(1, Math.max(1, max))) cuts.push(at);
  return cuts;
}

const BLANK_GAP = /^(\r*\n)*\r*$/;

/** Chunks are in order, inside the body, and what lies between them is blank lines only. */
function expectCoverage(p: FilePlan, bytes: Uint8Array, headerEnd: number, exact: boolean): void {
  let at = headerEnd;
  for (const c of p.chunks) {
    expect(c.start).toBeGreaterThanOrEqual(at);
    const gap = text(bytes.subarray(at, c.start));
    expect(gap).toMatch(BLANK_GAP);
    if (exact) expect(c.start).toBe(at);
    expect(c.end).toBeGreaterThan(c.start);
    at = c.end;
  }
  expect(text(bytes.subarray(at))).toMatch(BLANK_GAP);
  if (exact && p.chunks.length > 0) expect(at).toBe(bytes.length);
  expect(p.bytes).toBe(bytes.length);
}

function parseChunks(
  p: FilePlan,
  bytes: Uint8Array,
  options: { format: 'csv' | 'ndjson'; columns?: string[] },
  context: string,
) {
  const out: ParsedRecord[] = [];
  for (const c of p.chunks) {
    const records = parseChunk(bytes.subarray(c.start, c.end), {
      format: options.format,
      delimiter: ',',
      columns: options.columns,
      firstLine: c.firstLine,
    });
    // Each chunk holds exactly the records the plan counted for it.
    const where = `${context}, chunk ${c.index} ${JSON.stringify(text(bytes.subarray(c.start, c.end)))}`;
    expect(records.length, where).toBe(c.records);
    expect(records[0]?.line, where).toBe(c.firstLine);
    out.push(...records);
  }
  return out;
}

describe('chunk boundaries (property: no record lost or doubled at any cut)', () => {
  it('CSV: chunks parsed one by one equal one parse of the whole body, for any feed split', async () => {
    let files = 0;
    let chunks = 0;
    let records = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const r = rng(seed * 7919);
      const file = csvFile(seed);
      const options: Partial<PlanOptions> = {
        format: 'csv',
        delimiter: ',',
        chunkBytes: r.int(64, 512),
        maxRecordBytes: r.chance(0.2) ? r.int(40, 120) : 1 << 20,
      };
      const whole = await plan(file.bytes, options);
      // The plan does not depend on how the bytes arrive.
      expect(await plan(file.bytes, options, randomCuts(r, file.bytes.length))).toEqual(whole);
      expect(await plan(file.bytes, options, randomCuts(r, file.bytes.length))).toEqual(whole);
      if (seed % 10 === 0) expect(await plan(file.bytes, options, 1)).toEqual(whole);

      const context = `seed ${seed}`;
      expect(whole.bom, context).toBe(file.bytes[0] === 0xef);
      expect(whole.headerLine, context).toBe(file.headerLine);
      const columns = parseHeader(whole.header ?? new Uint8Array(), ',');
      expect(columns, context).toEqual(file.columns);
      expectCoverage(whole, file.bytes, file.headerEnd, !file.blanks);

      const body = text(file.bytes.subarray(file.headerEnd));
      const expected = parseText(body, {
        format: 'csv',
        delimiter: ',',
        columns,
        firstLine: file.headerLine + 1,
      });
      const actual = parseChunks(whole, file.bytes, { format: 'csv', columns }, context);
      expect(actual, context).toEqual(expected);
      expect(whole.records, context).toBe(expected.length);
      expect(whole.chunks.reduce((n, c) => n + c.records, 0)).toBe(whole.records);

      for (const c of whole.chunks) {
        const size = c.end - c.start;
        if (c.oversized || c.unterminated) expect(c.records).toBe(1);
        expect(c.oversized).toBe(c.records === 1 && size > (options.maxRecordBytes ?? 0));
      }
      files++;
      chunks += whole.chunks.length;
      records += whole.records;
    }
    // The generator must actually exercise many chunks and records, or the property says little.
    expect(files).toBe(400);
    expect(chunks).toBeGreaterThan(1000);
    expect(records).toBeGreaterThan(5000);
  });

  it('NDJSON: chunks parsed one by one equal one parse of the whole file, for any feed split', async () => {
    const values = [
      '"a,b"',
      '"q\\"uote"',
      '"line\\nbreak"',
      '"ü€😀"',
      '1.5',
      'null',
      'true',
      '[1,"]"]',
      '{"x":"}"}',
    ];
    for (let seed = 1; seed <= 150; seed++) {
      const r = rng(seed * 104729);
      let body = r.chance(0.3) ? '\uFEFF' : '';
      const lines = r.int(0, 40);
      for (let i = 0; i < lines; i++) {
        const kind = r.int(0, 19);
        if (kind === 0) body += '';
        else if (kind === 1) body += '{"broken": ';
        else if (kind === 2) body += r.pick(values);
        else {
          const n = r.int(0, 4);
          body += `{${Array.from({ length: n }, (_, k) => `"k${k}":${r.pick(values)}`).join(',')}}`;
        }
        body += i === lines - 1 && r.chance(0.3) ? '' : r.chance(0.5) ? '\r\n' : '\n';
      }
      const bytes = bytesOf(body);
      const options: Partial<PlanOptions> = { format: 'ndjson', chunkBytes: r.int(64, 256) };
      const whole = await plan(bytes, options);
      expect(await plan(bytes, options, randomCuts(r, bytes.length))).toEqual(whole);
      const start = whole.bom ? 3 : 0;
      expectCoverage(whole, bytes, start, false);
      const expected = parseText(text(bytes.subarray(start)), {
        format: 'ndjson',
        delimiter: ',',
        firstLine: 1,
      });
      const actual = parseChunks(whole, bytes, { format: 'ndjson' }, `seed ${seed}`);
      expect(actual, `seed ${seed}`).toEqual(expected);
      expect(whole.records).toBe(expected.length);
    }
  });
});
